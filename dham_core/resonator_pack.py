"""Many resonator configurations at once: the cell, its validation, and pack evaluation.

A *cell* is one configuration of the capacity experiments (thesis Figs 3.4-3.7): a network
(sparse or dense), its sizes and options, a number of random problems and a seed. It is a
:class:`ResonatorCell`, validated once when it is built; everything below trusts it.

:func:`evaluate_pack` runs cells that share shapes and options as one batch (docs/resonator.md,
"Pack evaluation"): each cell's codebooks and problems come from its own seed, exactly what
a solo run sees; they are concatenated (several codebook sets through the ``group`` index,
per-problem ``a`` and ``max_it``) and solved together; the dynamics' random numbers come from
one generator per pack seeded from the cells' seeds. A cell is tiny (milliseconds to seconds)
while a Ray trial costs about a second, so a trial evaluates a pack (``trainables.resonator``).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from dham_core import sbc
from dham_core.checks import is_int, is_number, positive_int, refuse
from dham_core.devices import resolve_device
from dham_core.resonator import (
    ATTENTION_WEIGHTS, BUNDLING, OVERLAPS, SIMILARITIES, UPDATES, SparseResonator, check_a,
    check_choice, default_max_it)
from dham_core.resonator_dense import DenseResonator
from dham_core.resonator_problems import (
    FactorizationProblems, check_problem_sizes, dense_problems, sparse_problems)

__all__ = ["A_EQUALS_M", "KINDS", "ResonatorCell", "cells_from_config", "evaluate_dense", "evaluate_pack",
           "evaluate_sparse", "expand_pack", "pack_size"]

KINDS = ("sparse", "dense")
# A pack config's a = "M": keep every codeword, no sparsification (thesis Fig 3.6's a = M line).
A_EQUALS_M = "M"
# Fields only the sparse network has; a dense cell leaves them at their defaults.
SPARSE_ONLY = ("k", "a", "bundling", "weights", "overlap", "similarity", "noise")
_INT_FIELDS = ("D", "k", "a", "V", "M", "num_problems", "seed", "max_it", "patience")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResonatorCell:
    """One configuration; ``D``, ``V``, ``M`` are required, and ``k``, ``a`` for a sparse cell.

    Building one validates every field (``ValueError`` naming the field and what is allowed);
    NumPy integers from a search space become plain ints. The network options are those of
    :class:`~dham_core.resonator.SparseResonator` / :class:`~dham_core.resonator_dense.DenseResonator`;
    ``device`` is resolved where the pack runs (``dham_core.devices.resolve_device``).
    """

    kind: str = "sparse"
    D: int | None = None  # vector dimension
    k: int | None = None  # segments (sparse only): L = D / k
    a: int | None = None  # attention sparsification, 1 <= a <= M (sparse only; docs eq. 8)
    V: int | None = None  # factors
    M: int | None = None  # codewords per codebook
    num_problems: int = 256
    seed: int = 0
    max_it: int | None = None  # None: max(2000, M^V / 1000) (thesis eq. 3.7)
    device: str = "cpu"
    shared_codebooks: bool = True
    update: str = "sequential"
    patience: int = 1  # unchanged iterations that count as converged (docs eq. 10)
    bundling: str = "offset"
    weights: str = "overlap"
    overlap: str = "auto"
    similarity: str = "cosine"  # attention w' (docs eq. 7, "Readings we chose")
    noise: float = 1.0  # r ~ U[0, noise) (docs eq. 7)

    def __post_init__(self) -> None:
        for name in _INT_FIELDS:
            if is_int(getattr(self, name)):
                object.__setattr__(self, name, int(getattr(self, name)))
        check_choice("kind", self.kind, KINDS)
        sparse = self.kind == "sparse"
        needed = ("D", "V", "M") + (("k", "a") if sparse else ())
        for name in needed:
            if getattr(self, name) is None:
                raise ValueError(f"cell is missing {name!r} (a {self.kind} cell needs "
                                 + ", ".join(needed) + ")")
        if sparse:
            sbc.block_length(self.D, self.k)  # D, k positive integers, k divides D
            check_a(self.a, self.M)
        else:
            for name in ("k", "a"):
                if getattr(self, name) is not None:
                    refuse(self, name, "left out of a dense cell (the dense network has no k, a)")
            if not is_int(self.D) or self.D < 1:
                refuse(self, "D", "a positive integer")
        check_problem_sizes(self.V, self.M, self.num_problems)
        if self.max_it is not None and (not is_int(self.max_it) or self.max_it < 1):
            refuse(self, "max_it", "an integer >= 1 or None")
        if not is_int(self.seed):
            refuse(self, "seed", "an integer")
        positive_int("patience", self.patience)
        check_choice("update", self.update, UPDATES)
        check_choice("shared_codebooks", self.shared_codebooks, (True, False))
        object.__setattr__(self, "shared_codebooks", bool(self.shared_codebooks))
        check_choice("bundling", self.bundling, BUNDLING)
        check_choice("weights", self.weights, ATTENTION_WEIGHTS)
        check_choice("overlap", self.overlap, OVERLAPS)
        check_choice("similarity", self.similarity, SIMILARITIES)
        if not (is_number(self.noise) and self.noise > 0):
            refuse(self, "noise", "> 0")
        object.__setattr__(self, "noise", float(self.noise))

    @classmethod
    def from_config(cls, config: Mapping) -> ResonatorCell:
        """A cell from a dict; an unknown key is an error, and a dense cell drops the
        sparse-only keys (a pack may mix kinds under one fixed ``a``)."""
        unknown = sorted(key for key in config if key not in CELL_KEYS)
        if unknown:
            raise ValueError(f"unknown config key(s) {', '.join(unknown)} for a resonator cell; "
                             f"allowed: {', '.join(CELL_KEYS)}")
        if config.get("kind", "sparse") == "dense":
            config = {key: v for key, v in config.items() if key not in SPARSE_ONLY}
        return cls(**config)

    def as_dict(self) -> dict:
        """The cell's fields (a dense cell without the sparse-only ones)."""
        fields = dataclasses.asdict(self)
        if self.kind == "dense":
            fields = {key: v for key, v in fields.items() if key not in SPARSE_ONLY}
        return fields


