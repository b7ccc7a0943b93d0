"""Sparse and dense resonator networks: factorise a bound vector into its codebook entries.

Problem (docs/resonator.md, eq. 4; thesis §3.1.1): given ``x = a_{i_1} ⊗ … ⊗ a_{i_V}`` with
factor ``v`` drawn from its own codebook of ``M`` random codewords, find ``i_1 … i_V``.

- :class:`SparseResonator` works on sparse block codes in offset form (``dham_core.sbc``):
  init eq. 5, then per factor unbind (eq. 6), attention with noise and top-``a`` (eqs. 7-8),
  weighted bundle and thinning (eq. 9); docs/resonator.md, "The sparse resonator".
- ``dham_core.resonator_dense.DenseResonator`` is Frady, Kent, Olshausen & Sommer (2020) on ±1 vectors (eqs. 11-13,
  "The dense resonator").
- Both share one solve loop: ``update="sequential"|"parallel"``, per-problem convergence after
  ``patience`` unchanged iterations (eq. 10), freezing, ``max_it`` (thesis eq. 3.7), and a
  working set that drops finished problems (docs/resonator.md, "Convergence and batches").

The readings chosen where the thesis is ambiguous (cosine vs count attention, the noise scale,
patience, |overlap| dense decoding, offset vs matmul bundling) are argued in docs/resonator.md,
"Readings we chose". Random problems: ``dham_core.resonator_problems``; many configurations
at once: ``dham_core.resonator_pack``. Timings: ``benchmarks/resonator.py``.

Longer than 500 lines: the shared solve loop and the sparse network's hooks are read together
(the loop's working set, per-problem ``a``/``max_it`` and recording exist for that network).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from dham_core import sbc
from dham_core.checks import is_int, positive_int

__all__ = [
    "ATTENTION_WEIGHTS", "BUNDLING", "OVERLAPS", "SIMILARITIES", "UPDATES",
    "Resonator", "ResonatorResult", "SparseResonator",
    "check_a", "check_choice", "default_max_it", "group_runs", "stack_codebooks",
]

BUNDLING = ("offset", "matmul")
UPDATES = ("sequential", "parallel")
ATTENTION_WEIGHTS = ("overlap", "noisy")
SIMILARITIES = ("cosine", "count")
OVERLAPS = ("auto", "lookup", "compare")
# Lookup tables (V·G·D·M float16) above this size fall back to comparing offsets.
_LOOKUP_TABLE_MAX_BYTES = 1 << 30
# Elements of the (n, M, k) comparison tensor processed at once by overlap="compare".
_COMPARE_CHUNK = 1 << 25


def default_max_it(M: int, V: int) -> int:
    """Thesis eq. 3.7: ``max(2000, M^V / 1000)`` (rounded up)."""
    return max(2000, math.ceil(M**V / 1000))


@dataclass
class ResonatorResult:
    """Outcome of :meth:`SparseResonator.solve` / :meth:`DenseResonator.solve`."""

    indices: Tensor  # (B, V) int64: decoded codeword per factor (arg-max overlap of the final estimate)
    iterations: Tensor  # (B,) int64: iteration of the fixed point if converged, else max_it
    converged: Tensor  # (B,) bool: reached a fixed point before max_it
    estimates: Tensor  # (B, V, k) offsets (sparse) or (B, V, D) ±1 (dense): final estimates
    history: Tensor | None = None  # (T+1, B, V, ·) estimates after each iteration (record=True only)
    attention: Tensor | None = None  # (T, B, V, M) w'/k per iteration (record_attention=True); NaN once stopped

    def correct(self, true_indices: Tensor) -> Tensor:
        """(B,) bool: every factor decoded correctly."""
        return (self.indices == true_indices.to(self.indices.device)).all(dim=1)

    def accuracy(self, true_indices: Tensor) -> float:
        return float(self.correct(true_indices).float().mean())


def check_choice(name: str, value, allowed: Sequence) -> None:
    """Refuse ``value`` unless it is one of ``allowed``, naming the field and the choices."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)} (got {name}={value!r})")


