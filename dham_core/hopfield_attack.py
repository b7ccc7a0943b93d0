"""Adversarial images against dense associative memories and their transfer between powers
(Krotov's slides; Krotov & Hopfield 2018, arXiv 1701.00939; docs/krotov_hopfield.md,
"Adversarial transfer").

* ``input_gradient_attack`` — adversarial images by ``v ← v − ε ∂C/∂v``;
* ``AdversarialConfig`` — the run config of the transfer experiment: a ``HopfieldConfig``
  (both models are trained with it, each at its own power) plus the two powers and the attack;
* ``transfer_table`` — attack every model, classify each adversarial set by every model;
* ``adversarial_transfer`` — the experiment: train both models (per-epoch callback, exact
  resume), then the 2×2 table on test images both classify correctly.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch
from torch import nn

from dham_core.checks import is_int, is_number, refuse
from dham_core.hopfield_model import hopfield_loss, targets_pm1
from dham_core.hopfield_train import HopfieldConfig, HopfieldTrainer, load_classifier_data

ATTACK_MODES = ("sign", "scaled")


class AttackResult(NamedTuple):
    images: torch.Tensor
    """Adversarial images (B, D), clipped to [−1, 1]."""
    fooled: torch.Tensor
    """(B,) bool: the attacked model no longer predicts the true label."""
    steps: torch.Tensor
    """(B,) steps taken (stops per image once fooled when ``stop_when_fooled``)."""
    target: torch.Tensor
    """(B,) the class each image was pushed towards."""


def input_gradient_attack(model: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
                          labels: torch.Tensor, *, steps: int = 100, step_size: float = 0.01, mode: str = "sign",
                          target: torch.Tensor | None = None, m: int = 1, stop_when_fooled: bool = True,
                          clip: tuple[float, float] = (-1.0, 1.0)) -> AttackResult:
    """Adversarial images by input-gradient steps ``v ← v − ε ∂C/∂v`` against ``model``.

    ``C = Σ_α (c_α − t_α)^(2m)`` with ``t`` the ±1 code of the ``target`` class (default: the
    strongest wrong class on the clean image), so each step moves the image towards the
    target. ``mode="sign"``: ``ε·sign(∂C/∂v)``; ``mode="scaled"``: ``ε·∂C/∂v / max|∂C/∂v|`` per
    image. ``model`` maps (B, D) → (B, C) outputs (a dense associative memory or any classifier,
    e.g. its dual).
    """
    if mode not in ATTACK_MODES:
        raise ValueError(f'mode must be "sign" or "scaled" (got mode={mode!r})')
    if not is_int(steps) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0 (got steps={steps!r})")
    if not step_size > 0:
        raise ValueError(f"step_size must be > 0 (got step_size={step_size!r})")
    v = images.detach().clone()
    labels = labels.to(v.device)
    with torch.no_grad():
        out = model(v)
    num_classes = out.shape[1]
    if target is None:
        target = out.masked_fill(nn.functional.one_hot(labels, num_classes).bool(), -math.inf).argmax(1)
    target = target.to(v.device)
    t = targets_pm1(target, num_classes, out.dtype)
    taken = torch.zeros(v.shape[0], dtype=torch.long, device=v.device)
    fooled = out.argmax(1) != labels
    for _ in range(steps):
        active = ~fooled if stop_when_fooled else torch.ones_like(fooled)
        if not bool(active.any()):
            break
        v.requires_grad_(True)
        grad, = torch.autograd.grad(hopfield_loss(model(v), t, m), v)
        with torch.no_grad():
            if mode == "sign":
                step = grad.sign()
            else:
                step = grad / grad.abs().amax(1, keepdim=True).clamp(min=torch.finfo(grad.dtype).tiny)
            v = (v - step_size * step * active[:, None]).clamp(*clip)
            taken += active
            fooled = model(v).argmax(1) != labels
    return AttackResult(v.detach(), fooled, taken, target)


@dataclass
class AdversarialConfig(HopfieldConfig):
    """Two classifiers (``powers``) trained alike with the inherited ``HopfieldConfig`` fields (m and
    temperatures: each power's default unless given), each attacked, each attack set classified by
    both. The inherited ``power`` is not used: ``powers`` names the two models."""

    powers: list = field(default_factory=lambda: [2, 8])
    """The two powers (slides: n = 2 and n = 8)."""
    attack_images: int = 500
    """Test images attacked (taken among those both models classify correctly)."""
    attack_mode: str = "scaled"
    """"scaled": v ← v − ε ∂C/∂v / max|∂C/∂v| (the slides' input-gradient step); "sign": FGSM-like."""
    attack_steps: int = 200
    """Maximum attack steps (each image stops once its model is fooled)."""
    attack_step_size: float = 0.02
    """ε per step (pixels live in [−1, 1])."""
    attack_m: int = 1
    """Exponent of the attack loss Σ (c − t)^(2m)."""

    def validate(self) -> "AdversarialConfig":
        fail = functools.partial(refuse, self)
        if self.power != HopfieldConfig.power:
            fail("power", f"left at its default {HopfieldConfig.power}: powers names the two models")
        if (not isinstance(self.powers, (list, tuple)) or len(self.powers) != 2
                or not all(is_number(p) and p >= 1 for p in self.powers)):
            fail("powers", "two powers >= 1, e.g. [2, 8]")
        if self.attack_mode not in ATTACK_MODES:
            fail("attack_mode", f"one of {ATTACK_MODES}")
        for name in ("attack_images", "attack_steps", "attack_m"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(name, "an integer >= 1")
        if not is_number(self.attack_step_size) or not self.attack_step_size > 0:
            fail("attack_step_size", "a number > 0")
        for power in self.powers:
            self.model_config(power).validate()
        return self

    def model_config(self, power) -> HopfieldConfig:
        """The ``HopfieldConfig`` of the model of ``power``."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(HopfieldConfig)}
        return HopfieldConfig(**{**values, "power": power})


def power_tag(power) -> str:
    """``n2``, ``n8``, ``n2.5``: the model's name in the metric names."""
    return f"n{int(power) if float(power) == int(power) else power}"


@torch.no_grad()
def _predict(model, x, batch=2000):
    return torch.cat([model(x[b:b + batch]).argmax(1) for b in range(0, x.shape[0], batch)])


def transfer_table(models: dict, images: torch.Tensor, labels: torch.Tensor, attack: dict) -> dict[str, float]:
    """Attack every model and classify each adversarial set by every model.

    Returns ``err_gen{a}_cls{b}`` (fraction of the images made against model a that model b
    misclassifies), ``fooled_{a}`` (the attacked model's own rate, = err_gen{a}_cls{a}),
    ``steps_{a}`` (mean steps) and ``linf_{a}`` (mean largest pixel change).
    """
    out = {}
    for gen_name, gen_model in models.items():
        result = input_gradient_attack(gen_model, images, labels, **attack)
        out[f"steps_{gen_name}"] = float(result.steps.double().mean())
        out[f"linf_{gen_name}"] = float((result.images - images).abs().amax(1).mean())
        for cls_name, cls_model in models.items():
            wrong = _predict(cls_model, result.images) != labels
            out[f"err_gen{gen_name}_cls{cls_name}"] = float(wrong.double().mean())
        out[f"fooled_{gen_name}"] = float(result.fooled.double().mean())
    return out


def adversarial_transfer(cfg: AdversarialConfig, on_epoch: Callable[[dict, dict], object],
                         state: dict | None = None) -> dict:
    """Train both models, then attack; returns the final row.

    After every epoch calls ``on_epoch(metrics, checkpoint_state)``: ``epoch``,
    ``eval_error_{n2,n8}`` and ``clean_error`` (the worse of the two); the state holds both
    trainers (pass it back as ``state`` to resume). The final row: the clean errors,
    ``attacked_images`` and the 2×2 table (:func:`transfer_table`) on ``attack_images`` test
    images both classify correctly, with ``transfer_mean`` (mean off-diagonal error).
    """
    cfg.validate()
    data = load_classifier_data(cfg.model_config(cfg.powers[0]))
    names = [power_tag(p) for p in cfg.powers]
    trainers = {name: HopfieldTrainer(cfg.model_config(p), data) for name, p in zip(names, cfg.powers, strict=True)}
    if state is not None:
        for name, trainer in trainers.items():
            trainer.load_state_dict(state[name])
    epoch = min(t.epoch for t in trainers.values())
    while epoch < cfg.epochs:
        metrics = {}
        for name, trainer in trainers.items():
            trainer.train_epoch()
            trainer.epoch += 1
            metrics[f"eval_error_{name}"] = trainer.error(trainer.test_x, trainer.test_y)
        epoch += 1
        on_epoch({"epoch": epoch, **metrics, "clean_error": max(metrics.values())},
                 {name: t.state_dict() for name, t in trainers.items()})
    first = trainers[names[0]]
    x, y = first.test_x, first.test_y
    models = {name: t.model for name, t in trainers.items()}
    both = torch.ones_like(y, dtype=torch.bool)
    for model in models.values():
        both &= _predict(model, x) == y
    pick = both.nonzero().flatten()
    pick = pick[torch.randperm(pick.numel(), generator=torch.Generator().manual_seed(cfg.seed))[:cfg.attack_images]]
    attack = dict(steps=cfg.attack_steps, step_size=cfg.attack_step_size, mode=cfg.attack_mode, m=cfg.attack_m)
    clean = {f"eval_error_{name}": t.error(t.test_x, t.test_y) for name, t in trainers.items()}
    out = {**clean, "clean_error": max(clean.values()), "attacked_images": float(pick.numel())}
    if pick.numel():  # (an untrained pair may classify no test image correctly: nothing to attack)
        table = transfer_table(models, x[pick], y[pick], attack)
        out.update(table, transfer_mean=sum(table[f"err_gen{a}_cls{b}"] for a in names for b in names if a != b) / 2)
    return out