CELL_KEYS = tuple(f.name for f in dataclasses.fields(ResonatorCell))


def expand_pack(config: Mapping) -> tuple[list[ResonatorCell], int]:
    """(the cells of a pack config, how many of its (a, M) combinations were dropped).

    The config's list-valued keys are axes, e.g. ``{"D": 1024, "k": 64, "V": 3, "M": [5, 10,
    22], "a": [2, 5]}`` is 3 x 2 cells (product order, duplicates — a dense cell under several
    ``a`` — kept once). ``a = "M"`` (:data:`A_EQUALS_M`) sets each cell's ``a`` to its ``M``:
    no sparsification. A sparse combination with ``a > M`` where ``a`` or ``M`` is an axis is
    dropped and counted (``a`` cannot keep more codewords than there are; docs/resonator.md,
    "Readings we chose"); if that drops every combination, the first one's error is raised, and
    a single cell (scalar ``a`` and ``M``) with ``a > M`` is refused like any bad field."""
    axes = {key: v for key, v in config.items() if isinstance(v, (list, tuple))}
    crossed = "a" in axes or "M" in axes
    cells, dropped, first_error = [], 0, None
    for combo in itertools.product(*axes.values()):
        cell = {**config, **dict(zip(axes, combo))}
        if cell.get("a") == A_EQUALS_M:
            cell["a"] = cell.get("M")
        a, m = cell.get("a"), cell.get("M")
        if (crossed and cell.get("kind", "sparse") == "sparse" and is_int(a) and is_int(m)
                and a > m >= 1):
            dropped += 1
            first_error = first_error or cell
            continue
        cells.append(ResonatorCell.from_config(cell))
    if not cells and first_error is not None:
        ResonatorCell.from_config(first_error)  # raises: a must satisfy 1 <= a <= M
    return list(dict.fromkeys(cells)), dropped


