"""Dense bipolar resonator network (Frady, Kent, Olshausen & Sommer 2020), the baseline the
sparse network is compared with (thesis Fig. 3.7; docs/resonator.md, "The dense resonator").

Codewords are ±1 vectors and binding is the element-wise product, which is its own inverse.
Update ``â_v ← sign(A_v A_vᵀ (x ⊙ Π_{u≠v} â_u))`` (eq. 12), init ``sign(Σ_m a_m)`` (eq. 13),
with ``sign(0) = +1`` so every estimate stays bipolar (``torch.sign`` gives 0 there, and
``torchhd.resonator`` leaves those zeros in its output). Decoding takes the arg-max of
``|Aᵀ â|``: flipping the signs of an even number of factors, ``(−a) ⊙ (−b) = a ⊙ b``, is an
equally valid factorisation that the network does reach (docs/resonator.md, "Readings we chose").
The solve loop is :class:`dham_core.resonator.Resonator`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from dham_core.checks import positive_int
from dham_core.resonator import (
    UPDATES, Resonator, check_choice, default_max_it, group_runs, stack_codebooks)

__all__ = ["DenseResonator", "random_bipolar", "sign0"]


def sign0(z: Tensor) -> Tensor:
    """Bipolar sign with ``sign(0) = +1``."""
    return torch.where(z >= 0, 1.0, -1.0).to(z.dtype if z.is_floating_point() else torch.float32)


def random_bipolar(shape: Sequence[int], *, generator: torch.Generator, device=None) -> Tensor:
    """I.i.d. uniform ±1 float32 tensor."""
    device = generator.device if device is None else device
    bits = torch.randint(0, 2, tuple(shape), generator=generator, device=device)
    return (2 * bits - 1).to(torch.float32)


class DenseResonator(Resonator):
    """Dense bipolar resonator network (Frady et al. 2020; docs/resonator.md, eqs. 11-13).

    Args:
        codebooks: ±1 ``(V, M, D)``, ``(G, V, M, D)`` or a sequence of ``V`` equal-shape
            ``(M, D)`` / ``(G, M, D)`` tensors.
        max_it: iteration cap, default ``max(2000, M^V / 1000)`` (thesis eq. 3.7).
        update: ``"sequential"`` or ``"parallel"`` (see :meth:`Resonator.solve`).
        patience: consecutive unchanged iterations that count as converged.
    """

    def __init__(
        self,
        codebooks: Tensor | Sequence[Tensor],
        *,
        max_it: int | None = None,
        update: str = "sequential",
        patience: int = 1,
    ) -> None:
        cb, G, V, M = stack_codebooks(codebooks, "D", max_it)
        check_choice("update", update, UPDATES)
        if not bool(((cb == 1) | (cb == -1)).all()):
            raise ValueError("codebooks must be bipolar (every entry +1 or -1)")
        self.codebooks = cb.to(torch.float32)  # (G, V, M, D)
        self.G, self.V, self.M, self.D = G, V, M, cb.shape[-1]
        self.max_it = default_max_it(M, V) if max_it is None else max_it
        self.update = update
        self.patience = positive_int("patience", patience)
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
        for g, s, e in group_runs(group):
            for v in range(self.V):
                # |overlap|: pairs of sign flips (−a) ⊙ (−b) = a ⊙ b solve the problem too.
                out[s:e, v] = (est[s:e, v] @ self.codebooks[g, v].T).abs().argmax(dim=1)
        return out
