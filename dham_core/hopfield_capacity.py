"""Capacity of the dense associative memory with random ±1 memories, measured streamed and packed
(Krotov & Hopfield 2016; docs/krotov_hopfield.md, "Capacity" and "Random starts and XOR").

Measurements (many (power, rectified) configs and memory sets in one pass; larger K reuses the
smaller K's memories): ``one_step_error``, ``perfect_recall_fraction``, ``half_recall_capacity``,
``random_start_recall``, and the 3-unit XOR (``xor_outputs``). The closed forms they are compared
with live in the torch-free ``dham_core.formulas``.

One sweep trial — ``CapacityConfig``, ``capacity_rows`` — runs one experiment over a block of
memory sets and returns its cells as rows.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple, Sequence

import torch

from dham_core.checks import is_int, is_int_list, is_number, refuse
from dham_core.devices import resolve_device
from dham_core.formulas import memories_for_error, one_step_error_probability, perfect_recall_capacity
from dham_core.hopfield_dynamics import async_flips, field_tables, lookup, retrieve, table_offsets
from dham_core.hopfield_model import check_power

_BLOCK = 1024  # memories are drawn in fixed blocks so any chunking sees the same memories


@functools.lru_cache(maxsize=64)
def _memory_block(seed: int, block: int, num_neurons: int) -> torch.Tensor:
    # cached: streamed measurements cut the same block at many nearby checkpoints
    gen = torch.Generator().manual_seed((seed * 1_000_003 + block) % (2 ** 63))
    return torch.randint(0, 2, (_BLOCK, num_neurons), generator=gen, dtype=torch.int8)


def random_memories(seed: int, start: int, stop: int, num_neurons: int, device=None) -> torch.Tensor:
    """Rows ``start..stop−1`` of seed ``seed``'s endless stream of random ±1 memories (float32).

    Block j (rows j·1024 … ) comes from its own generator seeded by (seed, j), so the memories
    do not depend on how the stream is cut into chunks or which cells are packed together.
    """
    rows = []
    for block in range(start // _BLOCK, (stop - 1) // _BLOCK + 1 if stop > start else start // _BLOCK):
        bits = _memory_block(seed, block, num_neurons)
        lo, hi = max(start - block * _BLOCK, 0), min(stop - block * _BLOCK, _BLOCK)
        rows.append(bits[lo:hi])
    out = torch.cat(rows) if rows else torch.empty(0, num_neurons, dtype=torch.int8)
    return (out.to(device=device, dtype=torch.float32) * 2 - 1)


def _configs(powers, rectified) -> list[tuple[float, bool]]:
    powers = [powers] if isinstance(powers, (int, float)) else list(powers)
    flags = [rectified] if isinstance(rectified, bool) else list(rectified)
    out = []
    for n in powers:
        for r in flags:
            out.append((check_power(n, r, "powers"), bool(r)))
    if not out:
        raise ValueError("powers must name at least one power")
    return out


def _check_sizes(num_neurons: int, seeds) -> list[int]:
    if not is_int(num_neurons) or num_neurons < 2:
        raise ValueError(f"num_neurons must be an integer >= 2 (got num_neurons={num_neurons!r})")
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    return seeds


def _stability_stream(num_neurons: int, configs, seeds, num_probes: int, checkpoints: Iterator[int],
                      device) -> Iterator[tuple[int, torch.Tensor]]:
    """Stream memories; at each checkpoint K yield the unstable-bit count of every probe.

    Probe ν < num_probes starts at stored memory ξ^ν; its bits' one-step stability in the
    network of the first K memories is ``σ_i D_i ≥ 0`` (fast path fields accumulate
    chunk by chunk: D of the first K memories is a sum over them). Yields
    ``(K, counts (n_seeds, n_configs, num_probes) int)``; probes ≥ K are not stored yet.
    """
    device = torch.device(device)
    g, q, s = len(seeds), len(configs), num_probes
    power = torch.tensor([c[0] for c in configs], dtype=torch.float64)
    rect = torch.tensor([c[1] for c in configs])
    tab_a, tab_b = field_tables(num_neurons, power, rect, device)
    tab_a, tab_b = tab_a.flatten(), tab_b.flatten()
    offset = table_offsets(num_neurons, torch.arange(q, device=device)).view(1, q, 1, 1)
    probes = torch.stack([random_memories(sd, 0, s, num_neurons, device) for sd in seeds])  # (G,S,N)
    d = torch.zeros(g, q, s, num_neurons, device=device)
    b_sum = torch.zeros(g, q, s, 1, device=device)
    chunk = max(64, (1 << 22) // (g * q * s))
    pos = 0
    for k in checkpoints:
        while pos < k:
            stop = min(k, pos + chunk)
            xi = torch.stack([random_memories(sd, pos, stop, num_neurons, device) for sd in seeds])  # (G,k,N)
            h = (probes @ xi.transpose(1, 2))[:, None]  # (G,1,S,k)
            hq = h.expand(g, q, s, h.shape[-1])
            a = lookup(tab_a, hq, offset)  # (G,Q,S,k)
            b_sum += lookup(tab_b, hq, offset).sum(-1, keepdim=True)
            d += (a.view(g, q * s, -1) @ xi).view(g, q, s, num_neurons)
            pos = stop
        margins = probes[:, None] * d + b_sum
        yield k, (margins < 0).sum(-1)


def _probe_valid(k: int, num_probes: int, device) -> torch.Tensor:
    return torch.arange(num_probes, device=device) < k


class CapacityCurve(NamedTuple):
    """Packed measurement over configs (power, rectified) × K, pooled over seeds and probes."""

    configs: list
    """[(power, rectified), …] — rows of the tensors below."""
    num_memories: list
    """K values — columns."""
    errors: torch.Tensor
    """(configs, K) count: unstable bits (one_step_error) or imperfectly recalled probes."""
    trials: torch.Tensor
    """(configs, K) count: bits or probes observed."""

    @property
    def rate(self) -> torch.Tensor:
        """errors / trials: per-bit error, or the fraction of memories not recalled perfectly."""
        return self.errors.double() / self.trials.double()

    @property
    def recalled(self) -> torch.Tensor:
        """1 − rate: for ``perfect_recall_fraction``, the fraction recalled perfectly."""
        return 1 - self.rate


def _curve(num_neurons, num_memories, powers, rectified, seeds, num_probes, device, per_bit: bool):
    seeds = _check_sizes(num_neurons, seeds)
    configs = _configs(powers, rectified)
    ks = sorted({int(k) for k in num_memories})
    if not ks or ks[0] < 1:
        raise ValueError(f"num_memories must be integers >= 1 (got num_memories={num_memories!r})")
    if num_probes < 1:
        raise ValueError(f"num_probes must be >= 1 (got num_probes={num_probes!r})")
    errors = torch.zeros(len(configs), len(ks), dtype=torch.long)
    trials = torch.zeros_like(errors)
    for col, (k, counts) in enumerate(_stability_stream(num_neurons, configs, seeds, num_probes, iter(ks), device)):
        valid = _probe_valid(k, num_probes, counts.device)
        if per_bit:
            errors[:, col] = (counts * valid).sum((0, 2)).cpu()
            trials[:, col] = int(valid.sum()) * num_neurons * len(seeds)
        else:
            errors[:, col] = ((counts > 0) & valid).sum((0, 2)).cpu()
            trials[:, col] = int(valid.sum()) * len(seeds)
    return CapacityCurve(configs, ks, errors, trials)


def one_step_error(num_neurons: int, num_memories: Sequence[int], powers, rectified=False, seeds=range(4),
                   num_probes: int = 100, device="cpu") -> CapacityCurve:
    """Per-bit one-step error vs K for random ±1 memories (docs/krotov_hopfield.md, "Capacity").

    For every (power, rectified) config, seed and K: start at each of the first
    ``min(num_probes, K)`` stored memories, count the bits one update would flip. All configs
    and seeds are packed into one pass; larger K reuses the smaller K's memories (a nested
    stream). Compare ``.rate`` with ``formulas.one_step_error_probability``.
    """
    return _curve(num_neurons, num_memories, powers, rectified, seeds, num_probes, device, per_bit=True)


def perfect_recall_fraction(num_neurons: int, num_memories: Sequence[int], powers, rectified=False,
                            seeds=range(4), num_probes: int = 100, device="cpu") -> CapacityCurve:
    """Fraction of stored memories recalled perfectly vs K (``1 − .rate``; ``.errors`` = failures).

    "Start at a memory and update to a fixed point": asynchronous updates only ever lower the
    energy, so the state returns to the memory only if it never left it — a memory is recalled
    perfectly exactly when no bit is unstable there (tests/test_hopfield.py checks this against the
    full dynamics).
    """
    return _curve(num_neurons, num_memories, powers, rectified, seeds, num_probes, device, per_bit=False)


def half_recall_capacity(num_neurons: int, powers, rectified=False, seeds=range(4), num_probes: int = 100,
                         growth: float = 1.03, max_memories: int | None = None, device="cpu") -> dict:
    """K at which half of the stored memories are recalled perfectly, per (power, rectified).

    Streams memories along geometric checkpoints K_{j+1} = max(K_j + 1, ⌊growth·K_j⌋) until
    the recalled fraction (pooled over seeds and probes) drops below one half for every
    config (or K reaches ``max_memories``), then interpolates the crossing in log K. Returns
    ``{(power, rectified): K_half}`` (``nan`` if never crossed).
    """
    seeds = _check_sizes(num_neurons, seeds)
    configs = _configs(powers, rectified)
    if not growth > 1:
        raise ValueError(f"growth must be > 1 (got growth={growth!r})")
    if max_memories is None:
        max_memories = int(4 * max(perfect_recall_capacity(num_neurons, int(math.ceil(c[0]))) for c in configs)) + 100
    crossed = [None] * len(configs)
    previous = [(0, 1.0)] * len(configs)

    def checkpoints():
        k = 1
        while k <= max_memories and any(c is None for c in crossed):
            yield k
            k = max(k + 1, int(k * growth))

    for k, counts in _stability_stream(num_neurons, configs, seeds, num_probes, checkpoints(), device):
        valid = _probe_valid(k, num_probes, counts.device)
        frac = (((counts == 0) & valid).sum((0, 2)).double() / (int(valid.sum()) * len(seeds))).cpu()
        for i in range(len(configs)):
            if crossed[i] is None:
                if float(frac[i]) < 0.5:
                    k0, f0 = previous[i]
                    if k0 == 0:
                        crossed[i] = float(k)
                    else:
                        t = (f0 - 0.5) / (f0 - float(frac[i]))
                        crossed[i] = math.exp(math.log(k0) + t * (math.log(k) - math.log(k0)))
                previous[i] = (k, float(frac[i]))
    return {cfg: (math.nan if c is None else c) for cfg, c in zip(configs, crossed)}


class RandomStartResult(NamedTuple):
    configs: list
    """[(power, rectified), …]."""
    stored: torch.Tensor
    """(configs,) fraction of starts that end exactly in a stored memory."""
    negated: torch.Tensor
    """(configs,) fraction ending in the negative of a stored memory."""
    converged: torch.Tensor
    """(configs,) fraction that reached a fixed point within ``max_sweeps``."""


def random_start_recall(num_neurons: int, num_memories: int, powers, rectified=False, seeds=range(1),
                        num_starts: int = 1000, max_sweeps: int = 100, start_batch: int = 2000,
                        device="cpu") -> RandomStartResult:
    """The many-random-starts experiment (Krotov & Hopfield 2016: N = 100, K = 2000, 10,000 starts;
    docs/krotov_hopfield.md, "Random starts and XOR").

    Random ±1 states evolve by asynchronous updates to a fixed point; reported: the fraction
    ending in a stored memory (the rest are spurious states). Configs × seeds are packed; each
    seed's memories are shared by its configs.
    """
    seeds = _check_sizes(num_neurons, seeds)
    configs = _configs(powers, rectified)
    device = torch.device(device)
    q = len(configs)
    power = torch.tensor([c[0] for c in configs], dtype=torch.float64)
    rect = torch.tensor([c[1] for c in configs])
    tab_a, tab_b = field_tables(num_neurons, power, rect, device)
    tab_a, tab_b = tab_a.flatten(), tab_b.flatten()
    stored = torch.zeros(q, dtype=torch.long)
    negated = torch.zeros_like(stored)
    converged = torch.zeros_like(stored)
    per_batch = max(1, start_batch // q)
    for sd in seeds:  # one memory set at a time: finished starts then drop out of the batch
        mem = random_memories(sd, 0, num_memories, num_neurons, device)[None]  # (1,K,N)
        for s0 in range(0, num_starts, per_batch):
            s = min(per_batch, num_starts - s0)
            # start states from their own stream (the offset keeps them apart from the memories)
            gen = torch.Generator().manual_seed((sd * 1_000_003 + 999_983 + s0) % (2 ** 63))
            start = torch.randint(0, 2, (s, num_neurons), generator=gen).float() * 2 - 1
            sp = start.to(device).repeat(q, 1)[None]  # (1, Q·S, N): every config from the same starts
            offset = table_offsets(num_neurons, torch.arange(q, device=device).repeat_interleave(s))
            conv, _ = async_flips(mem, sp, offset.view(1, -1, 1), None, tab_a, tab_b, max_sweeps)
            overlap = (sp[0] @ mem[0].T).view(q, s, num_memories)
            stored += (overlap.amax(-1) == num_neurons).sum(1).cpu()
            negated += (overlap.amin(-1) == -num_neurons).sum(1).cpu()
            converged += conv.view(q, s).sum(1).cpu()
    total = num_starts * len(seeds)
    return RandomStartResult(configs, stored.double() / total, negated.double() / total, converged.double() / total)


XOR_TABLE = ((-1, -1, -1), (-1, 1, 1), (1, -1, 1), (1, 1, -1))
"""Units (x, y, z) with z = XOR(x, y) in ±1 code; the 4 rows are the memories (K = 4 > N = 3)."""


def xor_outputs(power: int, rectified: bool) -> torch.Tensor:
    """The XOR test: clamp (x, y) of each truth-table row, start z at −1 and at +1, run the
    dynamics with the 4 rows as memories; returns the 8 final z values, rows repeated for z
    starting at −1 then +1."""
    table = torch.tensor(XOR_TABLE, dtype=torch.float64)
    starts = torch.cat([table[:, :2].repeat(2, 1), torch.tensor([[-1.0]] * 4 + [[1.0]] * 4, dtype=torch.float64)], 1)
    result = retrieve(table, starts, power, rectified, clamped=torch.tensor([True, True, False]))
    return result.spins[:, 2]


# ----------------------------------------------------------------------------------------
# One capacity trial: one experiment over a block of random memory sets, as rows of cells
# ----------------------------------------------------------------------------------------

CAPACITY_EXPERIMENTS = ("one_step", "half_recall", "random_starts", "xor")


@dataclass
class CapacityConfig:
    """One capacity trial: one experiment over a block of random memory sets.

    Memory set j of trial seed s is ``random_memories(s·sets + j, …)`` (sets = the experiment's
    ``*_sets``), so trials with different seeds hold disjoint sets and their counts pool exactly.
    """

    experiment: str = "one_step"
    """"one_step" (per-bit error vs K), "half_recall" (K where half the memories are perfect, vs N),
    "random_starts" (fraction of random starts ending in a stored memory) or "xor" (the 3-unit
    XOR with 4 memories)."""
    rectified_flags: list = field(default_factory=lambda: [False, True])
    """Energies measured side by side: plain power (False) and rectified polynomial (True)."""
    num_probes: int = 100
    """one_step / half_recall: stored memories probed per set (the first min(probes, K))."""
    one_step_neurons: int = 100
    """(a) N."""
    one_step_powers: list = field(default_factory=lambda: [2, 3, 4])
    """(a) powers n."""
    one_step_memories: list | None = None
    """(a) K values for every n; None: ``one_step_points`` K per n spread (log) over the range
    where the paper's P_err formula lies in ``one_step_range``."""
    one_step_range: list = field(default_factory=lambda: [3e-4, 0.1])
    """(a) [low, high] of the formula's P_err defining the automatic K range."""
    one_step_points: int = 8
    """(a) K values per n in the automatic range."""
    one_step_sets: int = 64
    """(a) random memory sets per trial (enough for >= 50 errors where P_err >= 1e-3 at small K)."""
    half_recall_neurons: list = field(default_factory=lambda: [50, 71, 100, 141, 200])
    """(b) N values."""
    half_recall_powers: list = field(default_factory=lambda: [2, 3, 4, 5])
    """(b) powers n."""
    half_recall_growth: float = 1.03
    """(b) K checkpoints grow geometrically by this factor."""
    half_recall_max_memories: int | None = None
    """(b) stop streaming at this K (a cell not crossed by then reports a lower bound); None: 4×
    the largest perfect-recall formula value + 100."""
    half_recall_sets: int = 8
    """(b) random memory sets per trial."""
    random_start_neurons: int = 100
    """(c) N (paper 100)."""
    random_start_memories: int = 2000
    """(c) K (paper 2000)."""
    random_start_powers: list = field(default_factory=lambda: [2, 3, 4, 5, 6])
    """(c) powers n."""
    random_starts: int = 1000
    """(c) random start states per memory set (paper: 10,000 in all)."""
    random_start_sets: int = 10
    """(c) random memory sets per trial."""
    max_sweeps: int = 100
    """(c) asynchronous passes before a start counts as not converged."""
    xor_powers: list = field(default_factory=lambda: [1, 2, 3, 4])
    """(d) powers n of the XOR test."""
    seed: int = 0
    """Trial seed: selects the block of memory sets."""
    device: str = "cpu"
    """"cpu", "cuda", "auto"."""

    def validate(self) -> "CapacityConfig":
        fail = functools.partial(refuse, self)
        if self.experiment not in CAPACITY_EXPERIMENTS:
            fail("experiment", f"one of {CAPACITY_EXPERIMENTS}")
        if not isinstance(self.rectified_flags, (list, tuple)) or not self.rectified_flags or not all(
                isinstance(r, bool) for r in self.rectified_flags):
            fail("rectified_flags", "a non-empty list of true/false")
        for name in ("one_step_sets", "half_recall_sets", "random_start_sets", "num_probes", "one_step_points",
                     "random_starts", "max_sweeps"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(name, "an integer >= 1")
        for name in ("one_step_neurons", "random_start_neurons"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 2:
                fail(name, "an integer >= 2")
        if not is_int_list(self.half_recall_neurons, 2):
            fail("half_recall_neurons", "a non-empty list of integers >= 2")
        for name in ("one_step_powers", "half_recall_powers", "random_start_powers", "xor_powers"):
            if not is_int_list(getattr(self, name), 1):
                fail(name, "a non-empty list of integer powers >= 1")
        if self.one_step_memories is not None and not is_int_list(self.one_step_memories, 1):
            fail("one_step_memories", "null or a non-empty list of integers K >= 1")
        if not is_int(self.random_start_memories) or self.random_start_memories < 1:
            fail("random_start_memories", "an integer K >= 1")
        low_high = self.one_step_range
        if (not isinstance(low_high, (list, tuple)) or len(low_high) != 2
                or not 0 < float(low_high[0]) < float(low_high[1]) < 1):
            fail("one_step_range", "[low, high] with 0 < low < high < 1")
        if not is_number(self.half_recall_growth) or not self.half_recall_growth > 1:
            fail("half_recall_growth", "a number > 1")
        if self.half_recall_max_memories is not None and (
                not is_int(self.half_recall_max_memories) or self.half_recall_max_memories < 1):
            fail("half_recall_max_memories", "null or an integer >= 1")
        if not is_int(self.seed) or self.seed < 0:
            fail("seed", "an integer >= 0")
        if self.device not in ("cpu", "auto") and not str(self.device).startswith("cuda"):
            fail("device", '"cpu", "auto" or "cuda[:N]"')
        return self

    def seeds(self) -> list[int]:
        """The memory-set seeds of this trial's experiment."""
        sets = {"one_step": self.one_step_sets, "half_recall": self.half_recall_sets,
                "random_starts": self.random_start_sets, "xor": 1}[self.experiment]
        return [self.seed * sets + j for j in range(sets)]


def one_step_memories(cfg: CapacityConfig, power: int) -> list[int]:
    """The K values of experiment (a) for ``power``."""
    if cfg.one_step_memories is not None:
        return sorted(set(cfg.one_step_memories))
    low, high = (memories_for_error(cfg.one_step_neurons, power, p) for p in cfg.one_step_range)
    points = cfg.one_step_points
    ks = {max(1, round(low * (high / low) ** (i / max(points - 1, 1)))) for i in range(points)}
    return sorted(ks)


def _one_step_rows(cfg: CapacityConfig, seeds: list[int], device) -> tuple[list[dict], dict]:
    n_neurons = cfg.one_step_neurons
    rows = []
    for power in cfg.one_step_powers:
        curve = one_step_error(n_neurons, one_step_memories(cfg, power), power, list(cfg.rectified_flags), seeds,
                               cfg.num_probes, device)
        for row, (n, rect) in enumerate(curve.configs):
            for col, k in enumerate(curve.num_memories):
                formula = one_step_error_probability(n_neurons, k, int(n))
                rows.append(dict(N=n_neurons, K=k, n=n, rect=float(rect), errors=int(curve.errors[row, col]),
                                 bits=int(curve.trials[row, col]), rate=float(curve.rate[row, col]),
                                 formula=formula, memory_sets=len(seeds)))
    checked = [abs(math.log2(r["rate"] / r["formula"])) for r in rows
               if not r["rect"] and r["formula"] >= 1e-3 and r["errors"] >= 50]
    return rows, {"worst_log2_ratio": max(checked) if checked else 0.0, "checked_cells": len(checked)}


def _half_recall_rows(cfg: CapacityConfig, seeds: list[int], device) -> tuple[list[dict], dict]:
    rows = []
    for n_neurons in cfg.half_recall_neurons:
        cap = cfg.half_recall_max_memories
        auto = int(4 * max(perfect_recall_capacity(n_neurons, p) for p in cfg.half_recall_powers)) + 100
        cap = auto if cap is None else min(cap, auto)
        found = half_recall_capacity(n_neurons, list(cfg.half_recall_powers), list(cfg.rectified_flags), seeds,
                                     cfg.num_probes, cfg.half_recall_growth, cap, device)
        for (n, rect), k_half in found.items():
            row = dict(N=n_neurons, n=n, rect=float(rect), memory_sets=len(seeds),
                       k_formula=perfect_recall_capacity(n_neurons, int(n)))
            if math.isnan(k_half):
                row["k_half_lower_bound"] = float(cap)
            else:
                row["k_half"] = k_half
            rows.append(row)
    ratios = [math.log(r["k_half"] / r["k_formula"]) for r in rows if "k_half" in r]
    return rows, {"mean_log_ratio_to_formula": sum(ratios) / len(ratios) if ratios else 0.0}


def _xor_rows(cfg: CapacityConfig) -> tuple[list[dict], dict]:
    target = -torch.tensor([row[0] * row[1] for row in XOR_TABLE] * 2, dtype=torch.float64)
    rows = []
    for power in cfg.xor_powers:
        for rect in cfg.rectified_flags:
            if not rect and power != int(power):
                continue
            correct = int((xor_outputs(power, rect) == target).sum())
            rows.append(dict(N=3, K=4, n=power, rect=float(rect), correct=correct, presentations=8,
                             solved=float(correct == 8)))
    return rows, {"solved_count": sum(r["solved"] for r in rows)}


def _random_start_rows(cfg: CapacityConfig, seeds: list[int], device) -> tuple[list[dict], dict]:
    result = random_start_recall(cfg.random_start_neurons, cfg.random_start_memories, list(cfg.random_start_powers),
                                 list(cfg.rectified_flags), seeds, cfg.random_starts, cfg.max_sweeps, device=device)
    rows = [dict(N=cfg.random_start_neurons, K=cfg.random_start_memories, n=n, rect=float(rect),
                 stored=float(result.stored[i]), negated=float(result.negated[i]),
                 converged=float(result.converged[i]), starts=cfg.random_starts * len(seeds))
            for i, (n, rect) in enumerate(result.configs)]
    return rows, {"stored_mean": sum(r["stored"] for r in rows) / len(rows)}


def capacity_rows(cfg: CapacityConfig) -> tuple[list[dict], dict]:
    """The cells of one capacity trial and the pack's aggregate (for the last cell).

    Cells (``N, K, n, rect`` are the coordinates; rect 1 = rectified energy):

    * one_step: ``errors`` (unstable bits), ``bits`` (observed), ``rate``, ``formula`` (P_err);
      aggregate ``worst_log2_ratio``, ``checked_cells``;
    * half_recall: ``k_half`` or ``k_half_lower_bound`` (not crossed by the cap), ``k_formula``
      (perfect-recall ``N^(n−1)/(2(2n−3)!! ln N)``); aggregate ``mean_log_ratio_to_formula``;
    * random_starts: ``stored``, ``negated``, ``converged`` (fractions), ``starts``; ``stored_mean``;
    * xor: ``correct`` (of the 8 presentations: 4 inputs × z starting at ±1), ``solved`` (all 8);
      ``solved_count``.
    """
    cfg.validate()
    device = resolve_device(cfg.device)
    if cfg.experiment == "one_step":
        return _one_step_rows(cfg, cfg.seeds(), device)
    if cfg.experiment == "half_recall":
        return _half_recall_rows(cfg, cfg.seeds(), device)
    if cfg.experiment == "xor":
        return _xor_rows(cfg)
    return _random_start_rows(cfg, cfg.seeds(), device)
