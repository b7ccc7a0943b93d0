"""Attention traces of single decodings (thesis Figs 3.2-3.3; docs/resonator.md, "Attention
traces"): the attention vector ``w'/k`` of every factor at every iteration, and its mean and
standard deviation over the ``M`` codewords, for one problem the resonator decoded and one it
did not.
"""
from __future__ import annotations

import torch

from dham_core.resonator import SparseResonator
from dham_core.resonator_pack import ResonatorCell
from dham_core.resonator_problems import sparse_problems

__all__ = ["attention_trace_rows"]

OUTCOMES = ("decoded", "undecoded")  # trace_problem 0 and 1


def attention_trace_rows(cell: ResonatorCell) -> list[dict]:
    """One row per (traced problem, iteration) of a sparse ``cell``'s problems (its seed, as in
    a pack): ``trace_problem`` (0 = the first problem decoded, 1 = the first one not decoded;
    a kind that does not occur is left out), ``iteration`` (0 = the first update, from the
    initial estimates), ``mean_v`` / ``std_v`` of factor ``v``'s attention over the M
    codewords, every entry ``w_v_m`` (M <= 64 only), the problem's ``correct``,
    ``converged`` and ``iterations``, and the whole cell's ``accuracy`` and ``iters_mean``
    (what a capacity sweep optimises). The dynamics are seeded from the cell's seed."""
    if cell.kind != "sparse":
        raise ValueError(f"an attention trace needs a sparse cell (got kind={cell.kind!r})")
    gen = torch.Generator().manual_seed(cell.seed)
    p = sparse_problems(cell.D, cell.k, cell.V, cell.M, cell.num_problems, generator=gen,
                        shared_codebooks=cell.shared_codebooks)
    net = SparseResonator(p.codebooks, cell.D, cell.a, max_it=cell.max_it, bundling=cell.bundling,
                          update=cell.update, weights=cell.weights, overlap=cell.overlap,
                          similarity=cell.similarity, noise=cell.noise, patience=cell.patience)
    res = net.solve(p.x, generator=torch.Generator().manual_seed(cell.seed + 1),
                    group=p.group, record_attention=True)
    correct = res.correct(p.indices)
    cell_stats = {"accuracy": float(correct.double().mean()),
                  "iters_mean": float(res.iterations.double().mean())}
    rows = []
    for trace, want in enumerate((True, False)):
        hits = (correct == want).nonzero().flatten()
        if not hits.numel():
            continue
        b = int(hits[0])
        for t in range(int(res.iterations[b])):
            att = res.attention[t, b]  # (V, M)
            row = {"trace_problem": trace, "iteration": t, "correct": float(want),
                   "converged": float(res.converged[b]), "iterations": int(res.iterations[b]),
                   **cell_stats}
            for v in range(cell.V):
                row[f"mean_{v}"] = float(att[v].mean())
                row[f"std_{v}"] = float(att[v].std(correction=0))
                if cell.M <= 64:
                    row.update({f"w_{v}_{m}": float(att[v, m]) for m in range(cell.M)})
            rows.append(row)
    return rows