def check_a(a, M: int) -> None:
    """Attention sparsification ``1 <= a <= M`` (eq. 8): an int or a per-problem tensor."""
    if isinstance(a, Tensor):
        lo, hi = (int(a.min()), int(a.max())) if a.numel() else (1, 1)
    elif is_int(a):
        lo = hi = int(a)
    else:
        raise ValueError(f"a must be an integer with 1 <= a <= M = {M} (got a={a!r})")
    if lo < 1 or hi > M:
        got = f"a={lo}" if lo == hi else f"a in [{lo}, {hi}]"
        raise ValueError(f"a must satisfy 1 <= a <= M = {M} (got {got})")


def stack_codebooks(codebooks, what: str, max_it) -> tuple[Tensor, int, int, int]:
    """Codebooks as ``(G, V, M, what)`` with ``G, V, M``, from a ``(V, M, ·)`` / ``(G, V, M, ·)``
    tensor or a sequence of ``V`` per-factor codebooks; checks ``V, M >= 2`` and ``max_it``."""
    cb = codebooks if isinstance(codebooks, Tensor) else _stacked(codebooks, what)
    if cb.dim() == 3:
        cb = cb.unsqueeze(0)
    if cb.dim() != 4:
        raise ValueError(
            f"codebooks must have shape (V, M, {what}) or (G, V, M, {what}) "
            f"(got shape {tuple(cb.shape)})"
        )
    G, V, M, _ = cb.shape
    if V < 2:
        raise ValueError(f"V must be >= 2 (got V={V})")
    if M < 2:
        raise ValueError(f"M must be >= 2 (got M={M})")
    if max_it is not None:
        positive_int("max_it", max_it)
    return cb, G, V, M


def _stacked(codebooks: Sequence[Tensor], what: str) -> Tensor:
    shapes = [tuple(c.shape) for c in codebooks]
    if len(set(shapes)) > 1:
        raise ValueError(
            f"codebooks must all have the same shape (M, {what}) or (G, M, {what}); got {shapes}"
        )
    if not shapes:
        raise ValueError("codebooks must hold V >= 2 codebooks (got none)")
    return torch.stack(list(codebooks), dim=-3)


def group_runs(group: Tensor) -> list[tuple[int, int, int]]:
    """(group, start, end) of the consecutive runs of a sorted group vector (host sync)."""
    values, counts = torch.unique_consecutive(group, return_counts=True)
    runs, start = [], 0
    for g, c in zip(values.tolist(), counts.tolist()):
        runs.append((g, start, start + c))
        start += c
    return runs


