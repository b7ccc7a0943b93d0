"""Why the resonator head trails overlap decoding (thesis Tables 4.3, 4.6; docs/resonator.md,
"Corrupted segments"): decode class targets with a fraction of wrong segments.

A trained head's per-segment arg-max is the class target ``y' = a_i ⊗ b_j (⊗ c_h)`` with some
segments wrong. This experiment makes that input synthetically: random labels, their targets
(``dham_core.resonator_labels.LabelCode.class_targets``), and in each target exactly
``round(f·k)`` segments (chosen at random) whose active position moves to one of the other
``L − 1`` positions (uniformly). Each input is decoded twice:

- **resonator**: :class:`~dham_core.resonator.SparseResonator` on the factor codebooks, its
  factor tuple mapped back to a label (an unused slot is an error), as the head's inference;
- **nearest target** ("overlap accuracy", thesis §4.2): the class whose target has the largest
  overlap with the input (ties broken at random), the arg-max of ``Oᵀz`` for a k-sparse ``z``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import torch
from torch import Tensor

from dham_core import sbc
from dham_core.checks import is_int, is_number, positive_int, refuse
from dham_core.devices import resolve_device
from dham_core.resonator import SparseResonator, check_a
from dham_core.resonator_labels import UNUSED, LabelCode

CORRUPTIONS = ("random", "class")

__all__ = ["CORRUPTIONS", "CorruptionConfig", "corrupt_segments", "corrupted_segment_rows", "nearest_target"]


@dataclass
class CorruptionConfig:
    """One (D, k, V) setting of the corrupted-segment experiment, every fraction in one batch."""

    D: int | None = None
    """Vector dimension, required (thesis head: 1280 = MobileNet-V2's feature width)."""
    k: int | None = None
    """Segments of the sparse block code, required, a divisor of D (thesis Table 4.6: 40, 64)."""
    V: int | None = None
    """Factors of the label code, required (thesis: 3 with M = 10, or 2 with M = 32)."""
    classes: int = 1000
    """Labels (ImageNet-1k: 1000); M is the smallest with M^V >= classes."""
    a: int | None = None
    """Attention sparsification of the resonator, 1 <= a <= M; None: ceil(M / 2)."""
    fractions: list = field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    """Fractions f of each target's segments corrupted (round(f·k) segments), each in [0, 1]."""
    corruption: str = "random"
    """What a corrupted segment becomes: "random" (another of its L positions, uniformly) or
    "class" (that segment of another class's target, one random other class per input: a head
    torn between two classes)."""
    num_problems: int = 256
    """Inputs per fraction (the thesis's batch size)."""
    patience: int = 1
    """Unchanged iterations that count as converged (thesis: 1; the sweep's presets use 2,
    docs/resonator.md, "Patience")."""
    noise: float = 1.0
    """Attention noise r ~ U[0, noise) (thesis: 1)."""
    max_it: int | None = None
    """Resonator iteration cap; None: max(2000, M^V / 1000) (thesis eq. 3.7)."""
    seed: int = 0
    """Seeds the codebooks, labels and corruptions (one generator) and the dynamics."""
    device: str = "cpu"
    """"cpu", "cuda[:N]" or "auto"."""

    def validate(self) -> "CorruptionConfig":
        fail = functools.partial(refuse, self)
        for name in ("D", "k", "V"):
            if getattr(self, name) is None:
                fail(name, "given (D, k and V have no default)")
        for name in ("D", "k", "V", "classes", "num_problems", "patience"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(name, "an integer >= 1")
        if self.D % self.k:
            fail("k", f"a divisor of D = {self.D}")
        if self.V < 2:
            fail("V", "an integer >= 2 (a resonator factorises V >= 2 factors)")
        if self.classes < 2:
            fail("classes", "an integer >= 2")
        if not (isinstance(self.fractions, (list, tuple)) and self.fractions
                and all(is_number(f) and 0 <= f <= 1 for f in self.fractions)):
            fail("fractions", "a non-empty list of numbers in [0, 1]")
        if self.corruption not in CORRUPTIONS:
            fail("corruption", f"one of {list(CORRUPTIONS)}")
        if self.a is not None:
            check_a(self.a, self.code.size)
        if not (is_number(self.noise) and self.noise > 0):
            fail("noise", "> 0")
        if self.max_it is not None:
            positive_int("max_it", self.max_it)
        if not is_int(self.seed):
            fail("seed", "an integer")
        if self.device not in ("cpu", "auto") and not str(self.device).startswith("cuda"):
            fail("device", '"cpu", "auto" or "cuda[:N]"')
        return self

    @property
    def code(self) -> LabelCode:
        return LabelCode.for_classes(self.classes, self.V)


def corrupt_segments(x: Tensor, count: int, L: int, generator: torch.Generator,
                     replacement: Tensor | None = None) -> Tensor:
    """``x`` ``(B, k)`` with ``count`` distinct random segments per row corrupted: moved to
    another offset (uniform over the ``L − 1`` others), or, given ``replacement`` ``(B, k)``,
    set to that row's offsets there."""
    B, k = x.shape
    if not 0 <= count <= k:
        raise ValueError(f"count must lie in [0, k] = [0, {k}] (got count={count})")
    if count == 0:
        return x.clone()
    order = torch.rand(B, k, generator=generator, device=x.device).argsort(dim=1)
    chosen = torch.zeros(B, k, dtype=torch.bool, device=x.device)
    chosen.scatter_(1, order[:, :count], True)
    if replacement is None:
        if L < 2:
            raise ValueError(f"L must be >= 2 to move a segment (got L={L})")
        replacement = (x + torch.randint(1, L, (B, k), generator=generator, device=x.device)) % L
    return torch.where(chosen, replacement, x)


def nearest_target(x: Tensor, targets: Tensor, generator: torch.Generator) -> Tensor:
    """Label of the target ``(classes, k)`` with the largest overlap with each row of ``x``
    ``(B, k)``; ties broken uniformly at random (a uniform key in [0, 1) added to the counts)."""
    counts = sbc.overlap(x, targets.unsqueeze(0)).float()  # (B, classes), exact integers
    counts += torch.rand(counts.shape, generator=generator, device=x.device)
    return counts.argmax(dim=1)


def corrupted_segment_rows(cfg: CorruptionConfig) -> list[dict]:
    """One row per fraction: ``fraction``, ``corrupted_segments``, ``resonator_accuracy``,
    ``overlap_accuracy``, ``unused_slot_rate`` (resonator landed on no label),
    ``iters_mean``, ``converged_frac``, and the setting (``corruption, D, k, L, V, M, a,
    classes``).

    Draw order from ``seed``: codebooks (V of them), then per fraction the labels (and, for
    ``corruption="class"``, the other labels), the corrupted segments and their shifts; all fractions are then solved as one batch with a
    second generator (``seed + 1``) for the dynamics and the overlap ties.
    """
    cfg.validate()
    device = resolve_device(cfg.device)
    code = cfg.code
    M, L = code.size, cfg.D // cfg.k
    a = cfg.a if cfg.a is not None else -(-M // 2)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    codebooks = sbc.random_codebook(M, cfg.k, L, generator=gen, batch_shape=(cfg.V,))
    targets = code.class_targets(codebooks, L)
    counts = [round(f * cfg.k) for f in cfg.fractions]
    labels, inputs = [], []
    for count in counts:
        y = torch.randint(0, cfg.classes, (cfg.num_problems,), generator=gen, device=device)
        labels.append(y)
        other = None
        if cfg.corruption == "class":  # a uniformly random label other than y
            other = targets[(y + torch.randint(1, cfg.classes, y.shape, generator=gen,
                                               device=device)) % cfg.classes]
        inputs.append(corrupt_segments(targets[y], count, L, gen, other))
    y, x = torch.cat(labels), torch.cat(inputs)
    dyn = torch.Generator(device=device).manual_seed(cfg.seed + 1)
    net = SparseResonator(codebooks, cfg.D, a, max_it=cfg.max_it, patience=cfg.patience,
                          noise=cfg.noise)
    res = net.solve(x, generator=dyn)
    decoded = code.to_labels(res.indices)
    res_ok = decoded == y
    ovl_ok = nearest_target(x, targets, dyn) == y
    rows = []
    for i, (f, count) in enumerate(zip(cfg.fractions, counts)):
        sl = slice(i * cfg.num_problems, (i + 1) * cfg.num_problems)
        rows.append(dict(
            fraction=float(f), corrupted_segments=count, corruption=cfg.corruption, D=cfg.D, k=cfg.k, L=L, V=cfg.V, M=M,
            a=a, classes=cfg.classes,
            resonator_accuracy=float(res_ok[sl].double().mean()),
            overlap_accuracy=float(ovl_ok[sl].double().mean()),
            unused_slot_rate=float((decoded[sl] == UNUSED).double().mean()),
            iters_mean=float(res.iterations[sl].double().mean()),
            converged_frac=float(res.converged[sl].double().mean()),
        ))
    return rows
