"""Sparse and dense resonator networks for factorising bound vectors (PAPERS.md §2).

Problem (thesis §3.1.1): given ``x = a_{i_1} ⊗ … ⊗ a_{i_V}`` with each factor drawn from its
own codebook of ``M`` random codewords, find the indices ``i_1 … i_V``. Problem size ``M^V``.

``SparseResonator`` (thesis §3.1, sparse block codes in offset form, see ``dham_core.sbc``):

- init: every estimate is the thinned bundle of its whole codebook (eq. 3.2), tie-breaks
  drawn per problem;
- each iteration, for each factor ``v``: unbind the other estimates from ``x`` (eq. 3.3),
  attention ``w'`` = similarity of that noisy estimate with every codeword, add
  ``r ~ U[0,1)^M``, keep the ``a`` largest entries (eq. 3.4), weighted-bundle those ``a``
  codewords and thin (eq. 3.5);
- stop when no estimate changed in a whole iteration (eq. 3.6) or after ``max_it`` (eq. 3.7,
  default ``max(2000, M^V/1000)``).

Reading of eqs. 3.4-3.5 (the thesis is ambiguous; both readings are options):

- ``similarity="cosine"`` (default): ``w' = Aᵀâ / k``, the overlap normalised to [0, 1]
  (cosine similarity of maximally sparse vectors), so ``r ~ U[0,1)`` is a real exploration
  noise; this matches the thesis's Fig. 3.3 (attention ≈ 0 at start, ≈ 1 on convergence) and
  reproduces its D = 1280 claims. ``similarity="count"`` uses the integer overlap, where
  ``r`` only breaks ties (the text's "w' is an integer vector"); the dynamics is then nearly
  greedy and sticks at wrong fixed points (D = 1024, V = 3, M = 100: < 5% decoded).
  ``noise`` scales ``r`` (``r ~ U[0, noise)``), default 1 (the thesis). It matters: at
  D = 1024, k = 64, a = 4, M^V = 1e6 the mean iterations were 4265 (noise 1), 1839 (0.5),
  1214 (0.25), and nothing converged at 2; at D = 1280, M = 10 smaller noise gives more
  wrong fixed points. Sweeps should treat it like ``a``.
- ``weights="overlap"`` (default): the kept codewords are bundled with their overlaps ``w'``
  (eq. 3.5 as printed: ``w'_A[m] a_m``); ``weights="noisy"`` bundles with ``w' + r`` (eq. 3.4's
  ``w_A``) — with cosine similarity the noise then dominates and nothing converges.

Everything works on offsets: the overlap is a gather of ``k`` rows of a 0/1 lookup table
(``sbc.overlap_lookup``, O(M·k)) or a comparison of offsets (O(M·k)); the weighted bundle
scatter-adds the weights of the ``a`` selected codewords into a ``(B, k, L)`` accumulator
(O(a·k) plus the L-wide arg-max of thinning). ``bundling="matmul"`` is the thesis's
implementation of the bundle, a dense ``(B, M) × (M, D)`` product; it draws exactly the same
random numbers and sums exactly, so both paths give identical estimates under the same seed.

``DenseResonator`` (Frady, Kent, Olshausen & Sommer 2020): bipolar ±1 codewords, binding is
the element-wise product (self-inverse), ``â ← sign(A Aᵀ (x ⊙ b̂ ⊙ ĉ …))``, init
``sign(Σ_m a_m)``. Convention: ``sign(0) = +1`` (deterministic; ``torch.sign`` would give 0,
which is not a bipolar vector — ``torchhd.resonator`` leaves such zeros in its output).
Decoding takes the arg-max of ``|Aᵀ â|``: an even number of sign flips
(``(−a) ⊙ (−b) = a ⊙ b``) is an equally valid factorisation, which the network does reach.

Update order (both networks): ``update="sequential"`` (default) refreshes factor ``v`` using
the estimates already updated in this iteration for factors ``< v`` (Frady et al.'s
formulation, the chain of the thesis's Fig. 3.1); ``update="parallel"`` uses only the
previous iteration's estimates for every factor (what ``torchhd.resonator`` computes).

Per-problem convergence: a problem has converged at iteration ``t`` when none of its
estimates changed during the last ``patience`` iterations (default 1: eq. 3.6,
``â(t) = â(t−1)`` for every factor); from then on it is frozen (its estimates never change
again) and its iteration count is ``t``. A problem that never gets there stops at its
``max_it`` with ``converged=False``. The batch loop ends when every problem has stopped.
Converged problems are dropped from the working set (CPU: every iteration; GPU: every
``sync_every`` iterations, masked in between), so late iterations only pay for the problems
still running. Note: the sparse dynamics is stochastic, so a mixture state can stay unchanged
for one iteration by chance and count as converged (to a wrong answer); ``patience=2``
removes most of those at D = 1280, k = 40 (V = 3, M = 10: 4-5% → ~1% failures).

Codebooks are ``(V, M, k)`` (one set shared by the batch — the thesis's setting: one set
per batch of 256 problems, and what :func:`sparse_problems` draws by default) or
``(G, V, M, k)`` with a per-problem ``group`` index in ``[0, G)`` (used by
:func:`evaluate_pack` to run several seeds in one batch, and by ``shared_codebooks=False``
where every problem has its own codebooks).

Cost, measured on this project's shared 2-core CPU with one torch thread (sweeps: plan with
these). Time per iteration, batch of 256 still running: sparse ≈ 9-12 ms (D = 512-2048,
k = 64, V = 3, M = 100-1000; ≈ 0.6 ms with 8 problems left), dense ≈ 4 ms (D = 512, M = 100),
17 ms (D = 512, M = 1000), 35 ms (D = 1024, M = 1000). Sparse iterations to converge grow
≈ 4-5x per decade of ``M^V`` with a heavy tail (mean / p95, D = 512-2048, k = 64, a = 4):
1e3 ≈ 10-20 / 50, 1e4 ≈ 40-170 / 450, 1e5 ≈ 200-900 / 2000, 1e6 ≈ 1800-4300 / 5000-12500.
The batch runs until its slowest problem stops, so a cell costs about
``mean_it × 10 ms + p95_it × 1 ms``: ≤ 1 s up to 1e4, seconds at 1e5, 1-2 min at 1e6 (with
``max_it`` raised to 2e4; the default 2000 is what causes the thesis's dip at 1e6),
extrapolated ≈ 10 min at 1e7, hours at 1e8-1e9 (``max_it`` = 1e5-1e6). A smoke preset can
afford ``M^V ≤ 1e5`` (a few cells, 64-256 problems: about a minute); the paper preset's
1e7-1e9 points need a GPU (``device="cuda"``) or a long CPU run with few cells. V = 2 at
1e9 (M ≈ 31623) costs ≈ 0.2 s per iteration for 256 problems (overlaps are O(M·k)).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from dham_core import sbc
from dham_core.checks import is_int

__all__ = [
    "DenseResonator",
    "FactorizationProblems",
    "ResonatorResult",
    "SparseResonator",
    "default_max_it",
    "dense_problems",
    "evaluate_dense",
    "evaluate_pack",
    "evaluate_sparse",
    "random_bipolar",
    "sign0",
    "sparse_problems",
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


def sign0(z: Tensor) -> Tensor:
    """Bipolar sign with ``sign(0) = +1``."""
    return torch.where(z >= 0, 1.0, -1.0).to(z.dtype if z.is_floating_point() else torch.float32)


def random_bipolar(shape: Sequence[int], *, generator: torch.Generator, device=None) -> Tensor:
    """I.i.d. uniform ±1 float32 tensor."""
    device = generator.device if device is None else device
    bits = torch.randint(0, 2, tuple(shape), generator=generator, device=device)
    return (2 * bits - 1).to(torch.float32)


@dataclass
class ResonatorResult:
    """Outcome of :meth:`SparseResonator.solve` / :meth:`DenseResonator.solve`."""

    indices: Tensor  # (B, V) int64: decoded codeword per factor (arg-max overlap of the final estimate)
    iterations: Tensor  # (B,) int64: iteration of the fixed point if converged, else max_it
    converged: Tensor  # (B,) bool: reached a fixed point before max_it
    estimates: Tensor  # (B, V, k) offsets (sparse) or (B, V, D) ±1 (dense): final estimates
    history: Tensor | None = None  # (T+1, B, V, ·) estimates after each iteration (record=True only)

    def correct(self, true_indices: Tensor) -> Tensor:
        """(B,) bool: every factor decoded correctly."""
        return (self.indices == true_indices.to(self.indices.device)).all(dim=1)

    def accuracy(self, true_indices: Tensor) -> float:
        return float(self.correct(true_indices).float().mean())


def _check_choice(name: str, value, allowed: Sequence) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)} (got {name}={value!r})")


def _check_patience(patience) -> int:
    if not is_int(patience) or patience < 1:
        raise ValueError(f"patience must be an integer >= 1 (got patience={patience!r})")
    return int(patience)


def _stack_codebooks(codebooks, what: str) -> Tensor:
    """Accept a (V, M, ·) / (G, V, M, ·) tensor or a sequence of V per-factor codebooks."""
    if isinstance(codebooks, Tensor):
        return codebooks
    shapes = [tuple(c.shape) for c in codebooks]
    if len(set(shapes)) > 1:
        raise ValueError(
            f"codebooks must all have the same shape (M, {what}) or (G, M, {what}); got {shapes}"
        )
    if not shapes:
        raise ValueError("codebooks must hold V >= 2 codebooks (got none)")
    return torch.stack(list(codebooks), dim=-3)


def _check_common(cb: Tensor, what: str, max_it) -> tuple[Tensor, int, int, int]:
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
    if max_it is not None and (not is_int(max_it) or max_it < 1):
        raise ValueError(f"max_it must be an integer >= 1 (got max_it={max_it!r})")
    return cb, G, V, M


def _group_runs(group: Tensor) -> list[tuple[int, int, int]]:
    """(group, start, end) of the consecutive runs of a sorted group vector (host sync)."""
    values, counts = torch.unique_consecutive(group, return_counts=True)
    runs, start = [], 0
    for g, c in zip(values.tolist(), counts.tolist()):
        runs.append((g, start, start + c))
        start += c
    return runs


class _Resonator:
    """Shared solve loop: per-problem convergence, freezing, working-set compaction."""

    V: int
    M: int
    G: int
    max_it: int
    update: str
    device: torch.device

    # -- hooks implemented by the subclasses ---------------------------------------------
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

    # -- public API ------------------------------------------------------------------------
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

    def initial_estimates(
        self, batch: int | Tensor, *, generator: torch.Generator
    ) -> Tensor:
        """Initial estimates for ``batch`` problems (an int, or the (B,) group tensor)."""
        group = batch if isinstance(batch, Tensor) else torch.zeros(
            batch, dtype=torch.long, device=self.device
        )
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
            x[order], estimates[order], group[order], _group_runs(group[order]),
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
    ) -> ResonatorResult:
        """Factorise a batch ``x`` of problems; see the module docstring for the semantics.

        ``a`` (sparse only) and ``max_it`` may be per-problem ``(B,)`` tensors. ``sync_every``
        is how often converged problems are dropped from the working set (default 1 on CPU,
        16 on CUDA); in between they are frozen by masking. ``record=True`` keeps every
        iteration's estimates in ``result.history`` (for tests; memory grows with T).
        """
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
            if not is_int(max_it) or max_it < 1:
                raise ValueError(f"max_it must be an integer >= 1 (got max_it={max_it!r})")
            maxit = torch.full((B,), int(max_it), dtype=torch.long, device=device)
        patience = _check_patience(self.patience if patience is None else patience)
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

        ids = torch.arange(B, device=device)  # global (sorted) indices of the working set
        xa, ga, ma, aa, ea = x_s, group_s, maxit_s, a_s, est
        it_a = torch.zeros(B, dtype=torch.long, device=device)
        still_a = torch.zeros(B, dtype=torch.long, device=device)  # consecutive unchanged iterations
        conv_a = torch.zeros(B, dtype=torch.bool, device=device)
        live = torch.ones(B, dtype=torch.bool, device=device)
        runs = _group_runs(ga)
        t = 0
        while ids.numel():
            new = self._iterate(xa, ea, ga, runs, aa, a_max, generator)
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
                        runs = _group_runs(ga)

        indices = self._decode(final_est, group_s)
        inv = torch.argsort(order)
        hist = None
        if record:
            hist = torch.stack(history)[:, inv]
        return ResonatorResult(
            indices=indices[inv], iterations=iters[inv], converged=conv[inv],
            estimates=final_est[inv], history=hist,
        )


class SparseResonator(_Resonator):
    """Sparse resonator network on offset vectors (thesis §3.1-3.2).

    Args:
        codebooks: int64 offsets ``(V, M, k)`` (shared by the batch), ``(G, V, M, k)``
            (``G`` codebook sets chosen per problem by ``group``), or a sequence of ``V``
            tensors ``(M, k)`` / ``(G, M, k)`` of equal shape.
        D: vector dimension; ``k`` must divide it (``L = D / k``).
        a: attention sparsification, the number of codewords kept, ``1 <= a <= M``.
        max_it: iteration cap, default ``max(2000, M^V / 1000)`` (thesis eq. 3.7).
        bundling: ``"offset"`` (scatter-add of the ``a`` selected codewords) or
            ``"matmul"`` (thesis: dense ``(B, M) × (M, D)`` product); identical results.
        update: ``"sequential"`` or ``"parallel"`` (see module docstring).
        weights: bundling weights of the ``a`` kept codewords: ``"overlap"`` — their
            integer overlaps ``w'`` (thesis eq. 3.5 as printed, ``w'_A[m]``; exact sums in
            float32), or ``"noisy"`` — the perturbed ``w' + r`` the top-``a`` was taken
            over (eq. 3.4's ``w_A``; rounded to multiples of 2^-20 of an overlap unit and
            summed in float64: exact in any order).
        overlap: ``"lookup"`` (gather rows of a ``(D, M)`` 0/1 table per factor, fast,
            ``V·G·D·M`` float16 entries), ``"compare"`` (compare offsets, no table), or ``"auto"``
            (lookup unless the float16 tables would exceed 1 GiB).
        similarity: attention ``w'`` before the noise: ``"cosine"`` (overlap / k, in [0, 1])
            or ``"count"`` (the integer overlap); see the module docstring.
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
        cb = _stack_codebooks(codebooks, "k")
        cb, G, V, M = _check_common(cb, "k", max_it)
        k = cb.shape[-1]
        L = sbc.block_length(D, k)
        if cb.dtype.is_floating_point or cb.dtype == torch.bool:
            raise ValueError(f"codebooks must be integer offsets (got dtype {cb.dtype})")
        if int(cb.min()) < 0 or int(cb.max()) >= L:
            raise ValueError(
                f"codebook offsets must lie in [0, L) = [0, {L}) for D={D}, k={k} "
                f"(got [{int(cb.min())}, {int(cb.max())}])"
            )
        _check_choice("bundling", bundling, BUNDLING)
        _check_choice("update", update, UPDATES)
        _check_choice("weights", weights, ATTENTION_WEIGHTS)
        _check_choice("overlap", overlap, OVERLAPS)
        _check_choice("similarity", similarity, SIMILARITIES)
        self._check_a(a, M)
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
        self.patience = _check_patience(patience)
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

    @staticmethod
    def _check_a(a, M):
        if isinstance(a, Tensor):
            lo, hi = (int(a.min()), int(a.max())) if a.numel() else (1, 1)
        elif is_int(a):
            lo = hi = int(a)
        else:
            raise ValueError(f"a must be an integer with 1 <= a <= M = {M} (got a={a!r})")
        if lo < 1 or hi > M:
            got = f"a={lo}" if lo == hi else f"a in [{lo}, {hi}]"
            raise ValueError(f"a must satisfy 1 <= a <= M = {M} (got {got})")

    def _check_x(self, x: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.k:
            raise ValueError(f"x must have shape (B, k) = (B, {self.k}) (got {tuple(x.shape)})")
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.L):
            raise ValueError(f"x must hold offsets in [0, L) = [0, {self.L})")

    def _per_problem_a(self, a, B):
        if a is None:
            a = self.a
        self._check_a(a, self.M)
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
        """Top-``a`` of ``w' + r``, ``r ~ U[0, noise)^M`` (eq. 3.4; ``w'`` in overlap units,
        ``r`` scaled by ``k`` for "cosine"): indices and bundling weights."""
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


