"""The DecisiveNets (DHAM) activation and its temperature schedule.

Gripon, Lassance & Boukli Hacene, "DecisiveNets: Training Deep Associative Memories to Solve
Complex Machine Learning Problems", §4.1. Equation numbers below ("eq. N") are those of
docs/decisivenets.md, which states the model.

The channel axis of a tensor is split into groups of ``ell`` consecutive channels
(equivalently ``c`` groups with ``c * ell = C``; eq. 1). At every location, for a group ``z``
and the base activation ``σ = ReLU`` (eq. 2)::

    s      = softmax(t · σ(z))                    # over the ell channels of the group
    σ_t(z) = (s / max(s)) · σ(z)                  # s / max(s) is detached from the graph

and, at evaluation, its ``t → ∞`` limit, a hard local winner-takes-all (eq. 4)::

    keep:   σ_WTA(z)_j = σ(z)_j  if j is the group's winner else 0
    binary: σ_WTA(z)_j = 1       if j is the group's winner else 0

Implementation (eq. 3): ``s_j / max(s) = exp(t·(σ(z)_j − max σ(z)))``; the softmax normaliser
cancels, so we compute that single exponential (always ≤ 1, no overflow, and it underflows to
exactly 0 for the losers when ``t`` is huge). The tests check it against a literal softmax
formula. The temperature schedule is eq. 5.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from .checks import is_number, positive_int

WTA_MODES = ("keep", "binary")


class DHAMActivation(nn.Module):
    """σ_t in ``train()`` mode (eq. 2), hard winner-takes-all in ``eval()`` mode (eq. 4).

    Args:
        ell: channels per group (``ell=1`` is exactly ReLU). Give either ``ell`` or ``groups``.
        groups: number of groups ``c`` per layer instead (then ``ell = C / c`` for this layer).
        num_channels: the channel count ``C``, if known, to validate divisibility now; otherwise
            it is checked at every forward.
        temperature: ``t > 0`` of the training-mode softmax (set it with a
            :class:`TemperatureSchedule`, or directly through ``.temperature``).
        wta: evaluation-mode winner-takes-all: ``"keep"`` keeps the winner's value,
            ``"binary"`` writes 1 at the winner.

    The channel axis is axis 1: ``(N, C, ...)`` image tensors and ``(N, F)`` feature tensors
    (where it is also the last axis). Each group has exactly one winner per location in eval
    mode, the first channel holding the group's maximum of ``σ(z)`` (``torch.argmax`` breaks
    ties by the first index). A group where every ``z ≤ 0`` therefore outputs zeros with
    ``keep`` and a single 1 (on its first channel) with ``binary``, as the binary WTA of
    Gripon–Berrou memories always writes one 1 per block (docs/decisivenets.md, "Readings we
    chose").
    """

    def __init__(
        self,
        ell: int | None = None,
        *,
        groups: int | None = None,
        num_channels: int | None = None,
        temperature: float = 1.0,
        wta: str = "keep",
    ) -> None:
        super().__init__()
        if ell is not None and groups is not None:
            raise ValueError(
                f"give either ell or groups, not both (got ell={ell!r}, groups={groups!r})"
            )
        if groups is not None:
            groups = positive_int("groups", groups)
        else:
            ell = positive_int("ell", 1 if ell is None else ell)
        if wta not in WTA_MODES:
            raise ValueError(f"wta must be one of {WTA_MODES} (got wta={wta!r})")
        if num_channels is not None:
            num_channels = positive_int("num_channels", num_channels)
        self._ell = ell
        self.groups = groups
        self.num_channels = num_channels
        self.wta = wta
        self.temperature = temperature
        if num_channels is not None:
            self.group_size(num_channels)  # raises ValueError now if it does not divide

    # -- parameters -------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        value = float(value)
        if not is_number(value) or value <= 0:
            raise ValueError(f"temperature must be a finite number > 0 (got temperature={value!r})")
        self._temperature = value

    def group_size(self, num_channels: int) -> int:
        """The ``ell`` used for a tensor with ``num_channels`` channels (validates it)."""
        if self.groups is not None:
            if num_channels % self.groups:
                raise ValueError(
                    f"groups must divide the number of channels "
                    f"(got channels={num_channels}, groups={self.groups})"
                )
            return num_channels // self.groups
        if num_channels % self._ell:
            raise ValueError(
                f"ell must divide the number of channels (got channels={num_channels}, ell={self._ell})"
            )
        return self._ell

    @property
    def ell(self) -> int | None:
        """Channels per group; ``None`` in ``groups=`` mode until the channel count is known."""
        if self.groups is not None:
            return None if self.num_channels is None else self.num_channels // self.groups
        return self._ell

    def extra_repr(self) -> str:
        size = f"groups={self.groups}" if self.groups is not None else f"ell={self._ell}"
        ch = f", num_channels={self.num_channels}" if self.num_channels is not None else ""
        return f"{size}{ch}, temperature={self._temperature:g}, wta={self.wta!r}"

    # -- forward ----------------------------------------------------------------------
    def _split(self, z: torch.Tensor) -> tuple[torch.Tensor, int]:
        if z.dim() < 2:
            raise ValueError(f"input must have a batch and a channel axis (got shape {tuple(z.shape)})")
        num_channels = z.shape[1]
        if self.num_channels is not None and num_channels != self.num_channels:
            raise ValueError(
                f"input has {num_channels} channels on axis 1 but the activation was built "
                f"for num_channels={self.num_channels}"
            )
        ell = self.group_size(num_channels)
        # (N, C, ...) -> (N, C/ell, ell, ...): a view for contiguous and channels_last tensors.
        return z.unflatten(1, (num_channels // ell, ell)), ell

    def winners(self, z: torch.Tensor) -> torch.Tensor:
        """One-hot winner mask, same shape as ``z``: exactly one 1 per group and location."""
        zz, _ = self._split(z)
        x = torch.relu(zz)
        index = x.argmax(dim=2, keepdim=True)  # first maximal index on ties
        return torch.zeros_like(x).scatter_(2, index, 1.0).flatten(1, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        zz, ell = self._split(z)
        if ell == 1:
            return torch.relu(z)
        x = torch.relu(zz)
        if not self.training:
            index = x.argmax(dim=2, keepdim=True)
            mask = torch.zeros_like(x).scatter_(2, index, 1.0)
            return (mask if self.wta == "binary" else x * mask).flatten(1, 2)
        with torch.no_grad():
            # s / max(s) = exp(t * (σ(z) - max σ(z))), detached (eq. 3). Keep x as the
            # first operand so outputs keep x's memory layout (channels_last stays a view).
            gain = torch.sub(x, x.amax(dim=2, keepdim=True)).mul_(self._temperature).exp_()
        return (x * gain).flatten(1, 2)


def dham_modules(model_or_modules: nn.Module | Iterable[nn.Module]) -> list[DHAMActivation]:
    """Every :class:`DHAMActivation` in a model (or an iterable of modules)."""
    modules = model_or_modules.modules() if isinstance(model_or_modules, nn.Module) else model_or_modules
    return [m for m in modules if isinstance(m, DHAMActivation)]


class TemperatureSchedule:
    """Exponential temperature (eq. 5): ``t(step) = t_init · (t_final / t_init) ** (step / total_steps)``.

    Call :meth:`step` once per optimisation step and :meth:`apply` to push the current value
    into every :class:`DHAMActivation` of a model. Past ``total_steps`` the value stays at
    ``t_final``.
    """

    def __init__(self, t_init: float, t_final: float, total_steps: int) -> None:
        t_init, t_final = float(t_init), float(t_final)
        if not is_number(t_init) or t_init <= 0:
            raise ValueError(f"t_init must be a finite number > 0 (got t_init={t_init!r})")
        if not is_number(t_final) or t_final < t_init:
            raise ValueError(
                f"t_final must be finite and >= t_init (got t_init={t_init!r}, t_final={t_final!r})"
            )
        self.t_init = t_init
        self.t_final = t_final
        self.total_steps = positive_int("total_steps", total_steps)
        self.step_count = 0

    def value_at(self, step: int) -> float:
        if step >= self.total_steps:
            return self.t_final
        return self.t_init * (self.t_final / self.t_init) ** (step / self.total_steps)

    @property
    def value(self) -> float:
        """The temperature for the current step."""
        return self.value_at(self.step_count)

    def step(self) -> float:
        """Advance one optimisation step; returns the new temperature."""
        self.step_count += 1
        return self.value

    def apply(self, model_or_modules: nn.Module | Iterable[nn.Module]) -> int:
        """Set the current temperature on every DHAM activation; returns how many were set."""
        modules = dham_modules(model_or_modules)
        value = self.value
        for module in modules:
            module.temperature = value
        return len(modules)

    def state_dict(self) -> dict:
        return {
            "t_init": self.t_init,
            "t_final": self.t_final,
            "total_steps": self.total_steps,
            "step_count": self.step_count,
        }

    def load_state_dict(self, state: dict) -> None:
        restored = TemperatureSchedule(state["t_init"], state["t_final"], state["total_steps"])
        self.t_init, self.t_final = restored.t_init, restored.t_final
        self.total_steps = restored.total_steps
        self.step_count = int(state["step_count"])

    def __repr__(self) -> str:
        return (
            f"TemperatureSchedule(t_init={self.t_init:g}, t_final={self.t_final:g}, "
            f"total_steps={self.total_steps}, step={self.step_count}, value={self.value:g})"
        )