def pack_size(config: Mapping) -> tuple[int, int]:
    """(cells a pack config evaluates, (a, M) combinations dropped): :func:`expand_pack`'s
    counts, for planning a sweep."""
    cells, dropped = expand_pack(config)
    return len(cells), dropped


def cells_from_config(config: Mapping) -> list[ResonatorCell]:
    """The cells of a pack config (:func:`expand_pack`, without the count of dropped ones)."""
    return expand_pack(config)[0]


def _dynamics_seed(seeds: Sequence[int]) -> int:
    """Seed of the resonator dynamics' generator, a fixed hash of the cells' seeds (FNV-1a)."""
    h = 0xCBF29CE484222325
    for s in seeds:
        h = ((h ^ (int(s) & 0xFFFFFFFFFFFFFFFF)) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h & 0x7FFFFFFFFFFFFFFF


def _pack_key(c: ResonatorCell, device: torch.device) -> tuple:
    """Cells with equal keys run as one batch."""
    key = (c.kind, c.D, c.V, c.M, str(device), c.shared_codebooks, c.update, c.patience)
    if c.kind == "sparse":
        key += (c.k, c.bundling, c.weights, c.overlap, c.similarity, c.noise)
    return key


def _iteration_stats(it: Tensor) -> dict:
    f = it.double()
    return {
        "iters_mean": float(f.mean()),
        "iters_median": float(f.median()),
        "iters_p95": float(torch.quantile(f, 0.95)),
        "iters_max": int(it.max()),
    }


def _run_pack(cells: list[ResonatorCell], device: torch.device) -> list[dict]:
    """Run cells that share a pack key as one batch."""
    c0 = cells[0]
    kind, D, V, M = c0.kind, c0.D, c0.V, c0.M
    # Problems come from each cell's own seed (identical to a solo run); cells with the same
    # seed share their codebook set.
    by_seed: dict[tuple[int, int], FactorizationProblems] = {}
    probs = []
    for c in cells:
        key = (c.seed, c.num_problems)
        if key not in by_seed:
            gen = torch.Generator(device=device).manual_seed(c.seed)
            if kind == "sparse":
                by_seed[key] = sparse_problems(D, c.k, V, M, c.num_problems, generator=gen,
                                               shared_codebooks=c.shared_codebooks)
            else:
                by_seed[key] = dense_problems(D, V, M, c.num_problems, generator=gen,
                                              shared_codebooks=c.shared_codebooks)
        probs.append(by_seed[key])
    # Distinct codebook sets, concatenated over G; goff = first group of each set.
    distinct = list(by_seed.values())
    goff, offset = {}, 0
    for p in distinct:
        goff[id(p)] = offset
        offset += p.codebooks.shape[0]
    cbs = torch.cat([p.codebooks for p in distinct], dim=0)
    x = torch.cat([p.x for p in probs])
    group = torch.cat([p.group + goff[id(p)] for p in probs])
    B = x.shape[0]
    counts = [c.num_problems for c in cells]
    maxits = [c.max_it if c.max_it is not None else default_max_it(M, V) for c in cells]
    max_it = torch.tensor([m for m, n in zip(maxits, counts) for _ in range(n)],
                          dtype=torch.long, device=device)
    gen = torch.Generator(device=device).manual_seed(_dynamics_seed([c.seed for c in cells]))

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    if kind == "sparse":
        a = torch.tensor([c.a for c, n in zip(cells, counts) for _ in range(n)],
                         dtype=torch.long, device=device)
        net = SparseResonator(
            cbs, D, int(a.max()), max_it=int(max_it.max()), bundling=c0.bundling,
            update=c0.update, weights=c0.weights, overlap=c0.overlap,
            similarity=c0.similarity, noise=c0.noise, patience=c0.patience,
        )
        res = net.solve(x, generator=gen, group=group, a=a, max_it=max_it)
    else:
        net = DenseResonator(cbs, max_it=int(max_it.max()), update=c0.update,
                             patience=c0.patience)
        res = net.solve(x, generator=gen, group=group, max_it=max_it)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0

    truth = torch.cat([p.indices for p in probs])
    correct = res.correct(truth)
    factor_ok = (res.indices == truth).double()
    out, s = [], 0
    for c, n, mi in zip(cells, counts, maxits):
        sl = slice(s, s + n)
        s += n
        r = c.as_dict()
        r["device"] = str(device)
        r.update(
            problem_size=M**V,
            max_it=mi,
            accuracy=float(correct[sl].double().mean()),
            factor_accuracy=float(factor_ok[sl].mean()),
            converged_frac=float(res.converged[sl].double().mean()),
            **_iteration_stats(res.iterations[sl]),
            seconds=seconds * n / B,
            seconds_per_problem=seconds / B,
            problems_per_second=B / seconds if seconds > 0 else float("inf"),
            pack_cells=len(cells),
            pack_problems=B,
            pack_seconds=seconds,
        )
        if kind == "sparse":
            r["L"] = D // c.k
        out.append(r)
    return out


def evaluate_pack(cells: Sequence[ResonatorCell | Mapping], *,
                  max_pack_problems: int = 4096) -> list[dict]:
    """Evaluate many cells; those that share shapes and options run as one batch.

    ``cells`` are :class:`ResonatorCell` s (or dicts, built into cells here). Cells sharing
    ``(kind, D, k, V, M, device, shared_codebooks, update, patience)`` and the sparse options
    are vectorised, in batches of at most ``max_pack_problems`` problems. A packed cell sees
    exactly the problems of its solo run, but the dynamics' random numbers differ, so its
    figures are statistically, not bitwise, those of the solo run. Timing is per pack:
    ``seconds_per_problem`` is the pack's wall time over its problems. Returns one dict per
    cell, in input order: the cell's fields plus ``accuracy`` (all V factors right),
    ``factor_accuracy``, ``converged_frac``, ``iters_mean / median / p95 / max`` (unconverged
    problems count ``max_it``), ``seconds``, ``seconds_per_problem``, ``problems_per_second``,
    ``problem_size = M^V``, the resolved ``max_it``, ``pack_*`` and (sparse) ``L``.
    """
    cells = [c if isinstance(c, ResonatorCell) else ResonatorCell.from_config(c) for c in cells]
    devices = {c.device: resolve_device(c.device) for c in cells}
    buckets: dict[tuple, list[int]] = {}
    for i, c in enumerate(cells):
        buckets.setdefault(_pack_key(c, devices[c.device]), []).append(i)
    results: list[dict | None] = [None] * len(cells)
    for idxs in buckets.values():
        device = devices[cells[idxs[0]].device]
        chunk, size = [], 0
        for i in idxs + [None]:
            if i is not None and (not chunk or size + cells[i].num_problems <= max_pack_problems):
                chunk.append(i)
                size += cells[i].num_problems
                continue
            for j, r in zip(chunk, _run_pack([cells[j] for j in chunk], device)):
                results[j] = r
            chunk, size = ([i], cells[i].num_problems) if i is not None else ([], 0)
    return results  # type: ignore[return-value]


def evaluate_sparse(
    D: int, k: int, a: int, V: int, M: int, num_problems: int = 256, seed: int = 0,
    max_it: int | None = None, device: str = "cpu", **options,
) -> dict:
    """One sparse cell (:func:`evaluate_pack`'s result); ``options``: the other
    :class:`ResonatorCell` fields (``bundling``, ``update``, ``weights``, ``overlap``,
    ``similarity``, ``noise``, ``patience``, ``shared_codebooks``)."""
    return evaluate_pack([dict(kind="sparse", D=D, k=k, a=a, V=V, M=M, num_problems=num_problems,
                               seed=seed, max_it=max_it, device=device, **options)])[0]


def evaluate_dense(
    D: int, V: int, M: int, num_problems: int = 256, seed: int = 0,
    max_it: int | None = None, device: str = "cpu", **options,
) -> dict:
    """One dense cell; ``options``: ``update``, ``patience``, ``shared_codebooks``."""
    return evaluate_pack([dict(kind="dense", D=D, V=V, M=M, num_problems=num_problems, seed=seed,
                               max_it=max_it, device=device, **options)])[0]
