"""Class labels as resonator factors (thesis §4.1; docs/resonator.md, "Labels as factors").

A classifier head decoded by the sparse resonator predicts a tuple of ``V`` factor indices,
each in ``[0, M)``; a label ``y`` is that tuple read as a number in base ``M``, most significant
factor first (thesis §4.1: V = 3, M = 10 gives ``i = y // 100, j = (y % 100) // 10, h = y % 10``
for ImageNet's 1000 classes; V = 2, M = 32 gives ``i = y // 32, j = y % 32``, with
``32² − 1000 = 24`` unused label slots). Tuples whose number is ``>= classes`` are *unused
slots*: they decode to ``-1`` (never a label), so a resonator that lands on one counts as an
error. The class target of ``y`` is ``a_i ⊗ b_j (⊗ c_h)`` in offset form (``dham_core.sbc.bind``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from dham_core import sbc
from dham_core.checks import is_int

__all__ = ["LabelCode", "UNUSED"]

UNUSED = -1  # what :meth:`LabelCode.to_labels` returns for a factor tuple that is no label


@dataclass(frozen=True)
class LabelCode:
    """Mixed-radix code of ``classes`` labels as ``factors`` indices in ``[0, size)``."""

    classes: int  # number of labels, 0 .. classes - 1 (>= 1)
    factors: int  # V, the number of factors (>= 1)
    size: int  # M, codewords per factor codebook (>= 2); classes <= M**V

    def __post_init__(self) -> None:
        for name, low in (("classes", 1), ("factors", 1), ("size", 2)):
            value = getattr(self, name)
            if not is_int(value) or value < low:
                raise ValueError(f"{name} must be an integer >= {low} (got {name}={value!r})")
            object.__setattr__(self, name, int(value))
        if self.classes > self.size**self.factors:
            raise ValueError(
                f"classes must be <= size**factors = M**V = {self.size}**{self.factors} = "
                f"{self.size**self.factors} (got classes={self.classes}); raise size or factors"
            )

    @classmethod
    def for_classes(cls, classes: int, factors: int) -> LabelCode:
        """The code with the smallest ``M`` such that ``M**V >= classes`` (at least 2)."""
        if not is_int(classes) or classes < 1:
            raise ValueError(f"classes must be an integer >= 1 (got classes={classes!r})")
        if not is_int(factors) or factors < 1:
            raise ValueError(f"factors must be an integer >= 1 (got factors={factors!r})")
        size = max(2, round(classes ** (1.0 / factors)) - 1)
        while size**factors < classes:
            size += 1
        return cls(int(classes), int(factors), size)

    @property
    def slots(self) -> int:
        """``M**V``: label slots, used and unused."""
        return self.size**self.factors

    def _radix(self, device) -> Tensor:
        """``(M^(V-1), …, M, 1)``: the place value of each factor."""
        return self.size ** torch.arange(self.factors - 1, -1, -1, device=device)

    def to_factors(self, labels: Tensor) -> Tensor:
        """Labels ``(B,)`` in ``[0, classes)`` -> factor indices ``(B, V)``, most significant first."""
        labels = torch.as_tensor(labels)
        if labels.dim() != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise ValueError(f"labels must be an integer tensor of shape (B,) (got dtype "
                             f"{labels.dtype}, shape {tuple(labels.shape)})")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.classes):
            raise ValueError(f"labels must lie in [0, classes) = [0, {self.classes}) (got "
                             f"[{int(labels.min())}, {int(labels.max())}])")
        labels = labels.long()
        return torch.div(labels.unsqueeze(1), self._radix(labels.device),
                         rounding_mode="floor") % self.size

    def to_labels(self, factors: Tensor) -> Tensor:
        """Factor indices ``(B, V)`` in ``[0, M)`` -> labels ``(B,)``; unused slots -> ``-1``."""
        factors = torch.as_tensor(factors)
        if (factors.dim() != 2 or factors.shape[1] != self.factors
                or factors.dtype.is_floating_point or factors.dtype == torch.bool):
            raise ValueError(f"factors must be an integer tensor of shape (B, V) = (B, "
                             f"{self.factors}) (got dtype {factors.dtype}, shape "
                             f"{tuple(factors.shape)})")
        if factors.numel() and (int(factors.min()) < 0 or int(factors.max()) >= self.size):
            raise ValueError(f"factors must lie in [0, M) = [0, {self.size}) (got "
                             f"[{int(factors.min())}, {int(factors.max())}])")
        factors = factors.long()
        labels = (factors * self._radix(factors.device)).sum(dim=1)
        return torch.where(labels < self.classes, labels, torch.full_like(labels, UNUSED))

    def class_targets(self, codebooks: Sequence[Tensor] | Tensor, L: int) -> Tensor:
        """Targets ``y' = a_i ⊗ b_j (⊗ c_h)`` of every label, offsets ``(classes, k)``.

        ``codebooks``: ``V`` offset codebooks ``(M, k)`` (a sequence, or a ``(V, M, k)`` tensor)
        with entries in ``[0, L)``; factor ``v`` of label ``y`` picks row ``to_factors(y)[v]``
        of codebook ``v``.
        """
        cbs = list(codebooks)
        if len(cbs) != self.factors:
            raise ValueError(f"codebooks must hold V = {self.factors} codebooks (got {len(cbs)})")
        shapes = {tuple(c.shape) for c in cbs}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2 or next(iter(shapes))[0] != self.size:
            raise ValueError(f"codebooks must each have shape (M, k) = ({self.size}, k) "
                             f"(got {sorted(shapes)})")
        if not is_int(L) or L < 1:
            raise ValueError(f"L must be a positive integer (got L={L!r})")
        for c in cbs:
            if c.dtype.is_floating_point or c.dtype == torch.bool:
                raise ValueError(f"codebooks must be integer offsets (got dtype {c.dtype})")
            if c.numel() and (int(c.min()) < 0 or int(c.max()) >= L):
                raise ValueError(f"codebook offsets must lie in [0, L) = [0, {L})")
        device = cbs[0].device
        idx = self.to_factors(torch.arange(self.classes, device=device))
        target = cbs[0].long()[idx[:, 0]]
        for v in range(1, self.factors):
            target = sbc.bind(target, cbs[v].long()[idx[:, v]], L)
        return target
