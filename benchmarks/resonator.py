"""Resonator benchmarks, printed side by side in one run (docs/resonator.md, "Measured here").

1. Time per iteration of the sparse resonator at D = 2048, M = 1000, V = 3, three ways from
   the same state: (a) ours — offset vectors, offset bundling (scatter-add of the ``a``
   selected codewords); (b) the thesis's implementation — offset vectors, bundling as a dense
   ``(B, M) × (M, D)`` product; (c) all dense D-dimensional vectors
   (``dham_core.resonator_dense_sbc``: FFT unbinding, matmul overlaps and bundling). The thesis
   reports > 10x for offset over dense vectors: that is (c)/(a). Then (1b) the time of (a)'s
   stages (unbind, overlap, top-a, scatter, thinning).
2. One dense-resonator step: ours vs ``torchhd.resonator`` (the peer), same inputs.
3. Time to solution, sparse vs dense, at D = 512, k = 64 (the thesis's Fig. 3.7 setting) on the
   same number of problems: accuracy, iterations, seconds per problem, problems per second.

Usage::

    .venv/bin/python benchmarks/resonator.py            # full run (~2 min on 1 CPU thread)
    .venv/bin/python benchmarks/resonator.py --quick    # tiny sizes, seconds (smoke test)

Timings are the median of at least 3 repeats, with the machine and its load average printed
before and after (``benchmarks/machine.py``; the machine is shared); ``--threads`` sets
torch's intra-op threads (default 1).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from dham_core import sbc
from dham_core.resonator import SparseResonator
from dham_core.resonator_dense import DenseResonator
from dham_core.resonator_dense_sbc import DenseSBCResonator
from dham_core.resonator_pack import evaluate_dense, evaluate_sparse
from dham_core.resonator_problems import dense_problems, sparse_problems
from machine import machine_load


def median_time(fn, repeats: int, inner: int) -> float:
    """Median over ``repeats`` (>= 3) of the mean wall time of ``inner`` calls (seconds)."""
    fn()
    times = []
    for _ in range(max(3, repeats)):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


def bench_three_way(D, k, V, M, a, B, repeats, inner, weights):
    """Time per iteration of (a) ours, (b) the thesis's matmul bundling, (c) all-dense vectors,
    from the same state; the three next states must agree."""
    L = D // k
    p = sparse_problems(D, k, V, M, B, generator=torch.Generator().manual_seed(0))
    nets = {"a": SparseResonator(p.codebooks, D, a, bundling="offset", weights=weights),
            "b": SparseResonator(p.codebooks, D, a, bundling="matmul", weights=weights),
            "c": DenseSBCResonator(p.codebooks, D, a, weights=weights)}
    est = nets["a"].initial_estimates(B, generator=torch.Generator().manual_seed(1))
    est = nets["a"].step(p.x, est, generator=torch.Generator().manual_seed(2))  # leave the init state
    inputs = {"a": (p.x, est), "b": (p.x, est), "c": (sbc.to_dense(p.x, L), sbc.to_dense(est, L))}
    times, states = {}, {}
    for key, net in nets.items():
        x, e = inputs[key]
        g = torch.Generator().manual_seed(3)
        times[key] = median_time(lambda net=net, x=x, e=e, g=g: net.step(x, e, generator=g),
                                 repeats, inner)
        states[key] = net.step(x, e, generator=torch.Generator().manual_seed(4))
    same = (torch.equal(states["a"], states["b"])
            and torch.equal(sbc.to_dense(states["a"], L), states["c"]))
    print(f"  weights={weights:<8} (a) ours {times['a'] * 1e3:8.2f} ms/it   "
          f"(b) thesis {times['b'] * 1e3:8.2f} ms/it   (c) dense {times['c'] * 1e3:8.2f} ms/it")
    print(f"  {'':17}ratio (c)/(a) {times['c'] / times['a']:5.1f}x (target >= 10x)   "
          f"ratio (b)/(a) {times['b'] / times['a']:5.1f}x   (identical next states: {same})")
    return nets["a"], p.x, est


def bench_breakdown(net, x, est, repeats, inner):
    """Where an iteration of (a) goes: each stage timed alone on the state of [1], summed
    over the V factors (median of repeats), beside the whole step."""
    n = x.shape[0]
    total = est.sum(dim=1)
    noisy = [torch.remainder(x - (total - est[:, v]), net.L) for v in range(net.V)]
    w = [net.overlaps(noisy[v], v, None) for v in range(net.V)]
    sel = [net._attention(w[v], None, net.a, torch.Generator().manual_seed(5))
           for v in range(net.V)]

    def scatter(v):
        offs = torch.nn.functional.embedding(sel[v][0], net._flat[v])
        acc = torch.zeros(n, net.k, net.L, dtype=net.acc_dtype)
        return acc.scatter_add_(2, offs.transpose(1, 2),
                                sel[v][1].unsqueeze(1).expand(n, net.k, sel[v][1].shape[1]))

    accs = [scatter(v) for v in range(net.V)]
    g = torch.Generator().manual_seed(6)
    stages = {
        "unbind": lambda: [torch.remainder(x - (total - est[:, v]), net.L) for v in range(net.V)],
        "overlap": lambda: [net.overlaps(noisy[v], v, None) for v in range(net.V)],
        "top-a": lambda: [net._attention(w[v], None, net.a, g) for v in range(net.V)],
        "scatter": lambda: [scatter(v) for v in range(net.V)],
        "thinning": lambda: [sbc.thin(accs[v], generator=g) for v in range(net.V)],
    }
    times = {name: median_time(fn, repeats, inner) for name, fn in stages.items()}
    step = median_time(lambda: net.step(x, est, generator=g), repeats, inner)
    parts = sum(times.values())
    print("  " + "   ".join(f"{name} {t * 1e3:.2f} ms ({100 * t / parts:.0f}%)"
                            for name, t in times.items()))
    print(f"  stages {parts * 1e3:.2f} ms, whole step {step * 1e3:.2f} ms "
          f"(the rest: copies and bookkeeping)")


def bench_dense_step(D, V, M, B, repeats, inner):
    import torchhd  # test/bench extra (torch-hd==5.8.4)

    p = dense_problems(D, V, M, B, generator=torch.Generator().manual_seed(0))
    net = DenseResonator(p.codebooks, update="parallel")
    est = net.initial_estimates(B, generator=None)
    # torchhd is called once per problem with the shared (V, M, D) codebooks: its batched
    # form broadcasts the codebooks against (B, V, 1, D) and torch.matmul then copies them
    # per problem (B·V·M·D floats: 6 GB and ~18 s per step at B = 256, D = 2048, M = 1000).
    ds = p.codebooks[0].as_subclass(torchhd.MAPTensor)
    xs = [p.x[b].as_subclass(torchhd.MAPTensor) for b in range(B)]
    es = [est[b].as_subclass(torchhd.MAPTensor) for b in range(B)]

    def peer():
        return [torchhd.resonator(x, e, ds) for x, e in zip(xs, es)]

    ours = median_time(lambda: net.step(p.x, est), repeats, inner)
    theirs = median_time(peer, repeats, max(1, inner // 2))
    b = torch.stack([t.as_subclass(torch.Tensor) for t in peer()])
    agree = torch.equal(net.step(p.x, est), torch.where(b == 0, 1.0, b))
    print(
        f"  D={D} V={V} M={M} B={B}: ours {ours / B * 1e3:7.3f} ms/problem/step (batched)   "
        f"torchhd {theirs / B * 1e3:7.3f} ms/problem/step (per problem)   "
        f"ratio torchhd/ours {theirs / ours:5.2f}   (same result up to sign(0): {agree})"
    )


def bench_solution(D, k, a, noise, V, sizes, n):
    print(f"  sparse: D={D} k={k} a={a} noise={noise}; dense: D={D}; V={V}, {n} problems per size")
    print(f"  {'M^V':>9} {'max_it':>7} {'net':>6} {'acc':>6} {'it mean':>9} {'it p95':>8} {'s/problem':>10} {'problems/s':>11}")
    for M, max_it in sizes:
        s = evaluate_sparse(D, k, a, V, M, num_problems=n, seed=0, max_it=max_it, noise=noise)
        d = evaluate_dense(D, V, M, num_problems=n, seed=0, max_it=max_it)
        for name, r in (("sparse", s), ("dense", d)):
            print(
                f"  {M ** V:>9.3g} {r['max_it']:>7} {name:>6} {r['accuracy']:>6.3f} {r['iters_mean']:>9.1f} "
                f"{r['iters_p95']:>8.0f} {r['seconds_per_problem']:>10.2e} {r['problems_per_second']:>11.1f}"
            )
        note = "" if abs(s["accuracy"] - d["accuracy"]) <= 0.01 else (
            "  (accuracies differ: the capped network's figures are lower bounds)")
        print(
            f"  {'':>9} {'':>7} {'ratio':>6} dense/sparse: iterations {d['iters_mean'] / s['iters_mean']:.2f}x, "
            f"time to solution {d['seconds_per_problem'] / s['seconds_per_problem']:.2f}x{note}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with machine_load():
        run(args.quick)


def run(q: bool) -> None:
    D, k, V, M, a, B = (256, 16, 3, 50, 4, 32) if q else (2048, 64, 3, 1000, 8, 256)
    reps, inner = (3, 1) if q else (3, 5)
    print(f"\n[1] sparse resonator, time per iteration (median of {reps}): D={D} k={k} V={V} "
          f"M={M} a={a} B={B}\n    (a) ours: offsets, offset bundling; (b) the thesis: offsets, "
          "matmul bundling;\n    (c) dense D-dim vectors: FFT unbinding, matmul overlaps and "
          "bundling")
    states = {w: bench_three_way(D, k, V, M, a, B, reps, inner, w) for w in ("overlap", "noisy")}
    print(f"\n[1b] where an iteration of (a) goes (weights=overlap, B={B}, V={V} factors)")
    bench_breakdown(*states["overlap"], reps, inner)

    D, V, M, B = (256, 3, 50, 32) if q else (2048, 3, 1000, 256)
    print("\n[2] dense resonator step, ours vs torchhd.resonator (parallel update)")
    bench_dense_step(D, V, M, B, reps, inner)

    print("\n[3] time to solution, sparse vs dense (Fig. 3.7 setting). Sparse a = 4 and noise = 0.25")
    print("    come from a small a/noise grid; the thesis's r ~ U[0,1) (noise = 1) needs 3-8x more")
    print("    iterations at 1e6 (still fewer than dense at D = 512).")
    if q:
        bench_solution(512, 64, 4, 0.25, 3, [(10, None)], 16)
    else:
        bench_solution(512, 64, 4, 0.25, 3, [(10, None), (22, None), (46, None), (100, 20000)], 128)

if __name__ == "__main__":
    main()