class Resonator:
    """The solve loop both networks share (docs/resonator.md, "Convergence and batches").

    Subclasses supply the hooks: initial estimates, one iteration over every factor, decoding
    and the shape check of ``x``. Codebooks are ``(G, V, M, ·)``: ``G`` sets, each problem
    picks its set through ``group`` (one shared set is ``G = 1``, the thesis's setting).
    """

    V: int
    M: int
    G: int
    max_it: int
    update: str
    device: torch.device

    def _init_estimates(self, group: Tensor, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    def _iterate(self, x, est, group, runs, a, a_max, generator) -> Tensor:
        raise NotImplementedError

    def _decode(self, est: Tensor, group: Tensor) -> Tensor:
        raise NotImplementedError

    def _check_x(self, x: Tensor) -> None:
        raise NotImplementedError

    def _per_problem_a(self, a, B):  # sparse only
        return None, 0

    _attention_log: list | None = None  # while solve(record_attention=True): the sparse _iterate's overlaps

    def _prepare(self, x: Tensor, group: Tensor | None) -> Tensor:
        self._check_x(x)
        B = x.shape[0]
        if group is None:
            if self.G != 1:
                raise ValueError(f"group is required when there are G={self.G} codebook sets")
            return torch.zeros(B, dtype=torch.long, device=x.device)
        group = torch.as_tensor(group, dtype=torch.long, device=x.device)
        if group.shape != (B,) or (B and (int(group.min()) < 0 or int(group.max()) >= self.G)):
            raise ValueError(
                f"group must be a (B,) tensor with values in [0, G) = [0, {self.G}) "
                f"(got shape {tuple(group.shape)})"
            )
        return group

    def initial_estimates(self, batch: int | Tensor, *, generator: torch.Generator) -> Tensor:
        """Initial estimates for ``batch`` problems (an int, or the (B,) group tensor)."""
        group = batch if isinstance(batch, Tensor) else torch.zeros(batch, dtype=torch.long,
                                                                     device=self.device)
        return self._init_estimates(group, generator)

    def step(
        self,
        x: Tensor,
        estimates: Tensor,
        *,
        generator: torch.Generator | None = None,
        group: Tensor | None = None,
        a: int | Tensor | None = None,
    ) -> Tensor:
        """One full iteration (every factor once) from ``estimates``; no convergence logic."""
        group = self._prepare(x, group)
        a_vec, a_max = self._per_problem_a(a, x.shape[0])
        order = torch.argsort(group, stable=True)
        inv = torch.argsort(order)
        out = self._iterate(
            x[order], estimates[order], group[order], group_runs(group[order]),
            None if a_vec is None else a_vec[order], a_max, generator,
        )
        return out[inv]

    def solve(
        self,
        x: Tensor,
        *,
        generator: torch.Generator | None = None,
        group: Tensor | None = None,
        a: int | Tensor | None = None,
        max_it: int | Tensor | None = None,
        sync_every: int | None = None,
        record: bool = False,
        patience: int | None = None,
        record_attention: bool = False,
    ) -> ResonatorResult:
        """Factorise a batch ``x`` of problems.

        Update order: ``"sequential"`` refreshes factor ``v`` from the estimates already
        updated for factors ``< v`` in this iteration (Frady et al. 2020; thesis Fig. 3.1),
        ``"parallel"`` from the previous iteration only (what ``torchhd.resonator`` computes).
        A problem has converged at iteration ``t`` when none of its estimates changed during
        the last ``patience`` iterations (docs/resonator.md, eq. 10); it is then frozen and its
        count is ``t``; one that never converges stops at its ``max_it`` (thesis eq. 3.7).

        ``a`` (sparse only) and ``max_it`` may be per-problem ``(B,)`` tensors. ``sync_every``
        is how often converged problems are dropped from the working set (default 1 on CPU,
        16 on CUDA); in between they are frozen by masking. ``record=True`` keeps every
        iteration's estimates in ``result.history`` (for tests; memory grows with T).
        ``record_attention=True`` (sparse only) keeps each iteration's attention ``w'/k``
        (thesis Figs 3.2-3.3) in ``result.attention``; off, it costs nothing.
        """
        if record_attention and not isinstance(self, SparseResonator):
            raise ValueError("record_attention needs a SparseResonator (the dense one has no attention)")
        group = self._prepare(x, group)
        B = x.shape[0]
        device = x.device
        a_vec, a_max = self._per_problem_a(a, B)
        if max_it is None:
            max_it = self.max_it
        if isinstance(max_it, Tensor):
            maxit = max_it.to(device=device, dtype=torch.long)
            if maxit.shape != (B,) or (B and int(maxit.min()) < 1):
                raise ValueError(f"max_it must be >= 1 per problem (got shape {tuple(maxit.shape)})")
        else:
            maxit = torch.full((B,), positive_int("max_it", max_it), dtype=torch.long, device=device)
        patience = positive_int("patience", self.patience if patience is None else patience)
        if sync_every is None:
            sync_every = 1 if device.type == "cpu" else 16
        if sync_every < 1:
            raise ValueError(f"sync_every must be >= 1 (got sync_every={sync_every})")

        # Sort problems by codebook group so every group is a contiguous run.
        order = torch.argsort(group, stable=True)
        x_s, group_s, maxit_s = x[order], group[order], maxit[order]
        a_s = None if a_vec is None else a_vec[order]

        est = self._init_estimates(group_s, generator)
        final_est = est.clone()
        iters = torch.zeros(B, dtype=torch.long, device=device)
        conv = torch.zeros(B, dtype=torch.bool, device=device)
        history = [est.clone()] if record else None
        full = est.clone() if record else None
        attention = [] if record_attention else None
        self._attention_log = [] if record_attention else None

        ids = torch.arange(B, device=device)  # global (sorted) indices of the working set
        xa, ga, ma, aa, ea = x_s, group_s, maxit_s, a_s, est
        it_a = torch.zeros(B, dtype=torch.long, device=device)
        still_a = torch.zeros(B, dtype=torch.long, device=device)  # consecutive unchanged iterations
        conv_a = torch.zeros(B, dtype=torch.bool, device=device)
        live = torch.ones(B, dtype=torch.bool, device=device)
        runs = group_runs(ga)
        t = 0
        while ids.numel():
            new = self._iterate(xa, ea, ga, runs, aa, a_max, generator)
            if record_attention:  # the overlaps of this iteration's V factors, live problems only
                att = torch.full((B, self.V, self.M), float("nan"), device=device)
                att[ids[live]] = torch.stack(self._attention_log, dim=1)[live] / self.k
                attention.append(att)
                self._attention_log.clear()
            changed = (new != ea).flatten(1).any(dim=1)
            live_b = live.view(-1, *([1] * (ea.dim() - 1)))
            ea = torch.where(live_b, new, ea)
            it_a = it_a + live.long()
            still_a = torch.where(changed, 0, still_a + 1)
            conv_a = conv_a | (live & (still_a >= patience))
            live = live & ~conv_a & (it_a < ma)
            t += 1
            if record:
                full[ids] = ea
                history.append(full.clone())
            if t % sync_every == 0:  # host sync: retire the problems that stopped
                done = ~live
                if bool(done.any()):
                    gid = ids[done]
                    final_est[gid] = ea[done]
                    iters[gid] = it_a[done]
                    conv[gid] = conv_a[done]
                    keep = live
                    ids, xa, ga, ma, ea = ids[keep], xa[keep], ga[keep], ma[keep], ea[keep]
                    it_a, conv_a, live, still_a = it_a[keep], conv_a[keep], live[keep], still_a[keep]
                    aa = None if aa is None else aa[keep]
                    if ids.numel():
                        runs = group_runs(ga)

        self._attention_log = None
        indices = self._decode(final_est, group_s)
        inv = torch.argsort(order)
        hist = None
        if record:
            hist = torch.stack(history)[:, inv]
        return ResonatorResult(
            indices=indices[inv], iterations=iters[inv], converged=conv[inv],
            estimates=final_est[inv], history=hist,
            attention=torch.stack(attention)[:, inv] if record_attention else None,
        )


class SparseResonator(Resonator):
    """Sparse resonator network on offset vectors (thesis §3.1-3.2; docs/resonator.md, eqs. 5-10).

    Initial estimates: the thinned bundle of each whole codebook, tie-breaks drawn per problem
    (eq. 5). One iteration, per factor: unbind the other estimates from ``x`` (eq. 6), attention
    ``w'`` against every codeword plus noise ``r ~ U[0, noise)^M``, keep the top ``a`` (eqs. 7-8),
    bundle those codewords with their weights and thin (eq. 9).

    Args:
        codebooks: int64 offsets ``(V, M, k)`` (shared by the batch), ``(G, V, M, k)``
            (``G`` codebook sets chosen per problem by ``group``), or a sequence of ``V``
            tensors ``(M, k)`` / ``(G, M, k)`` of equal shape.
        D: vector dimension; ``k`` must divide it (``L = D / k``).
        a: attention sparsification, the number of codewords kept, ``1 <= a <= M``.
        max_it: iteration cap, default ``max(2000, M^V / 1000)`` (thesis eq. 3.7).
        bundling: ``"offset"`` (scatter-add of the ``a`` selected codewords) or
            ``"matmul"`` (thesis: dense ``(B, M) × (M, D)`` product); identical results.
        update: ``"sequential"`` or ``"parallel"`` (see :meth:`Resonator.solve`).
        weights: bundling weights of the ``a`` kept codewords: ``"overlap"`` — their
            integer overlaps ``w'`` (thesis eq. 3.5 as printed, ``w'_A[m]``; exact sums in
            float32), or ``"noisy"`` — the perturbed ``w' + r`` the top-``a`` was taken
            over (eq. 3.4's ``w_A``; rounded to multiples of 2^-20 of an overlap unit and
            summed in float64: exact in any order).
        overlap: ``"lookup"`` (gather rows of a ``(D, M)`` 0/1 table per factor, fast,
            ``V·G·D·M`` float16 entries), ``"compare"`` (compare offsets, no table), or ``"auto"``
            (lookup unless the float16 tables would exceed 1 GiB).
        similarity: attention ``w'`` before the noise: ``"cosine"`` (overlap / k, in [0, 1])
            or ``"count"`` (the integer overlap); docs/resonator.md, "Readings we chose".
        noise: amplitude of the attention noise, ``r ~ U[0, noise)`` (thesis: 1).
        patience: consecutive unchanged iterations that count as converged (thesis: 1).
    """

    def __init__(
        self,
        codebooks: Tensor | Sequence[Tensor],
        D: int,
        a: int,
        *,
        max_it: int | None = None,
        bundling: str = "offset",
        update: str = "sequential",
        weights: str = "overlap",
        overlap: str = "auto",
        similarity: str = "cosine",
        noise: float = 1.0,
        patience: int = 1,
    ) -> None:
        cb, G, V, M = stack_codebooks(codebooks, "k", max_it)
        k = cb.shape[-1]
        L = sbc.block_length(D, k)
        if cb.dtype.is_floating_point or cb.dtype == torch.bool:
            raise ValueError(f"codebooks must be integer offsets (got dtype {cb.dtype})")
        if int(cb.min()) < 0 or int(cb.max()) >= L:
            raise ValueError(
                f"codebook offsets must lie in [0, L) = [0, {L}) for D={D}, k={k} "
                f"(got [{int(cb.min())}, {int(cb.max())}])"
            )
        check_choice("bundling", bundling, BUNDLING)
        check_choice("update", update, UPDATES)
        check_choice("weights", weights, ATTENTION_WEIGHTS)
        check_choice("overlap", overlap, OVERLAPS)
        check_choice("similarity", similarity, SIMILARITIES)
        check_a(a, M)
        self.codebooks = cb.long()  # (G, V, M, k)
        self.G, self.V, self.M, self.k, self.L, self.D = G, V, M, k, L, D
        self.a = a
        if not noise > 0:
            raise ValueError(f"noise must be > 0 (got noise={noise!r})")
        self.noise = float(noise)
        self.similarity = similarity
        # Noise amplitude in units of the integer overlap: topk(w'/k + noise·r) for "cosine"
        # selects exactly what topk(w' + noise·k·r) selects.
        self._r_scale = self.noise * (k if similarity == "cosine" else 1)
        self.patience = positive_int("patience", patience)
        self.max_it = default_max_it(M, V) if max_it is None else max_it
        self.bundling, self.update, self.weights = bundling, update, weights
        self.device = cb.device
        # "overlap" weights are integers (exact in float32 in any summation order); "noisy"
        # weights are rounded to multiples of 2^-20 and summed in float64, also exact in any
        # order, so the offset and matmul paths build bit-identical accumulators.
        self.acc_dtype = torch.float64 if weights == "noisy" else torch.float32
        if overlap == "auto":
            overlap = "lookup" if V * G * D * M * 2 <= _LOOKUP_TABLE_MAX_BYTES else "compare"
        self.overlap = overlap
        # Per-factor codebooks flattened over groups: row g·M + m is codeword m of group g.
        self._flat = [self.codebooks[:, v].reshape(G * M, k) for v in range(V)]
        if overlap == "lookup":
            # (G·D, M) per factor: rows g·D + j·L + l list the codewords with segment j == l.
            # float16 holds every overlap (an integer <= k) exactly for k <= 2048 and halves
            # the memory traffic of the gather.
            tdt = torch.float16 if k <= 2048 else torch.float32
            self._tables = [
                sbc.overlap_table(self.codebooks[:, v], L, dtype=tdt).reshape(G * D, M)
                for v in range(V)
            ]
        else:
            self._cb16 = self.codebooks.to(torch.int16 if L < 2**15 else torch.int32)
        if bundling == "matmul":
            # Materialised codebooks (G, V, M, D), computed once (thesis §3.2).
            self._dense = sbc.to_dense(self.codebooks, L, dtype=self.acc_dtype)
        # Un-thinned bundle of each whole codebook, (G, V, k, L), for the initial estimates.
        self._init_acc = sbc.bundle_accumulator(self.codebooks, L)

    def _check_x(self, x: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.k:
            raise ValueError(f"x must have shape (B, k) = (B, {self.k}) (got {tuple(x.shape)})")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.L):
            raise ValueError(f"x must hold offsets in [0, L) = [0, {self.L})")

    def _per_problem_a(self, a, B):
        if a is None:
            a = self.a  # checked by the constructor
        else:
            check_a(a, self.M)
        if isinstance(a, Tensor):
            a = a.to(device=self.device, dtype=torch.long)
            if a.shape != (B,):
                raise ValueError(f"a must be an int or a (B,) tensor (got shape {tuple(a.shape)})")
            if bool((a == a[0]).all()):
                return None, int(a[0])
            return a, int(a.max())
        return None, a

    def _init_estimates(self, group, generator):
        return sbc.thin(self._init_acc[group], generator=generator)

    def overlaps(self, noisy: Tensor, v: int, group: Tensor) -> Tensor:
        """Overlaps ``(n, M)`` (float, exact integers) of ``noisy`` ``(n, k)`` with codebook ``v``."""
        if self.overlap == "lookup":
            off = None if self.G == 1 else group * self.D
            return sbc.overlap_lookup(noisy, self._tables[v], self.L, off).to(torch.float32)
        cb = self._cb16[:, v]  # (G, M, k)
        xs = noisy.to(cb.dtype)
        n = xs.shape[0]
        out = torch.empty(n, self.M, dtype=torch.float32, device=noisy.device)
        step = max(1, _COMPARE_CHUNK // (self.M * self.k))
        for s in range(0, n, step):
            c = cb[0] if self.G == 1 else cb[group[s : s + step]]
            out[s : s + step] = sbc.overlap(xs[s : s + step], c).float()
        return out

    def _attention(self, w, a_vec, a_max, generator):
        """Top-``a`` of ``w' + r``, ``r ~ U[0, noise)^M`` (docs/resonator.md, eqs. 7-8; thesis
        eq. 3.4; ``w'`` in overlap units, ``r`` scaled by ``k`` for "cosine"): indices and
        bundling weights."""
        r = torch.rand(w.shape, generator=generator, device=w.device, dtype=w.dtype)
        keys = w + r if self._r_scale == 1.0 else w + self._r_scale * r
        top_keys, top_idx = keys.topk(a_max, dim=1)
        if self.weights == "overlap":
            wts = w.gather(1, top_idx).to(self.acc_dtype)
        else:
            wts = torch.round(top_keys.to(torch.float64) * 2.0**20)
        if a_vec is not None:
            rank = torch.arange(a_max, device=w.device)
            wts = torch.where(rank < a_vec.unsqueeze(1), wts, torch.zeros((), dtype=wts.dtype, device=w.device))
        return top_idx, wts

    def _bundle(self, top_idx, wts, v, group, runs, generator):
        """Weighted bundle of the kept codewords, then thinning (eq. 9; thesis eq. 3.5)."""
        n = top_idx.shape[0]
        if self.bundling == "offset":
            rows = top_idx if self.G == 1 else top_idx + (group * self.M).unsqueeze(1)
            offs = torch.nn.functional.embedding(rows, self._flat[v])  # (n, a, k)
            acc = torch.zeros(n, self.k, self.L, dtype=self.acc_dtype, device=top_idx.device)
            acc.scatter_add_(2, offs.transpose(1, 2), wts.unsqueeze(1).expand(n, self.k, wts.shape[1]))
        else:
            W = torch.zeros(n, self.M, dtype=self.acc_dtype, device=top_idx.device)
            W.scatter_(1, top_idx, wts)
            acc = torch.empty(n, self.D, dtype=self.acc_dtype, device=top_idx.device)
            for g, s, e in runs:
                torch.matmul(W[s:e], self._dense[g, v], out=acc[s:e])
            acc = acc.view(n, self.k, self.L)
        return sbc.thin(acc, generator=generator)

    def _iterate(self, x, est, group, runs, a_vec, a_max, generator):
        new = est.clone()
        total = est.sum(dim=1)  # (n, k), un-reduced sum of all current estimates
        for v in range(self.V):
            noisy = torch.remainder(x - (total - est[:, v]), self.L)  # x ⊘ (⊗_{u≠v} â_u)
            w = self.overlaps(noisy, v, group)
            if self._attention_log is not None:
                self._attention_log.append(w)
            top_idx, wts = self._attention(w, a_vec, a_max, generator)
            nv = self._bundle(top_idx, wts, v, group, runs, generator)
            if self.update == "sequential":
                total = total + nv - est[:, v]
            new[:, v] = nv
        return new

    def _decode(self, est, group):
        return torch.stack(
            [self.overlaps(est[:, v], v, group).argmax(dim=1) for v in range(self.V)], dim=1
        )