class DenseResonator(_Resonator):
    """Dense bipolar resonator network (Frady et al. 2020), see the module docstring.

    Args:
        codebooks: ±1 ``(V, M, D)``, ``(G, V, M, D)`` or a sequence of ``V`` equal-shape
            ``(M, D)`` / ``(G, M, D)`` tensors.
        max_it: iteration cap, default ``max(2000, M^V / 1000)``.
        update: ``"sequential"`` or ``"parallel"``.
    """

    def __init__(
        self,
        codebooks: Tensor | Sequence[Tensor],
        *,
        max_it: int | None = None,
        update: str = "sequential",
        patience: int = 1,
    ) -> None:
        cb = _stack_codebooks(codebooks, "D")
        cb, G, V, M = _check_common(cb, "D", max_it)
        _check_choice("update", update, UPDATES)
        if not bool(((cb == 1) | (cb == -1)).all()):
            raise ValueError("codebooks must be bipolar (every entry +1 or -1)")
        self.codebooks = cb.to(torch.float32)  # (G, V, M, D)
        self.G, self.V, self.M, self.D = G, V, M, cb.shape[-1]
        self.max_it = default_max_it(M, V) if max_it is None else max_it
        self.update = update
        self.patience = _check_patience(patience)
        self.device = cb.device
        self._init = sign0(self.codebooks.sum(dim=2))  # (G, V, D)

    def _check_x(self, x: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.D:
            raise ValueError(f"x must have shape (B, D) = (B, {self.D}) (got {tuple(x.shape)})")

    def _init_estimates(self, group, generator):
        return self._init[group].clone()

    def _cleanup(self, y, v, runs):
        """``sign(A Aᵀ y)`` per codebook group (consecutive runs of the sorted batch)."""
        out = torch.empty_like(y)
        for g, s, e in runs:
            A = self.codebooks[g, v]  # (M, D)
            out[s:e] = sign0((y[s:e] @ A.T) @ A)
        return out

    def _iterate(self, x, est, group, runs, a_vec, a_max, generator):
        new = est.clone()
        prod = est.prod(dim=1)  # (n, D): product of all current estimates
        for v in range(self.V):
            y = x * prod * est[:, v]  # x ⊙ Π_{u≠v} â_u (±1 is self-inverse)
            nv = self._cleanup(y, v, runs)
            if self.update == "sequential":
                prod = prod * est[:, v] * nv
            new[:, v] = nv
        return new

    def _decode(self, est, group):
        out = torch.empty(est.shape[0], self.V, dtype=torch.long, device=est.device)
        for g, s, e in _group_runs(group):
            for v in range(self.V):
                # |overlap|: pairs of sign flips (−a) ⊙ (−b) = a ⊙ b solve the problem too.
                out[s:e, v] = (est[s:e, v] @ self.codebooks[g, v].T).abs().argmax(dim=1)
        return out


# ------------------------------------------------------------------------------------------
# Problems
# ------------------------------------------------------------------------------------------


@dataclass
class FactorizationProblems:
    """A batch of problems ``x = a_{i_1} ⊗ … ⊗ a_{i_V}``."""

    codebooks: Tensor  # (G, V, M, k) int64 offsets (sparse) or (G, V, M, D) float32 ±1 (dense)
    group: Tensor  # (B,) int64: codebook set of each problem
    indices: Tensor  # (B, V) int64: the true factor indices
    x: Tensor  # (B, k) offsets (sparse) or (B, D) ±1 (dense)
    D: int  # vector dimension
    k: int | None = None  # segments (sparse only)


def _check_problem_args(V, M, num_problems):
    if not is_int(V) or V < 2:
        raise ValueError(f"V must be an integer >= 2 (got V={V!r})")
    if not is_int(M) or M < 2:
        raise ValueError(f"M must be an integer >= 2 (got M={M!r})")
    if not is_int(num_problems) or num_problems < 1:
        raise ValueError(f"num_problems must be an integer >= 1 (got num_problems={num_problems!r})")


def sparse_problems(
    D: int, k: int, V: int, M: int, num_problems: int, *,
    generator: torch.Generator, shared_codebooks: bool = True,
) -> FactorizationProblems:
    """Random sparse problems: codebooks first (one ``(V, M, k)`` set shared by the batch as
    in the thesis, or one per problem), then indices uniform in ``[0, M)^V``."""
    L = sbc.block_length(D, k)
    _check_problem_args(V, M, num_problems)
    G = 1 if shared_codebooks else num_problems
    cb = sbc.random_codebook(M, k, L, generator=generator, batch_shape=(G, V))
    dev = cb.device
    idx = torch.randint(0, M, (num_problems, V), generator=generator, device=dev)
    group = torch.zeros(num_problems, dtype=torch.long, device=dev) if shared_codebooks else torch.arange(num_problems, device=dev)
    factors = cb[group.unsqueeze(1), torch.arange(V, device=dev), idx]  # (B, V, k)
    return FactorizationProblems(cb, group, idx, sbc.multibind(factors, L), D, k)


def dense_problems(
    D: int, V: int, M: int, num_problems: int, *,
    generator: torch.Generator, shared_codebooks: bool = True,
) -> FactorizationProblems:
    """Random bipolar problems (same draw order as :func:`sparse_problems`)."""
    if not is_int(D) or D < 1:
        raise ValueError(f"D must be a positive integer (got D={D!r})")
    _check_problem_args(V, M, num_problems)
    G = 1 if shared_codebooks else num_problems
    cb = random_bipolar((G, V, M, D), generator=generator)
    dev = cb.device
    idx = torch.randint(0, M, (num_problems, V), generator=generator, device=dev)
    group = torch.zeros(num_problems, dtype=torch.long, device=dev) if shared_codebooks else torch.arange(num_problems, device=dev)
    factors = cb[group.unsqueeze(1), torch.arange(V, device=dev), idx]  # (B, V, D)
    return FactorizationProblems(cb, group, idx, factors.prod(dim=1), D, None)


# ------------------------------------------------------------------------------------------
# Evaluation (what a trainable calls)
# ------------------------------------------------------------------------------------------

_SPARSE_OPTS = ("bundling", "update", "weights", "overlap", "similarity", "noise")
_COMMON_OPTS = ("shared_codebooks", "update", "patience")


def _dynamics_seed(seeds: Sequence[int]) -> int:
    """Seed of the resonator dynamics' generator, a fixed hash of the cells' seeds (FNV-1a)."""
    h = 0xCBF29CE484222325
    for s in seeds:
        h = ((h ^ (int(s) & 0xFFFFFFFFFFFFFFFF)) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h & 0x7FFFFFFFFFFFFFFF


def normalise_cell(cell: dict) -> dict:
    """A cell of :func:`evaluate_pack` with its defaults filled in; raises ``ValueError``
    naming the field for a bad value (used to validate sweeps before they launch)."""
    c = dict(cell)
    for key in ("D", "k", "a", "V", "M", "num_problems", "seed", "max_it", "patience"):
        if is_int(c.get(key)):
            c[key] = int(c[key])  # NumPy integers from a search space -> plain ints
    kind = c.setdefault("kind", "sparse")
    _check_choice("kind", kind, ("sparse", "dense"))
    for key in ("D", "V", "M") + (("k", "a") if kind == "sparse" else ()):
        if key not in c:
            raise ValueError(f"cell is missing {key!r} (a {kind} cell needs D, V, M" + (", k, a)" if kind == "sparse" else ")"))
    c.setdefault("num_problems", 256)
    c.setdefault("seed", 0)
    c.setdefault("max_it", None)
    c.setdefault("device", "cpu")
    c.setdefault("shared_codebooks", True)
    c.setdefault("update", "sequential")
    c.setdefault("patience", 1)
    if kind == "sparse":
        c.setdefault("bundling", "offset")
        c.setdefault("weights", "overlap")
        c.setdefault("overlap", "auto")
        c.setdefault("similarity", "cosine")
        c.setdefault("noise", 1.0)
        sbc.block_length(c["D"], c["k"])
        SparseResonator._check_a(c["a"], c["M"])
    _check_problem_args(c["V"], c["M"], c["num_problems"])
    if c["max_it"] is not None and (not is_int(c["max_it"]) or c["max_it"] < 1):
        raise ValueError(f"max_it must be an integer >= 1 or None (got max_it={c['max_it']!r})")
    return c


def _pack_key(c: dict) -> tuple:
    base = (c["kind"], c["D"], c["V"], c["M"], str(torch.device(c["device"]))) + tuple(c[o] for o in _COMMON_OPTS)
    if c["kind"] == "sparse":
        base += (c["k"],) + tuple(c[o] for o in _SPARSE_OPTS)
    return base


def _iteration_stats(it: Tensor) -> dict:
    f = it.double()
    return {
        "iters_mean": float(f.mean()),
        "iters_median": float(f.median()),
        "iters_p95": float(torch.quantile(f, 0.95)),
        "iters_max": int(it.max()),
    }


def _run_pack(cells: list[dict]) -> list[dict]:
    """Run cells that share a pack key as one batch."""
    c0 = cells[0]
    kind, D, V, M = c0["kind"], c0["D"], c0["V"], c0["M"]
    device = torch.device(c0["device"])
    # Problems come from each cell's own seed (identical to a solo run); cells with the same
    # seed share their codebook set.
    by_seed: dict[int, FactorizationProblems] = {}
    probs = []
    for c in cells:
        key = (c["seed"], c["num_problems"])
        if key not in by_seed:
            gen = torch.Generator(device=device).manual_seed(int(c["seed"]))
            if kind == "sparse":
                by_seed[key] = sparse_problems(D, c["k"], V, M, c["num_problems"], generator=gen, shared_codebooks=c["shared_codebooks"])
            else:
                by_seed[key] = dense_problems(D, V, M, c["num_problems"], generator=gen, shared_codebooks=c["shared_codebooks"])
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
    counts = [c["num_problems"] for c in cells]
    maxits = [c["max_it"] if c["max_it"] is not None else default_max_it(M, V) for c in cells]
    max_it = torch.tensor([m for m, n in zip(maxits, counts) for _ in range(n)], dtype=torch.long, device=device)
    gen = torch.Generator(device=device).manual_seed(_dynamics_seed([c["seed"] for c in cells]))

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    if kind == "sparse":
        a = torch.tensor([c["a"] for c, n in zip(cells, counts) for _ in range(n)], dtype=torch.long, device=device)
        net = SparseResonator(
            cbs, D, int(a.max()), max_it=int(max_it.max()), bundling=c0["bundling"],
            update=c0["update"], weights=c0["weights"], overlap=c0["overlap"],
            similarity=c0["similarity"], noise=c0["noise"],
            patience=c0["patience"],
        )
        res = net.solve(x, generator=gen, group=group, a=a, max_it=max_it)
    else:
        net = DenseResonator(cbs, max_it=int(max_it.max()), update=c0["update"], patience=c0["patience"])
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
        r = {k_: c[k_] for k_ in c}
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
            r["L"] = D // c["k"]
        out.append(r)
    return out


def evaluate_pack(cells: list[dict], *, max_pack_problems: int = 4096) -> list[dict]:
    """Evaluate many configurations; cells that share shapes and options run as one batch.

    Each cell is a dict with ``kind`` (``"sparse"``, default, or ``"dense"``) and the
    arguments of :func:`evaluate_sparse` / :func:`evaluate_dense`. Cells sharing
    ``(kind, D, k, V, M, device, shared_codebooks, update, bundling, weights, overlap)`` are
    vectorised: their problems are concatenated (each cell's own codebooks via the group
    index; per-problem ``a`` and ``max_it``), in batches of at most ``max_pack_problems``.
    Each cell's codebooks and problems come from its own seed — exactly the problems a solo
    run sees — while the dynamics' random numbers come from one generator per pack seeded
    by the cells' seeds, so a packed cell's figures are statistically, not bitwise, those
    of its solo run. Timing is per pack: ``seconds_per_problem`` is the pack's wall time over
    its problems. Returns one dict per cell, in input order.
    """
    norm = [normalise_cell(c) for c in cells]
    buckets: dict[tuple, list[int]] = {}
    for i, c in enumerate(norm):
        buckets.setdefault(_pack_key(c), []).append(i)
    results: list[dict | None] = [None] * len(norm)
    for idxs in buckets.values():
        chunk, size = [], 0
        for i in idxs + [None]:
            if i is not None and (not chunk or size + norm[i]["num_problems"] <= max_pack_problems):
                chunk.append(i)
                size += norm[i]["num_problems"]
                continue
            for j, r in zip(chunk, _run_pack([norm[j] for j in chunk])):
                results[j] = r
            chunk, size = ([i], norm[i]["num_problems"]) if i is not None else ([], 0)
    return results  # type: ignore[return-value]


def evaluate_sparse(
    D: int, k: int, a: int, V: int, M: int, num_problems: int = 256, seed: int = 0,
    max_it: int | None = None, device: str = "cpu", **options,
) -> dict:
    """Accuracy and iteration statistics of the sparse resonator on ``num_problems`` random
    problems (codebooks shared by the batch unless ``shared_codebooks=False``).

    Returns a dict with ``accuracy`` (all V factors right), ``factor_accuracy``,
    ``iters_mean / iters_median / iters_p95 / iters_max`` (over all problems; unconverged
    ones count ``max_it``), ``converged_frac``, ``seconds``, ``seconds_per_problem``,
    ``problems_per_second``, ``problem_size = M^V``, ``max_it`` and the inputs.
    ``options``: the :class:`SparseResonator` options (``bundling``, ``update``, ``weights``,
    ``overlap``, ``similarity``, ``noise``, ``patience``) and ``shared_codebooks``.
    """
    cell = dict(kind="sparse", D=D, k=k, a=a, V=V, M=M, num_problems=num_problems,
                seed=seed, max_it=max_it, device=device, **options)
    return evaluate_pack([cell])[0]


def evaluate_dense(
    D: int, V: int, M: int, num_problems: int = 256, seed: int = 0,
    max_it: int | None = None, device: str = "cpu", **options,
) -> dict:
    """Like :func:`evaluate_sparse` for the dense bipolar resonator (options: ``update``,
    ``patience``, ``shared_codebooks``)."""
    cell = dict(kind="dense", D=D, V=V, M=M, num_problems=num_problems, seed=seed,
                max_it=max_it, device=device, **options)
    return evaluate_pack([cell])[0]
