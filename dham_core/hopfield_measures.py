"""Feature → prototype measures of a trained classifier (Krotov & Hopfield 2016, Fig. 3 and the
published results; docs/krotov_hopfield.md, "Classifier and training recipe"): how many classes
each memory votes for, and how many memories contribute strongly to each image's energy. Small
n learn features (many votes, many contributors), large n prototypes (one of each).
"""
from __future__ import annotations

import torch

from dham_core.hopfield_model import DenseAssociativeMemory, energy_fn, targets_pm1

CONTRIBUTOR_BINS = ((0, 0), (1, 1), (2, 2), (3, 4), (5, 8), (9, 16), (17, 32), (33, 64), (65, None))
"""Bins of the per-image number of strongly contributing memories (inclusive; None = no top)."""


def bin_name(low: int, high: int | None) -> str:
    """The metric suffix of a bin: ``"1"``, ``"3_4"``, ``"65_inf"``."""
    return str(low) if high == low else f"{low}_{'inf' if high is None else high}"


def memory_votes(memories: torch.Tensor, num_classes: int, cutoff: float = 0.99) -> torch.Tensor:
    """Per memory, the number of classes it votes for: label weights ξ^μ_α ≥ ``cutoff`` (K,).

    The paper counts "recognition connections" in the on state (ξ_α ≈ 1) with an arbitrary
    cutoff: features vote for several classes (small n), prototypes for one (large n).
    """
    return (memories[:, -num_classes:] >= cutoff).sum(1)


@torch.no_grad()
def strong_contributors(model: DenseAssociativeMemory, v: torch.Tensor, ratio: float = 0.9,
                        batch_size: int = 2000) -> torch.Tensor:
    """Per image, the number of memories whose energy contribution is ≥ ``ratio`` × the largest (B,).

    The contribution of memory μ is ``F(ξ^μ · σ)`` in the state σ the classifier completes:
    the image v with the classification units at the ±1 code of the predicted class. F is
    evaluated on overlaps divided by each row's largest |overlap| (F is homogeneous, so the
    ratios are unchanged and nothing overflows at n = 30). 0 when no memory contributes (> 0).
    """
    out = []
    memories = model.memories.detach()
    n = model.power
    for b0 in range(0, v.shape[0], batch_size):
        x = v[b0:b0 + batch_size].to(memories)
        pred = model(x).argmax(1)
        sigma = torch.cat([x, targets_pm1(pred, model.num_classes, x.dtype)], 1)
        h = (sigma @ memories.T).double()
        h = h / h.abs().amax(1, keepdim=True).clamp(min=1e-30)
        f = energy_fn(h, n, model.rectified)
        top = f.amax(1, keepdim=True)
        out.append(((f >= ratio * top) & (f > 0) & (top > 0)).sum(1))
    return torch.cat(out)


def feature_prototype_metrics(model: DenseAssociativeMemory, v: torch.Tensor, cutoff: float = 0.99,
                              ratio: float = 0.9) -> dict[str, float]:
    """Histogram bins (fractions) of :func:`memory_votes` and :func:`strong_contributors`."""
    votes = memory_votes(model.memories.detach(), model.num_classes, cutoff)
    counts = strong_contributors(model, v, ratio)
    metrics = {f"votes_frac_{k}": float((votes == k).float().mean()) for k in range(model.num_classes + 1)}
    metrics["single_class_frac"] = metrics["votes_frac_1"]
    for low, high in CONTRIBUTOR_BINS:
        inside = (counts >= low) if high is None else (counts >= low) & (counts <= high)
        metrics[f"contrib_frac_{bin_name(low, high)}"] = float(inside.float().mean())
    metrics["single_contributor_frac"] = float((counts == 1).float().mean())
    metrics["contributors_median"] = float(counts.double().median())
    metrics["contributors_mean"] = float(counts.double().mean())
    return metrics
