"""A sparse resonator network as a CNN's classifier head (thesis ch. 4; docs/resonator.md,
"The classifier head"). No Ray import.

The head replaces the fully connected layer: the backbone's last feature map ``(B, C, H, W)`` is
pooled over space (``"average"``, or ``"weighted"``: one learned weight per spatial position,
shared across channels, thesis §4.1.2) to ``z ∈ R^C``, mapped linearly to ``R^D`` only when
``C ≠ D`` (MobileNet-V2's last map has ``C = 1280 = D``, the thesis's setting, so no map), and
read as ``k`` segments of length ``L = D / k``. Labels are ``V`` factor indices
(``dham_core.resonator_labels.LabelCode``); the target of label ``y`` is
``y' = a_i ⊗ b_j (⊗ c_h)`` in offset form, from ``V`` fixed random codebooks of ``M`` codewords.

Training (thesis §4.2): ``"segment"`` — ``k`` independent ``L``-way classifications of the
segments against the target's offsets; ``"overlap"`` — logits ``Oᵀz`` against the matrix ``O``
of every class's dense target. Either with softmax cross-entropy (thesis eq. 2.8) or the cosine
loss with a trainable scale ``s`` (eq. 2.9: logits ``s·wᵀz / (‖w‖‖z‖)``; for a segment, ``w``
is a one-hot, so the logits are ``s·z_j / ‖z_j‖``; for overlap ``‖y‖ = √k``).

Inference (thesis §4.3): per-segment arg-max → ``k``-sparse offsets → :class:`SparseResonator`
(one batched solve, lookup overlaps) → factor indices → label (unused slots decode to ``-1``, an
error). Also the overlap accuracy (arg-max of ``Oᵀz``, the nearest class target) and the
segment-wise accuracy (segments whose arg-max is the target's offset, averaged over segments).

Parameter count (thesis §4.4.7): what the head stores for inference — the pooling weights
(``H·W``), the codebooks in offset form (``V·M·k`` integers) and the linear map if any
(``C·D``); V = 2, M = 32, k = 40 with weighted pooling on a 7×7 map gives
``49 + 40·64 = 2,609``. The cosine loss's scale ``s`` only shapes training (arg-maxes do not
depend on it) and is not counted, as in the thesis.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dham_core import sbc
from dham_core.resonator import SparseResonator, check_a, check_choice
from dham_core.resonator_labels import LabelCode

__all__ = ["LOSSES", "POOLINGS", "TRAININGS", "HeadPredictions", "ResonatorHead", "head_parameter_count"]

POOLINGS = ("average", "weighted")
LOSSES = ("cross_entropy", "cosine")
TRAININGS = ("segment", "overlap")


def head_parameter_count(pooling: str, spatial: tuple[int, int], code: LabelCode, k: int,
                         in_channels: int, D: int) -> int:
    """Stored parameters of the head (module docstring): pooling weights + ``V·M·k`` codebook
    offsets + the ``C×D`` linear map when ``C ≠ D``."""
    check_choice("pooling", pooling, POOLINGS)
    pool = spatial[0] * spatial[1] if pooling == "weighted" else 0
    return pool + code.factors * code.size * k + (in_channels * D if in_channels != D else 0)


@dataclass
class HeadPredictions:
    """What :meth:`ResonatorHead.decode` returns for a batch."""

    resonator: Tensor  # (B,) labels from the sparse resonator; -1 = an unused slot
    overlap: Tensor  # (B,) arg-max of Oᵀz (nearest class target)
    offsets: Tensor  # (B, k) per-segment arg-max of z
    converged: Tensor  # (B,) the resonator reached a fixed point


class ResonatorHead(nn.Module):
    """Pooling (+ linear map) to ``z ∈ R^D``, the fixed codebooks and targets, the losses and
    the decoding (module docstring).

    Args:
        in_channels, spatial: the backbone's last feature map ``(C, (H, W))``.
        code: the label ↔ factor code (``V``, ``M``, number of classes).
        D, k: vector dimension and segments; ``k`` must divide ``D``.
        pooling: ``"average"`` or ``"weighted"`` (weights start at ``1/(H·W)``: average pooling).
        loss: ``"cross_entropy"`` or ``"cosine"`` (trainable scale ``s``, starting at ``scale_init``).
        training: ``"segment"`` or ``"overlap"``.
        a, patience, max_it: the resonator's attention sparsification (``1 <= a <= M``),
            unchanged iterations that count as converged, iteration cap (None = thesis eq. 3.7);
            docs/resonator.md, "The classifier head" says why a = 6, patience = 2.
        codebook_seed: seeds the ``V`` random codebooks (fixed, not trained).
    """

    def __init__(self, in_channels: int, spatial: tuple[int, int], code: LabelCode, D: int, k: int,
                 pooling: str = "weighted", loss: str = "cosine", training: str = "segment",
                 scale_init: float = 10.0, a: int = 6, patience: int = 2,
                 max_it: int | None = None, codebook_seed: int = 0) -> None:
        super().__init__()
        self.L = sbc.block_length(D, k)  # "k must divide D"
        check_choice("pooling", pooling, POOLINGS)
        check_choice("loss", loss, LOSSES)
        check_choice("training", training, TRAININGS)
        if code.factors < 2:
            raise ValueError(f"factors must be >= 2 for the resonator (got factors={code.factors})")
        check_a(a, code.size)
        self.code, self.D, self.k, self.in_channels = code, D, k, in_channels
        self.spatial = tuple(spatial)
        self.pooling, self.loss_name, self.training_mode = pooling, loss, training
        self.a, self.patience, self.max_it = a, patience, max_it
        positions = self.spatial[0] * self.spatial[1]
        self.pool_weight = (nn.Parameter(torch.full((positions,), 1.0 / positions))
                            if pooling == "weighted" else None)
        self.proj = nn.Linear(in_channels, D, bias=False) if in_channels != D else None
        self.scale = nn.Parameter(torch.tensor(float(scale_init))) if loss == "cosine" else None
        gen = torch.Generator().manual_seed(codebook_seed)
        codebooks = sbc.random_codebook(code.size, k, self.L, generator=gen, batch_shape=(code.factors,))
        self.register_buffer("codebooks", codebooks)  # (V, M, k) offsets
        self.register_buffer("targets", code.class_targets(codebooks, self.L))  # (classes, k)
        # Dense class targets O^T (classes, D) for the overlap logits; rebuilt, not saved.
        self.register_buffer("overlap_matrix", sbc.to_dense(self.targets, self.L), persistent=False)
        self._resonators: dict[torch.device, SparseResonator] = {}

    def parameter_count(self) -> int:
        """Stored parameters for inference (module docstring; thesis §4.4.7)."""
        return head_parameter_count(self.pooling, self.spatial, self.code, self.k, self.in_channels, self.D)

    # -- training ---------------------------------------------------------------------------
    def forward(self, fmap: Tensor) -> Tensor:
        """Feature map ``(B, C, H, W)`` -> ``z`` ``(B, D)``."""
        if tuple(fmap.shape[1:]) != (self.in_channels, *self.spatial):
            raise ValueError(f"feature map must have shape (B, {self.in_channels}, {self.spatial[0]}, "
                             f"{self.spatial[1]}) (got {tuple(fmap.shape)})")
        flat = fmap.flatten(2)
        pooled = flat @ self.pool_weight.to(flat.dtype) if self.pool_weight is not None else flat.mean(2)
        return self.proj(pooled) if self.proj is not None else pooled

    def segment_logits(self, z: Tensor) -> Tensor:
        """``(B, k, L)``: the segments (cross-entropy) or ``s·z_j/‖z_j‖`` (cosine)."""
        zs = z.float().view(z.shape[0], self.k, self.L)
        return self.scale * F.normalize(zs, dim=-1) if self.scale is not None else zs

    def overlap_logits(self, z: Tensor) -> Tensor:
        """``(B, classes)``: ``Oᵀz`` (cross-entropy) or ``s·Oᵀz/(√k‖z‖)`` (cosine)."""
        scores = z.float() @ self.overlap_matrix.T
        if self.scale is None:
            return scores
        return self.scale * scores / (self.k ** 0.5 * z.float().norm(dim=1, keepdim=True).clamp_min(1e-12))

    def loss(self, z: Tensor, labels: Tensor) -> Tensor:
        """Mean loss of the training mode: over the ``B·k`` segment problems, or over ``B`` images."""
        if self.training_mode == "overlap":
            return F.cross_entropy(self.overlap_logits(z), labels)
        logits = self.segment_logits(z)
        return F.cross_entropy(logits.reshape(-1, self.L), self.targets[labels].reshape(-1))

    # -- inference ----------------------------------------------------------------------------
    def resonator(self, device: torch.device) -> SparseResonator:
        """The sparse resonator on this head's codebooks, built once per device."""
        if device not in self._resonators:
            self._resonators[device] = SparseResonator(self.codebooks.to(device), self.D, self.a,
                                                       max_it=self.max_it, patience=self.patience)
        return self._resonators[device]

    @torch.no_grad()
    def decode(self, z: Tensor, generator: torch.Generator) -> HeadPredictions:
        """Resonator and overlap predictions of ``z`` ``(B, D)``; ``generator`` (on ``z``'s
        device) drives the resonator's tie-breaks and attention noise."""
        offsets = z.float().view(z.shape[0], self.k, self.L).argmax(-1)
        result = self.resonator(z.device).solve(offsets, generator=generator)
        return HeadPredictions(self.code.to_labels(result.indices), self.overlap_logits(z).argmax(1),
                               offsets, result.converged)

    def segment_correct(self, offsets: Tensor, labels: Tensor) -> Tensor:
        """``(B,)`` number of segments whose arg-max is the target's offset."""
        return (offsets == self.targets[labels]).sum(1)
