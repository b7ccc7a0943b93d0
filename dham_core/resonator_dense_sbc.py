"""The sparse resonator computed on dense D-dimensional vectors: the baseline of the thesis's
">10× faster on offset vectors" (thesis §3.2; docs/resonator.md, "Offset vs dense vectors").

Same network as :class:`~dham_core.resonator.SparseResonator` (eqs. 5-10), but every vector is
its dense 0/1 form ``(…, D)`` and every operation is a dense one: binding and unbinding are
segment-wise circular convolution and correlation (by FFT over each segment of length ``L``,
the cheapest dense form), the attention is the matrix product ``Aᵀ â`` ``(n, D) × (D, M)``, the
weighted bundle is ``(n, M) × (M, D)``, and thinning is the arg-max of each segment. Its
attention noise and tie-breaks use the same random draws as the offset network, so from the
same state and generator both compute the same next state (a test checks it); it exists for
``benchmarks/resonator.py`` and as that cross-check, not for the sweeps.
"""
from __future__ import annotations

import torch
from torch import Tensor

from dham_core import sbc
from dham_core.resonator import SparseResonator

__all__ = ["DenseSBCResonator", "dense_bind", "dense_unbind"]


def _segments(v: Tensor, L: int) -> Tensor:
    return v.unflatten(-1, (v.shape[-1] // L, L))


def dense_bind(a: Tensor, b: Tensor, L: int) -> Tensor:
    """``a ⊗ b`` on dense vectors ``(…, D)``: per segment the circular convolution of ``a`` and
    ``b`` (the dense form of ``(a' + b') mod L``); exact for 0/1 vectors (rounded)."""
    fa, fb = torch.fft.rfft(_segments(a, L)), torch.fft.rfft(_segments(b, L))
    return torch.round(torch.fft.irfft(fa * fb, n=L)).flatten(-2)


def dense_unbind(e: Tensor, b: Tensor, L: int) -> Tensor:
    """``e ⊘ b`` on dense vectors: per segment the circular correlation (``(e' − b') mod L``)."""
    fe, fb = torch.fft.rfft(_segments(e, L)), torch.fft.rfft(_segments(b, L))
    return torch.round(torch.fft.irfft(fe * fb.conj(), n=L)).flatten(-2)


class DenseSBCResonator(SparseResonator):
    """:class:`SparseResonator` on dense 0/1 vectors (one codebook set, ``G = 1``; an int ``a``).

    ``x`` is ``(B, D)`` dense, estimates are ``(B, V, D)``; ``solve`` returns the same
    :class:`~dham_core.resonator.ResonatorResult` with dense estimates. Options as
    :class:`SparseResonator` (``bundling`` is always the dense product).
    """

    def __init__(self, codebooks, D: int, a: int, **options) -> None:
        options["bundling"] = "matmul"
        super().__init__(codebooks, D, a, **options)
        if self.G != 1:
            raise ValueError(f"DenseSBCResonator takes one codebook set (got G={self.G})")
        self._cb = self._dense[0].float()  # (V, M, D) 0/1
        self._cbT = self._cb.transpose(1, 2).contiguous()  # (V, D, M) for the attention

    def _check_x(self, x: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.D:
            raise ValueError(f"x must have shape (B, D) = (B, {self.D}) (got {tuple(x.shape)})")

    def _per_problem_a(self, a, B):
        vec, a_max = super()._per_problem_a(a, B)
        if vec is not None:
            raise ValueError("DenseSBCResonator takes one a for the batch")
        return vec, a_max

    def _init_estimates(self, group, generator):
        return sbc.to_dense(super()._init_estimates(group, generator), self.L)

    def _iterate(self, x, est, group, runs, a_vec, a_max, generator):
        new = est.clone()
        n = x.shape[0]
        for v in range(self.V):
            src = new if self.update == "sequential" else est
            others = [src[:, u] for u in range(self.V) if u != v]
            bound = others[0]
            for o in others[1:]:
                bound = dense_bind(bound, o, self.L)
            noisy = dense_unbind(x, bound, self.L)
            w = noisy @ self._cbT[v]  # (n, M) overlaps
            if self._attention_log is not None:
                self._attention_log.append(w)
            top_idx, wts = self._attention(w, None, a_max, generator)
            W = torch.zeros(n, self.M, dtype=self.acc_dtype, device=x.device)
            W.scatter_(1, top_idx, wts)
            acc = (W @ self._dense[0, v]).view(n, self.k, self.L)
            new[:, v] = sbc.to_dense(sbc.thin(acc, generator=generator), self.L)
        return new

    def _decode(self, est, group):
        return torch.stack([(est[:, v] @ self._cbT[v]).argmax(dim=1) for v in range(self.V)],
                           dim=1)
