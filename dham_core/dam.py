"""Dense associative memory (Krotov & Hopfield 2016, arXiv 1606.01164) — PAPERS.md §3.

Energy ``E = −Σ_μ F(ξ^μ · σ)`` with the rectified polynomial ``F(x) = max(x, 0)^n`` or the
plain power ``F(x) = x^n``; ``n = 2`` is the classical Hopfield network.

Contents (pure PyTorch, device-agnostic, batched):

* energy functions ``rectified_poly``, ``power_poly``;
* ``DenseAssociativeMemory`` — the one-step MNIST classifier (B×K×C, no loop over classes),
  and ``DualNetwork`` — the one-hidden-layer network (activation F′) built from its memories;
* auto-associative retrieval on ±1 spins: ``spin_energy``, ``spin_fields``, ``retrieve``
  (asynchronous and synchronous updates, batched over starts and over memory sets);
* training: ``KrotovOptimizer`` (the paper's normalised momentum step), ``DAMConfig``,
  ``DAMTrainer`` / ``train_classifier`` (per-epoch callback, exact resume);
* capacity: the paper's formulas (``perfect_recall_capacity``, ``one_step_error_probability``)
  and streamed, packed measurements (``one_step_error``, ``perfect_recall_fraction``,
  ``half_recall_capacity``, ``random_start_recall``);
* ``input_gradient_attack`` — adversarial images by ``v ← v − ε ∂C/∂v`` (Krotov's slides).
"""
from __future__ import annotations

import dataclasses
import functools
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator, NamedTuple, Sequence

import torch
from torch import nn

from dham_core.checks import is_int, is_number, refuse

# ----------------------------------------------------------------------------------------
# Energy functions
# ----------------------------------------------------------------------------------------


def rectified_poly(x: torch.Tensor, n: float) -> torch.Tensor:
    """Rectified polynomial ``F(x) = x^n for x ≥ 0, else 0`` (PAPERS.md §3)."""
    return x.clamp(min=0).pow(n)


def power_poly(x: torch.Tensor, n: float) -> torch.Tensor:
    """Plain power ``F(x) = x^n`` (PAPERS.md §3; the classical Hopfield energy at n = 2)."""
    return x.pow(n)


def energy_fn(x: torch.Tensor, power, rectified) -> torch.Tensor:
    """``F(x)`` with ``power`` and ``rectified`` scalars or tensors broadcastable against ``x``."""
    if isinstance(rectified, torch.Tensor):
        x = torch.where(rectified, x.clamp(min=0), x)
    elif rectified:
        x = x.clamp(min=0)
    return x.pow(power)


def _check_power(power, rectified: bool, name: str = "power") -> float:
    if isinstance(power, bool) or not isinstance(power, (int, float)) or not math.isfinite(power) or power < 1:
        raise ValueError(f"{name} must be a number >= 1 (got {name}={power!r})")
    if not rectified and power != int(power):
        raise ValueError(f"{name} must be an integer for the plain power energy (rectified=False) "
                         f"(got {name}={power!r})")
    return int(power) if power == int(power) else float(power)


# ----------------------------------------------------------------------------------------
# The classifier: one update of the classification neurons (PAPERS.md §3, "Classifier")
# ----------------------------------------------------------------------------------------

# F(x) is evaluated in a scaled form. F is homogeneous of degree n, so β F(x) = F(x / T) with
# β = 1/T^n: the arguments are divided by T before the power. When even that could overflow
# float32 (|x/T|^n · K beyond ~1e26), the rows concerned are further divided by their largest
# argument M_b and the sum is multiplied back by M_b^n in the log domain (exact up to tanh
# saturation).
_LOG_SAFE = 60.0  # rows whose largest |F| could exceed e^60 are rescaled
_LOG_SATURATE = 30.0  # tanh(±e^30) is ±1 in every float format


def _arguments(u: torch.Tensor, a_t: torch.Tensor, r: torch.Tensor | None, rows: slice,
               rectified: bool) -> torch.Tensor:
    """The (rows, C, K) arguments of F for a block of rows: (u + a)·r, clamped at 0 when
    rectified. Forward and backward both rebuild them block by block rather than keep the
    B×C×K tensor alive between the passes."""
    x = u[rows, None, :] + a_t[None]
    if r is not None:
        x.mul_(r[rows, :, None])
    if rectified:
        x.clamp_(min=0)
    return x


def _chunk_rows(rows: int, per_row: int, device: torch.device) -> int:
    target = 1 << (26 if device.type == "cuda" else 18)  # elements per chunk (cache-sized on CPU)
    return max(1, min(rows, target // max(1, per_row)))


def _pow_inplace(x: torch.Tensor, n) -> torch.Tensor:
    """``x ← x^n`` in place. Integer n > 3 by repeated squaring: on CPU ``pow_`` with such an
    exponent falls back to scalar ``std::pow`` (~6 ns/element), several in-cache multiplies
    cost a fraction of that."""
    if not isinstance(n, int) or n <= 3:
        return x.pow_(n)
    base = x.clone()
    first = True
    while n:
        if n & 1:
            if first:
                x.copy_(base)
                first = False
            else:
                x.mul_(base)
        n >>= 1
        if n:
            base.mul_(base)
    return x


def _f_prime_inplace(x: torch.Tensor, n, rectified: bool) -> torch.Tensor:
    """``F′(x) / n`` in place (x already clamped at 0 when rectified)."""
    if n == 1:
        return x.gt_(0).to(x.dtype) if rectified else x.fill_(1)
    return _pow_inplace(x, n - 1)


class _PairedPowerSum(torch.autograd.Function):
    """``S_bα = Σ_μ [F(r_b (u_bμ + a_αμ)) − F(r_b u_bμ)]`` without storing the B×C×K tensor.

    Hand-written (forward and backward) because autograd would keep several B×C×K
    intermediates in memory; here they are recomputed chunk by chunk in cache, which is what
    makes a DAM step cost about as much as the dual MLP step (benchmarks/dam.py).
    """

    @staticmethod
    def forward(ctx, u, a_t, r, n, rectified):  # u (B,K), a_t (C,K), r (B,1) or None
        rows, k = u.shape
        c = a_t.shape[0]
        chunk = _chunk_rows(rows, c * k, u.device)
        out = u.new_empty(rows, c)
        for b0 in range(0, rows, chunk):
            x = _arguments(u, a_t, r, slice(b0, b0 + chunk), rectified)
            out[b0:b0 + chunk] = _pow_inplace(x, n).sum(2)
        base = u if r is None else u * r
        out -= energy_fn(base, n, rectified).sum(1, keepdim=True)
        ctx.save_for_backward(u, a_t, r)
        ctx.n, ctx.rectified = n, rectified
        return out

    @staticmethod
    def backward(ctx, grad):
        u, a_t, r = ctx.saved_tensors
        n, rectified = ctx.n, ctx.rectified
        rows, k = u.shape
        c = a_t.shape[0]
        chunk = _chunk_rows(rows, c * k, u.device)
        g = grad * n if r is None else grad * (n * r)  # chain rule through r·x and F = x^n
        grad_u = torch.empty_like(u)
        grad_a = torch.zeros_like(a_t)
        for b0 in range(0, rows, chunk):
            x = _arguments(u, a_t, r, slice(b0, b0 + chunk), rectified)
            x = _f_prime_inplace(x, n, rectified).mul_(g[b0:b0 + chunk, :, None])
            grad_u[b0:b0 + chunk] = x.sum(1)
            grad_a += x.sum(0)
        base = (u if r is None else u * r).clone()
        if rectified:
            base.clamp_(min=0)
        grad_u -= _f_prime_inplace(base, n, rectified) * g.sum(1, keepdim=True)
        return grad_u, grad_a, None, None, None


def _row_scale(u: torch.Tensor, a_max: torch.Tensor, n, rectified: bool):
    """Per-row factor r (or None) and log M_b^n for rows at risk of float32 overflow."""
    with torch.no_grad():
        top = (u.clamp(min=0) if rectified else u.abs()) + a_max
        bound = top.amax(1, keepdim=True).clamp(min=torch.finfo(u.dtype).tiny)
        log_scale = n * bound.log()
        need = log_scale > _LOG_SAFE
        if not bool(need.any()):
            return None, None
        r = torch.where(need, bound.reciprocal(), torch.ones_like(bound))
        return r, torch.where(need, log_scale, torch.zeros_like(log_scale))


def _unscale(s: torch.Tensor, log_scale: torch.Tensor | None) -> torch.Tensor:
    """``s · exp(log_scale)`` clamped where tanh saturates anyway (rows with log_scale 0 pass)."""
    if log_scale is None:
        return s
    need = log_scale > 0
    safe = torch.where(need & (s != 0), s, torch.ones_like(s))
    big = torch.sign(s) * torch.exp((safe.abs().log() + log_scale).clamp(max=_LOG_SATURATE))
    return torch.where(need, big, s)


class DenseAssociativeMemory(nn.Module):
    """Krotov–Hopfield classifier: memories over visible + classification neurons.

    ``memories`` has shape ``(K, num_visible + num_classes)``, visible columns first, and is
    initialised ξ ~ N(−0.3, 0.3) (clipped to [−1, 1]) as in the paper. ``forward(v)`` clamps
    the visible neurons to ``v`` (B, num_visible) in [−1, 1], starts every classification
    neuron at −1 and makes one update (PAPERS.md §3):

        c_α = tanh(β Σ_μ [F(s_μ + 2ξ^μ_α) − F(s_μ)]),  s_μ = Σ_i ξ^μ_i v_i − Σ_γ ξ^μ_γ,  β = 1/Tⁿ

    returning ``c`` (B, num_classes) in (−1, 1); prediction = arg-max.
    """

    def __init__(self, num_visible: int, num_classes: int, num_memories: int, power: float,
                 temperature: float, rectified: bool = True, *, generator: torch.Generator | None = None,
                 init_mean: float = -0.3, init_std: float = 0.3, device=None, dtype=None) -> None:
        super().__init__()
        for name, value, low in (("num_visible", num_visible, 1), ("num_classes", num_classes, 1),
                                 ("num_memories", num_memories, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low} (got {name}={value!r})")
        self.num_visible, self.num_classes, self.num_memories = num_visible, num_classes, num_memories
        self.rectified = bool(rectified)
        self.power = _check_power(power, self.rectified)
        init = torch.randn(num_memories, num_visible + num_classes, generator=generator, dtype=torch.float64)
        init = (init * init_std + init_mean).clamp(-1, 1)
        self.memories = nn.Parameter(init.to(device=device, dtype=dtype or torch.get_default_dtype()))
        self.register_buffer("_temperature", torch.zeros((), dtype=torch.float64, device=device))
        self.temperature = temperature

    @property
    def temperature(self) -> float:
        return float(self._temperature)

    @temperature.setter
    def temperature(self, value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"temperature must be a finite number > 0 (got temperature={value!r})")
        self._temperature.fill_(float(value))

    @property
    def beta(self) -> float:
        """β = 1/Tⁿ (the forward pass uses the equivalent scaled form F(x/T))."""
        return self.temperature ** (-self.power)

    def extra_repr(self) -> str:
        return (f"num_visible={self.num_visible}, num_classes={self.num_classes}, "
                f"num_memories={self.num_memories}, power={self.power}, temperature={self.temperature}, "
                f"rectified={self.rectified}")

    def _check_input(self, v: torch.Tensor) -> torch.Tensor:
        if not isinstance(v, torch.Tensor) or v.dim() != 2 or v.shape[1] != self.num_visible:
            shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise ValueError(f"v must be a tensor of shape (batch, num_visible={self.num_visible}) "
                             f"(got v of shape {shape})")
        return v.to(self.memories.dtype)

    def hidden(self, v: torch.Tensor) -> torch.Tensor:
        """``s_μ = Σ_i ξ^μ_i v_i − Σ_γ ξ^μ_γ`` (B, K): each memory's overlap with the start state."""
        v = self._check_input(v)
        visible, classes = self.memories[:, :self.num_visible], self.memories[:, self.num_visible:]
        return v @ visible.T - classes.sum(1)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        u = self.hidden(v) / t  # s/T
        a_t = (2 / t) * self.memories[:, self.num_visible:].T  # 2ξ_α/T, (C, K)
        r, log_scale = _row_scale(u, a_t.abs().amax(0), self.power, self.rectified)
        s = _PairedPowerSum.apply(u, a_t.contiguous(), r, self.power, self.rectified)
        return torch.tanh(_unscale(s, log_scale))

    @torch.no_grad()
    def dual_network(self) -> "DualNetwork":
        """The equivalent one-hidden-layer network (activation F′) built from these memories."""
        net = DualNetwork(self.num_visible, self.num_classes, self.num_memories, self.power,
                          self.temperature, self.rectified, device=self.memories.device,
                          dtype=self.memories.dtype)
        visible, classes = self.memories[:, :self.num_visible], self.memories[:, self.num_visible:]
        net.hidden.weight.copy_(visible)
        net.hidden.bias.copy_(-classes.sum(1))
        net.output.weight.copy_(2 * classes.T)
        return net

    # auto-associative use of the same memories on ±1 spins (visible + classification units)
    def energy(self, spins: torch.Tensor) -> torch.Tensor:
        """``E(σ) = −Σ_μ F(ξ^μ·σ)`` for spins (…, S, N + C)."""
        return spin_energy(self.memories.detach(), spins, self.power, self.rectified)

    def retrieve(self, spins: torch.Tensor, **kwargs) -> "SpinRetrieval":
        """``retrieve`` (below) with this model's memories, power and energy."""
        return retrieve(self.memories.detach(), spins, self.power, self.rectified, **kwargs)


class PolyDerivative(nn.Module):
    """Activation ``F′(x)``: ``n·max(x,0)^(n−1)`` (rectified; ReLU up to the factor 2 at n = 2)
    or ``n·x^(n−1)`` (plain)."""

    def __init__(self, power: float, rectified: bool = True) -> None:
        super().__init__()
        self.power, self.rectified = power, rectified

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.power
        if n == 1:
            return (x > 0).to(x.dtype) if self.rectified else torch.ones_like(x)
        return n * energy_fn(x, n - 1, self.rectified)

    def extra_repr(self) -> str:
        return f"power={self.power}, rectified={self.rectified}"


class DualNetwork(nn.Module):
    """One hidden layer (PAPERS.md §3, "Duality"): ``c = tanh(β W₂ F′(W₁ v + b₁))``.

    Built from a DAM by ``DenseAssociativeMemory.dual_network()``: ``W₁`` = the visible part of
    the memories, ``b₁ = −Σ_γ ξ_γ`` (so the hidden pre-activations are the DAM's s_μ) and
    ``W₂ = 2ξ_αᵀ``. It is the first-order term of ``F(s + 2ξ_α) − F(s) = 2ξ_α F′(s) + O(ξ_α²
    F″(s))``, the paper's large-N limit where the label units' contribution is small beside the
    pixels'; the two agree to that order (tests/test_dam.py). Plain ``nn.Linear`` layers, so it
    also serves as the same-size MLP baseline.
    """

    def __init__(self, num_visible: int, num_classes: int, num_hidden: int, power: float,
                 temperature: float, rectified: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.power, self.temperature, self.rectified = _check_power(power, rectified), float(temperature), rectified
        if not self.temperature > 0:
            raise ValueError(f"temperature must be a finite number > 0 (got temperature={temperature!r})")
        self.hidden = nn.Linear(num_visible, num_hidden, device=device, dtype=dtype)
        self.activation = PolyDerivative(self.power, rectified)
        self.output = nn.Linear(num_hidden, num_classes, bias=False, device=device, dtype=dtype)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        # β·W₂F′(s) = (W₂/T)·F′(s/T) since F′ is homogeneous of degree n−1 (scaled as in the DAM).
        u = self.hidden(v) / self.temperature
        n = self.power
        r = log_scale = None
        if n > 1:  # F′ of degree n − 1 (constant at n = 1: nothing to overflow)
            r, log_scale = _row_scale(u, torch.zeros((), device=u.device, dtype=u.dtype), n - 1, self.rectified)
        h = self.activation(u if r is None else u * r)
        return torch.tanh(_unscale(self.output(h) / self.temperature, log_scale))


# ----------------------------------------------------------------------------------------
# Auto-associative retrieval on ±1 spins (PAPERS.md §3, "Energy and update")
# ----------------------------------------------------------------------------------------


class SpinRetrieval(NamedTuple):
    spins: torch.Tensor
    """Final states (…, S, N), ±1."""
    converged: torch.Tensor
    """(…, S) bool: the state is a fixed point of the update rule."""
    sweeps: int
    """Passes over the N spins (async) or parallel updates (sync) that changed some spin."""


def _broadcast(a: tuple, b: tuple) -> tuple:
    # torch.broadcast_shapes imports torch.fx on first use (~1 s); this is all it does here.
    a, b = (1,) * (len(b) - len(a)) + tuple(a), (1,) * (len(a) - len(b)) + tuple(b)
    if any(x != y and 1 not in (x, y) for x, y in zip(a, b)):
        raise ValueError(f"memories and spins leading dims must broadcast (got {a} and {b})")
    return tuple(max(x, y) if 1 in (x, y) else x for x, y in zip(a, b))


def _as_cells(memories: torch.Tensor, spins: torch.Tensor, power, rectified):
    """Flatten leading dims: memories (P, K, N), spins (P, S, N), power/rectified (P,)."""
    if memories.dim() < 2:
        raise ValueError(f"memories must have shape (..., K, N) (got {tuple(memories.shape)})")
    if spins.dim() < 2:
        raise ValueError(f"spins must have shape (..., S, N) (got {tuple(spins.shape)})")
    if spins.shape[-1] != memories.shape[-1]:
        raise ValueError(f"spins must have N={memories.shape[-1]} columns like memories "
                         f"(got spins of shape {tuple(spins.shape)})")
    lead = _broadcast(memories.shape[:-2], spins.shape[:-2])
    k, n_units = memories.shape[-2:]
    s = spins.shape[-2]
    mem = memories.expand(*lead, k, n_units).reshape(-1, k, n_units)
    if not bool(((spins == 1) | (spins == -1)).all()):
        raise ValueError("spins must contain only +1 and -1")
    sp = spins.to(memories.dtype).expand(*lead, s, n_units).reshape(-1, s, n_units).clone()
    p = mem.shape[0]
    power_t = torch.as_tensor(power, dtype=torch.float64).expand(lead).reshape(p)
    rect_t = torch.as_tensor(rectified, dtype=torch.bool).expand(lead).reshape(p)
    if bool((power_t < 1).any()):
        raise ValueError(f"power must be >= 1 (got power={power!r})")
    return lead, mem, sp, power_t, rect_t


def _cell_power(power_t: torch.Tensor, rect_t: torch.Tensor, dims: int, ref: torch.Tensor):
    shape = (-1,) + (1,) * dims
    return power_t.to(ref.device, ref.dtype).view(shape), rect_t.to(ref.device).view(shape)


def spin_energy(memories: torch.Tensor, spins: torch.Tensor, power, rectified=False) -> torch.Tensor:
    """``E(σ) = −Σ_μ F(ξ^μ · σ)`` for memories (…, K, N) and spins (…, S, N) → (…, S)."""
    lead, mem, sp, power_t, rect_t = _as_cells(memories, spins, power, rectified)
    n, rect = _cell_power(power_t, rect_t, 2, mem)
    h = sp @ mem.transpose(1, 2)
    return -energy_fn(h, n, rect).sum(-1).reshape(*lead, sp.shape[1])


def _generic_fields(mem, sp, h, n, rect) -> torch.Tensor:
    """``D_i = Σ_μ F(h_μ − ξ_iσ_i + ξ_i) − F(h_μ − ξ_iσ_i − ξ_i)`` for every spin: (P, S, N).

    ``n``, ``rect``: per-cell power and rectified flag shaped (P, 1, 1).
    """
    p, s, n_units = sp.shape
    k = mem.shape[1]
    out = torch.empty_like(sp)
    chunk = _chunk_rows(s, p * k * n_units, sp.device)
    for s0 in range(0, s, chunk):
        xi = mem[:, None]  # (P,1,K,N)
        rest = h[:, s0:s0 + chunk, :, None] - xi * sp[:, s0:s0 + chunk, None, :]
        out[:, s0:s0 + chunk] = (energy_fn(rest + xi, n[..., None], rect[..., None])
                                 - energy_fn(rest - xi, n[..., None], rect[..., None])).sum(2)
    return out


def spin_fields(memories: torch.Tensor, spins: torch.Tensor, power, rectified=False) -> torch.Tensor:
    """Energy gap per spin, ``D_i = E(σ_i = −1) − E(σ_i = +1)`` given the others (…, S, N).

    The asynchronous rule sets ``σ_i ← sign(D_i)`` (PAPERS.md §3); a spin is unstable when
    ``σ_i D_i < 0``.
    """
    lead, mem, sp, power_t, rect_t = _as_cells(memories, spins, power, rectified)
    n, rect = _cell_power(power_t, rect_t, 2, mem)
    h = sp @ mem.transpose(1, 2)
    return _generic_fields(mem, sp, h, n, rect).reshape(*lead, *sp.shape[1:])


# --- fast path for ±1 memories: overlaps are integers in [−N, N], so F is a lookup table ---
#
# With ξ_i, σ_i = ±1: F(h' + ξ_i) − F(h' − ξ_i) = ξ_i G(h'), G(x) = F(x+1) − F(x−1), and
# h' = h − ξ_iσ_i ∈ {h − 1, h + 1}, which gives for all spins at once
#     D_i = Σ_μ ξ^μ_i A(h_μ) + σ_i Σ_μ B(h_μ),
#     A(h) = (F(h+2) − F(h−2))/2,   B(h) = F(h) − (F(h+2) + F(h−2))/2
# — two table look-ups and one matrix product instead of a K×N tensor of powers.


def _field_tables(num_units: int, power: torch.Tensor, rectified: torch.Tensor, device):
    """A and B tables (…, 2N+1) over h = −N..N, per cell; float64 maths, float32 storage.

    Each cell's tables are scaled by a power of two (exact) so that integer values stay exact.
    """
    x = torch.arange(-num_units - 2, num_units + 3, dtype=torch.float64)
    f = energy_fn(x, power[..., None].double(), rectified[..., None])
    scale = torch.exp2(torch.floor(torch.log2(f.abs().amax(-1, keepdim=True).clamp(min=1))))
    f = f / scale
    a = (f[..., 4:] - f[..., :-4]) / 2
    b = f[..., 2:-2] - (f[..., 4:] + f[..., :-4]) / 2
    return a.to(device, torch.float32), b.to(device, torch.float32)


def _table_offsets(num_units: int, cell: torch.Tensor) -> torch.Tensor:
    """Float offset that turns an overlap h into its flat table index: h + N + cell·(2N+1)."""
    return (cell * (2 * num_units + 1) + num_units).to(torch.float32)


def _lookup(table: torch.Tensor, h: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    # float add + int32 cast + index_select: ~10× faster on CPU than int64 advanced indexing
    idx = (h + offset).to(torch.int32)
    return table.index_select(0, idx.flatten()).view(idx.shape)


def _fast_margins(mem, sp, h, tab_a, tab_b, offset):
    """``σ_i D_i`` for mem (G, K, N), sp (G, R, N), h (G, R, K), offset (G, R, 1)."""
    a = _lookup(tab_a, h, offset)
    b = _lookup(tab_b, h, offset).sum(-1, keepdim=True)
    return sp * (a @ mem) + b


def _is_pm1(x: torch.Tensor) -> bool:
    return bool(((x == 1) | (x == -1)).all())


def _async_flips(mem, sp, offset, clamped, tab_a, tab_b, max_sweeps):
    """Asynchronous dynamics (spins visited 0..N−1 cyclically) for ±1 memories, batched.

    Visiting spins in order and flipping unstable ones is the same as repeatedly flipping the
    first unstable spin at or after the visit pointer: each iteration flips one spin per start
    and recomputes every spin's field with one matrix product (fast path above). Starts that
    have stopped are dropped from the batch when there is a single group.
    mem (G, K, N); sp (G, R, N) ±1, updated in place; offset (G, R, 1); clamped (G, R, N) or
    None. Returns (converged (G, R) bool, passes with a flip).
    """
    g, rows, n_units = sp.shape
    device = sp.device
    mem_rows = mem.transpose(1, 2).reshape(g * n_units, -1)  # row g·N + j: spin j's weights in group g
    group_base = (torch.arange(g, device=device) * n_units).view(g, 1)
    spin_index = torch.arange(n_units, device=device)
    converged = torch.zeros(g, rows, dtype=torch.bool, device=device)
    passes_out = torch.zeros(g, rows, dtype=torch.long, device=device)
    ids = torch.arange(rows, device=device)  # rows still running (single group only)
    x = sp.clone()
    h = x @ mem.transpose(1, 2)
    off, clamp = offset, clamped
    pointer = torch.zeros(g, rows, dtype=torch.long, device=device)
    wraps = torch.zeros_like(pointer)
    passes = torch.zeros_like(pointer)
    while True:
        unstable = _fast_margins(mem, x, h, tab_a, tab_b, off) < 0
        if clamp is not None:
            unstable &= ~clamp
        any_unstable = unstable.any(-1)
        key = torch.where(unstable, (spin_index - pointer[..., None]) % n_units, n_units)
        j = key.argmin(-1)
        wraps += any_unstable & (j < pointer)  # wrapped round: a new pass
        flip = any_unstable & (wraps < max_sweeps)
        done = ~flip
        if g == 1 and bool(done.any()) or not bool(flip.any()):
            # record stopped rows (all rows when nothing flips any more)
            sel = ids[done[0]] if g == 1 else ids
            keep = done if g == 1 else torch.ones_like(done)
            sp[:, sel] = x[keep].view(g, -1, n_units)
            converged[:, sel] = (~any_unstable[keep]).view(g, -1)
            passes_out[:, sel] = passes[keep].view(g, -1)
            if not bool(flip.any()):
                break
            if g == 1:  # drop them
                live = flip[0]
                ids, x, h, off, j = ids[live], x[:, live], h[:, live], off[:, live], j[:, live]
                pointer, wraps, passes, flip = pointer[:, live], wraps[:, live], passes[:, live], flip[:, live]
                clamp = clamp[:, live] if clamp is not None else None
        passes = torch.maximum(passes, torch.where(flip, wraps + 1, 0))
        new = -x.gather(-1, j[..., None]).squeeze(-1)
        x.scatter_(-1, j[..., None], torch.where(flip, new, -new)[..., None])
        sign = torch.where(flip, 2 * new, torch.zeros_like(new))
        h += sign[..., None] * mem_rows.index_select(0, (group_base + j).flatten()).view(*j.shape, -1)
        pointer = torch.where(flip, (j + 1) % n_units, pointer)
    return converged, int(passes_out.max()) if passes_out.numel() else 0


def retrieve(memories: torch.Tensor, spins: torch.Tensor, power, rectified=False, *, mode: str = "async",
             max_sweeps: int = 100, clamped: torch.Tensor | None = None, fast: bool | None = None) -> SpinRetrieval:
    """Run the DAM dynamics from ±1 start states to a fixed point (or ``max_sweeps``).

    memories (…, K, N) real (±1 for the classic experiments); spins (…, S, N) ±1; leading
    dims broadcast — one call runs many memory sets ("cells") and many starts. ``power`` and
    ``rectified`` may be tensors over the leading dims (one energy per cell).

    * ``mode="async"``: spins visited in order 0..N−1, ``σ_i ← sign(D_i)`` using the current
      state, a tie (D_i = 0) keeps σ_i; every flip lowers the energy strictly.
    * ``mode="sync"``: all spins updated at once from the same state (may oscillate).

    ``clamped`` (broadcastable to spins) marks spins that never change (e.g. XOR inputs).
    ``fast`` (default: when memories are ±1) uses the look-up-table fields.
    """
    if mode not in ("async", "sync"):
        raise ValueError(f'mode must be "async" or "sync" (got mode={mode!r})')
    if isinstance(max_sweeps, bool) or not isinstance(max_sweeps, int) or max_sweeps < 1:
        raise ValueError(f"max_sweeps must be an integer >= 1 (got max_sweeps={max_sweeps!r})")
    lead, mem, sp, power_t, rect_t = _as_cells(memories, spins, power, rectified)
    p, s, n_units = sp.shape
    if clamped is not None:
        clamped = torch.as_tensor(clamped, dtype=torch.bool, device=sp.device)
        clamped = clamped.expand(*lead, s, n_units).reshape(p, s, n_units)
    if fast is None:
        fast = _is_pm1(mem)
    elif fast and not _is_pm1(mem):
        raise ValueError("fast=True needs memories of +1 and -1 only")
    out_dtype = sp.dtype
    if fast:  # ±1 values and integer overlaps are exact in float32, the tables' type
        mem, sp = mem.float(), sp.float()
        tab_a, tab_b = _field_tables(n_units, power_t, rect_t, sp.device)
        tab_a, tab_b = tab_a.flatten(), tab_b.flatten()
        offset = _table_offsets(n_units, torch.arange(p, device=sp.device)).view(p, 1, 1).expand(p, s, 1)
    n, rect = _cell_power(power_t, rect_t, 2, mem)

    def margins(state):
        h = state @ mem.transpose(1, 2)
        if fast:
            return _fast_margins(mem, state, h, tab_a, tab_b, offset)
        return state * _generic_fields(mem, state, h, n, rect)

    def unstable(state):
        flip = margins(state) < 0
        return flip if clamped is None else flip & ~clamped

    sweeps = 0
    if mode == "sync":
        for _ in range(max_sweeps):
            flip = unstable(sp)
            if not bool(flip.any()):
                break
            sp = torch.where(flip, -sp, sp)
            sweeps += 1
        converged = ~unstable(sp).any(-1)
    elif fast:
        converged, sweeps = _async_flips(mem, sp, offset, clamped, tab_a, tab_b, max_sweeps)
    else:
        h = sp @ mem.transpose(1, 2)
        for _ in range(max_sweeps):
            flipped = torch.zeros(p, s, dtype=torch.bool, device=sp.device)
            for i in range(n_units):
                xi = mem[:, None, :, i]  # (P,1,K)
                sigma = sp[:, :, i:i + 1]  # (P,S,1)
                rest = h - xi * sigma
                d = (energy_fn(rest + xi, n, rect) - energy_fn(rest - xi, n, rect)).sum(-1)
                flip = sigma[..., 0] * d < 0
                if clamped is not None:
                    flip &= ~clamped[:, :, i]
                sp[:, :, i] = torch.where(flip, -sigma[..., 0], sigma[..., 0])
                h += (2 * flip * sp[:, :, i])[..., None] * xi
                flipped |= flip
            if not bool(flipped.any()):
                break
            sweeps += 1
        converged = ~unstable(sp).any(-1)
    return SpinRetrieval(sp.to(out_dtype).reshape(*lead, s, n_units), converged.reshape(*lead, s), sweeps)


# ----------------------------------------------------------------------------------------
# Training (PAPERS.md §3, "Training recipe")
# ----------------------------------------------------------------------------------------


class KrotovOptimizer(torch.optim.Optimizer):
    """The paper's update: ``V ← pV − ∂C/∂ξ``; ``ξ^μ ← ξ^μ + ε V^μ / max_J |V^μ_J|``; clip.

    The step is normalised per memory (each row's largest change is exactly ``lr``), so the
    scale of the loss does not matter. Parameters are clipped to ``[−clip, clip]``.
    """

    def __init__(self, params, lr: float, momentum: float = 0.6, clip: float = 1.0) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be > 0 (got lr={lr!r})")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1) (got momentum={momentum!r})")
        super().__init__(params, {"lr": lr, "momentum": momentum, "clip": clip})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p)
                v = state["velocity"]
                v.mul_(group["momentum"]).sub_(p.grad)
                rows = v if v.dim() > 1 else v[None]
                top = rows.abs().amax(-1, keepdim=True).clamp(min=torch.finfo(v.dtype).tiny)
                p.add_((group["lr"] * rows / top).view_as(p))
                if group["clip"] is not None:
                    p.clamp_(-group["clip"], group["clip"])
        return loss


class ClassificationData(NamedTuple):
    """Tensors for ``train_classifier``: images (B, 784) in [−1, 1], int64 labels (B,)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


OPTIMIZERS = ("krotov", "adam")


@dataclass
class DAMConfig:
    """One DAM classifier run. Defaults: the first author's notebook (n = 20, PAPERS.md §3)."""

    num_memories: int = 100
    """K, number of memories (= hidden units of the dual network); paper 2000, notebook 100."""
    power: float = 20
    """n, power of the energy F; n = 2 is ReLU-like, n = 30 prototype-like."""
    rectified: bool = True
    """Rectified polynomial F (paper's classifier) or the plain power."""
    m: int = 30
    """Loss exponent: loss = Σ_α (c_α − t_α)^(2m); paper: 2–4 for small n, ≈30 for n = 20, 30."""
    temperature_initial: float = 540.0
    """Temperature T at epoch 0 (β = 1/Tⁿ); small n: 250–400, large n: 500–700 (constant)."""
    temperature_final: float = 540.0
    """Temperature after the ramp; small n: 30–100; equal to the initial one for a constant T."""
    ramp_epochs: int = 200
    """Epochs of the linear ramp from the initial to the final temperature, then constant."""
    lr: float = 0.04
    """ε₀; learning rate at epoch e is ε₀·lr_decay^e (paper: 0.01–0.04)."""
    lr_decay: float = 0.998
    """Per-epoch learning-rate factor, in (0, 1]."""
    momentum: float = 0.6
    """p, momentum of the Krotov update (paper: 0.6–0.95); not used by Adam (default betas)."""
    optimizer: str = "krotov"
    """"krotov" (the paper's normalised momentum step) or "adam" (torch.optim.Adam); both clip ξ to [−1, 1]."""
    epochs: int = 300
    """Training epochs (paper: 3000, notebook: 300)."""
    batch_size: int = 1000
    """Minibatch size (paper: 1000)."""
    seed: int = 0
    """Seeds the memory initialisation and the per-epoch shuffles."""
    device: str = "auto"
    """"auto" (CUDA if available, else CPU), "cpu", "cuda", "cuda:N"."""
    init_mean: float = -0.3
    """Mean of the Gaussian memory initialisation (paper: −0.3)."""
    init_std: float = 0.3
    """Standard deviation of the memory initialisation (paper: 0.3)."""
    eval_batch_size: int = 2000
    """Batch size of the per-epoch train/test error passes."""

    def validate(self) -> "DAMConfig":
        """Raise ``ValueError`` naming the field and the allowed values for any bad value."""

        fail = functools.partial(refuse, self)
        is_num = is_number
        for name in ("num_memories", "m", "batch_size", "eval_batch_size"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(name, "an integer >= 1")
        for name in ("epochs", "ramp_epochs"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 0:
                fail(name, "an integer >= 0")
        if not isinstance(self.rectified, bool):
            fail("rectified", "True or False")
        _check_power(self.power, self.rectified)
        for name in ("temperature_initial", "temperature_final", "lr", "init_std"):
            if not is_num(getattr(self, name)) or getattr(self, name) <= 0:
                fail(name, "a finite number > 0")
        if not is_num(self.lr_decay) or not 0 < self.lr_decay <= 1:
            fail("lr_decay", "a number in (0, 1]")
        if not is_num(self.momentum) or not 0 <= self.momentum < 1:
            fail("momentum", "a number in [0, 1)")
        if not is_num(self.init_mean):
            fail("init_mean", "a finite number")
        if self.optimizer not in OPTIMIZERS:
            fail("optimizer", f"one of {OPTIMIZERS}")
        if not is_int(self.seed):
            fail("seed", "an integer")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except (RuntimeError, TypeError):
                fail("device", '"auto" or a torch device string ("cpu", "cuda", "cuda:0")')
        return self

    def temperature_at(self, epoch: int) -> float:
        """Linear ramp over the first ``ramp_epochs`` epochs, then constant."""
        if self.ramp_epochs == 0:
            return float(self.temperature_final)
        frac = min(epoch / self.ramp_epochs, 1.0)
        return self.temperature_initial + (self.temperature_final - self.temperature_initial) * frac

    def lr_at(self, epoch: int) -> float:
        return self.lr * self.lr_decay ** epoch


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f'device must be "auto" or an available device (got device={name!r}, no CUDA here)')
    return device


def _check_data(data) -> ClassificationData:
    try:
        data = ClassificationData(*(data[k] for k in ClassificationData._fields)) if isinstance(data, dict) \
            else ClassificationData(*data)
    except (KeyError, TypeError) as err:
        raise ValueError("data must be ClassificationData(train_x, train_y, test_x, test_y), a 4-tuple "
                         f"or a dict with those keys ({err})") from None
    for x, y, name in ((data.train_x, data.train_y, "train"), (data.test_x, data.test_y, "test")):
        if x.dim() != 2 or y.dim() != 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
            raise ValueError(f"data.{name}_x must be (B, D) and data.{name}_y (B,) with B >= 1 "
                             f"(got {tuple(x.shape)} and {tuple(y.shape)})")
    if data.train_x.shape[1] != data.test_x.shape[1]:
        raise ValueError("data.train_x and data.test_x must have the same width")
    return data


def targets_pm1(labels: torch.Tensor, num_classes: int, dtype=torch.float32) -> torch.Tensor:
    """Targets t_α = +1 for the true class, −1 otherwise."""
    return nn.functional.one_hot(labels, num_classes).to(dtype) * 2 - 1


def dam_loss(outputs: torch.Tensor, targets: torch.Tensor, m: int) -> torch.Tensor:
    """``Σ_batch Σ_α (c_α − t_α)^(2m)`` (PAPERS.md §3)."""
    return (outputs - targets).pow(2 * m).sum()


class DAMTrainer:
    """Model, optimiser, temperature/LR schedules and the epoch loop; resumable exactly.

    Shuffling depends only on (seed, epoch), so ``load_state_dict`` of a checkpoint taken
    after epoch e and training on gives the same memories as an uninterrupted run.
    """

    def __init__(self, cfg: DAMConfig, data) -> None:
        self.cfg = cfg.validate()
        self.device = _resolve_device(cfg.device)
        data = _check_data(data)
        self.train_x, self.test_x = (t.to(self.device, torch.float32) for t in (data.train_x, data.test_x))
        self.train_y, self.test_y = (t.to(self.device, torch.long) for t in (data.train_y, data.test_y))
        self.num_classes = int(max(int(data.train_y.max()), int(data.test_y.max()))) + 1
        gen = torch.Generator().manual_seed(cfg.seed)
        self.model = DenseAssociativeMemory(self.train_x.shape[1], self.num_classes, cfg.num_memories, cfg.power,
                                            cfg.temperature_at(0), cfg.rectified, generator=gen,
                                            init_mean=cfg.init_mean, init_std=cfg.init_std).to(self.device)
        if cfg.optimizer == "krotov":
            self.optimizer = KrotovOptimizer(self.model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        else:
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.epoch = 0  # completed epochs

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "epoch": self.epoch, "config": dataclasses.asdict(self.cfg)}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (load it with ``torch.load(..., weights_only=True)``)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = int(state["epoch"])

    @torch.no_grad()
    def error(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Classification error (arg-max of c) at the current temperature."""
        wrong = 0
        for b0 in range(0, x.shape[0], self.cfg.eval_batch_size):
            out = self.model(x[b0:b0 + self.cfg.eval_batch_size])
            wrong += int((out.argmax(1) != y[b0:b0 + self.cfg.eval_batch_size]).sum())
        return wrong / x.shape[0]

    def train_epoch(self) -> dict:
        cfg, model = self.cfg, self.model
        model.temperature = cfg.temperature_at(self.epoch)
        lr = cfg.lr_at(self.epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        order = torch.randperm(self.train_x.shape[0], generator=torch.Generator().manual_seed(
            cfg.seed * 1_000_003 + self.epoch)).to(self.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        for b0 in range(0, order.numel(), cfg.batch_size):
            idx = order[b0:b0 + cfg.batch_size]
            out = model(self.train_x[idx])
            loss = dam_loss(out, targets_pm1(self.train_y[idx], self.num_classes, out.dtype), cfg.m)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if cfg.optimizer == "adam":
                with torch.no_grad():
                    model.memories.clamp_(-1, 1)
            loss_sum += loss.detach().double()
        loss_value = float(loss_sum) / order.numel()
        if not math.isfinite(loss_value):
            raise FloatingPointError(f"training loss became {loss_value} at epoch {self.epoch + 1} (1-based)")
        return {"loss": loss_value, "temperature": model.temperature, "lr": lr}

    def fit(self, on_epoch: Callable[[dict, "DAMTrainer"], object] | None = None) -> dict:
        """Train from the current epoch to ``cfg.epochs``; returns the last epoch's metrics.

        After each epoch calls ``on_epoch(metrics, trainer)`` with ``epoch`` (1-based),
        ``train_error``, ``test_error`` (full passes after the epoch's updates), ``temperature``
        and ``lr`` (used during the epoch), ``loss`` (mean per image) and ``epoch_seconds``.
        A truthy return value from ``on_epoch`` stops training early.
        """
        metrics: dict = {}
        while self.epoch < self.cfg.epochs:
            start = time.perf_counter()
            metrics = self.train_epoch()
            metrics["train_error"] = self.error(self.train_x, self.train_y)
            metrics["test_error"] = self.error(self.test_x, self.test_y)
            self.epoch += 1
            metrics["epoch"] = self.epoch
            metrics["epoch_seconds"] = time.perf_counter() - start
            if on_epoch is not None and on_epoch(metrics, self):
                break
        return metrics


def train_classifier(cfg: DAMConfig, data, on_epoch: Callable[[dict, DAMTrainer], object] | None = None,
                     state: dict | None = None) -> DAMTrainer:
    """Train a DAM classifier (``DAMTrainer.fit``), optionally resuming from ``state``.

    ``data``: ``ClassificationData`` / 4-tuple / dict of train_x (B, D) in [−1, 1], train_y,
    test_x, test_y. Returns the trainer (``.model``, ``.state_dict()``).
    """
    trainer = DAMTrainer(cfg, data)
    if state is not None:
        trainer.load_state_dict(state)
    trainer.fit(on_epoch)
    return trainer


# ----------------------------------------------------------------------------------------
# Capacity (PAPERS.md §3, "Capacity"): formulas and packed, streamed measurements
# ----------------------------------------------------------------------------------------


def double_factorial(k: int) -> int:
    """k!! (1 for k ≤ 0)."""
    out = 1
    while k > 1:
        out, k = out * k, k - 2
    return out


def perfect_recall_capacity(num_neurons: float, power: int) -> float:
    """``K_max ≈ N^(n−1) / (2 (2n−3)!! ln N)`` — random ±1 memories, perfect recall."""
    return num_neurons ** (power - 1) / (2 * double_factorial(2 * power - 3) * math.log(num_neurons))


def one_step_error_probability(num_neurons: float, num_memories: float, power: int) -> float:
    """``P_err ≈ sqrt((2n−3)!!/(2π) · K/N^(n−1)) · exp(−N^(n−1) / (2K(2n−3)!!))`` — per bit."""
    df = double_factorial(2 * power - 3)
    ratio = num_memories / num_neurons ** (power - 1)
    return math.sqrt(df / (2 * math.pi) * ratio) * math.exp(-1 / (2 * ratio * df))


_BLOCK = 1024  # memories are drawn in fixed blocks so any chunking sees the same memories


@functools.lru_cache(maxsize=64)
def _memory_block(seed: int, block: int, num_neurons: int) -> torch.Tensor:
    # cached: streamed measurements cut the same block at many nearby checkpoints
    gen = torch.Generator().manual_seed((seed * 1_000_003 + block) % (2 ** 63))
    return torch.randint(0, 2, (_BLOCK, num_neurons), generator=gen, dtype=torch.int8)


def random_memories(seed: int, start: int, stop: int, num_neurons: int, device=None) -> torch.Tensor:
    """Rows ``start..stop−1`` of seed ``seed``'s endless stream of random ±1 memories (float32).

    Block j (rows j·1024 … ) comes from its own generator seeded by (seed, j), so the memories
    do not depend on how the stream is cut into chunks or which cells are packed together.
    """
    rows = []
    for block in range(start // _BLOCK, (stop - 1) // _BLOCK + 1 if stop > start else start // _BLOCK):
        bits = _memory_block(seed, block, num_neurons)
        lo, hi = max(start - block * _BLOCK, 0), min(stop - block * _BLOCK, _BLOCK)
        rows.append(bits[lo:hi])
    out = torch.cat(rows) if rows else torch.empty(0, num_neurons, dtype=torch.int8)
    return (out.to(device=device, dtype=torch.float32) * 2 - 1)


def _configs(powers, rectified) -> list[tuple[float, bool]]:
    powers = [powers] if isinstance(powers, (int, float)) else list(powers)
    flags = [rectified] if isinstance(rectified, bool) else list(rectified)
    out = []
    for n in powers:
        for r in flags:
            out.append((_check_power(n, r, "powers"), bool(r)))
    if not out:
        raise ValueError("powers must name at least one power")
    return out


def _check_sizes(num_neurons: int, seeds) -> list[int]:
    if isinstance(num_neurons, bool) or not isinstance(num_neurons, int) or num_neurons < 2:
        raise ValueError(f"num_neurons must be an integer >= 2 (got num_neurons={num_neurons!r})")
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    return seeds


def _stability_stream(num_neurons: int, configs, seeds, num_probes: int, checkpoints: Iterator[int],
                      device) -> Iterator[tuple[int, torch.Tensor]]:
    """Stream memories; at each checkpoint K yield the unstable-bit count of every probe.

    Probe ν < num_probes starts at stored memory ξ^ν; its bits' one-step stability in the
    network of the first K memories is ``σ_i D_i ≥ 0`` (fast path fields accumulate
    chunk by chunk: D of the first K memories is a sum over them). Yields
    ``(K, counts (n_seeds, n_configs, num_probes) int)``; probes ≥ K are not stored yet.
    """
    device = torch.device(device)
    g, q, s = len(seeds), len(configs), num_probes
    power = torch.tensor([c[0] for c in configs], dtype=torch.float64)
    rect = torch.tensor([c[1] for c in configs])
    tab_a, tab_b = _field_tables(num_neurons, power, rect, device)
    tab_a, tab_b = tab_a.flatten(), tab_b.flatten()
    offset = _table_offsets(num_neurons, torch.arange(q, device=device)).view(1, q, 1, 1)
    probes = torch.stack([random_memories(sd, 0, s, num_neurons, device) for sd in seeds])  # (G,S,N)
    d = torch.zeros(g, q, s, num_neurons, device=device)
    b_sum = torch.zeros(g, q, s, 1, device=device)
    chunk = max(64, (1 << 22) // (g * q * s))
    pos = 0
    for k in checkpoints:
        while pos < k:
            stop = min(k, pos + chunk)
            xi = torch.stack([random_memories(sd, pos, stop, num_neurons, device) for sd in seeds])  # (G,k,N)
            h = (probes @ xi.transpose(1, 2))[:, None]  # (G,1,S,k)
            hq = h.expand(g, q, s, h.shape[-1])
            a = _lookup(tab_a, hq, offset)  # (G,Q,S,k)
            b_sum += _lookup(tab_b, hq, offset).sum(-1, keepdim=True)
            d += (a.view(g, q * s, -1) @ xi).view(g, q, s, num_neurons)
            pos = stop
        margins = probes[:, None] * d + b_sum
        yield k, (margins < 0).sum(-1)


def _probe_valid(k: int, num_probes: int, device) -> torch.Tensor:
    return torch.arange(num_probes, device=device) < k


class CapacityCurve(NamedTuple):
    """Packed measurement over configs (power, rectified) × K, pooled over seeds and probes."""

    configs: list
    """[(power, rectified), …] — rows of the tensors below."""
    num_memories: list
    """K values — columns."""
    errors: torch.Tensor
    """(configs, K) count: unstable bits (one_step_error) or imperfectly recalled probes."""
    trials: torch.Tensor
    """(configs, K) count: bits or probes observed."""

    @property
    def rate(self) -> torch.Tensor:
        """errors / trials: per-bit error, or the fraction of memories not recalled perfectly."""
        return self.errors.double() / self.trials.double()

    @property
    def recalled(self) -> torch.Tensor:
        """1 − rate: for ``perfect_recall_fraction``, the fraction recalled perfectly."""
        return 1 - self.rate


def _curve(num_neurons, num_memories, powers, rectified, seeds, num_probes, device, per_bit: bool):
    seeds = _check_sizes(num_neurons, seeds)
    configs = _configs(powers, rectified)
    ks = sorted({int(k) for k in num_memories})
    if not ks or ks[0] < 1:
        raise ValueError(f"num_memories must be integers >= 1 (got num_memories={num_memories!r})")
    if num_probes < 1:
        raise ValueError(f"num_probes must be >= 1 (got num_probes={num_probes!r})")
    errors = torch.zeros(len(configs), len(ks), dtype=torch.long)
    trials = torch.zeros_like(errors)
    for col, (k, counts) in enumerate(_stability_stream(num_neurons, configs, seeds, num_probes, iter(ks), device)):
        valid = _probe_valid(k, num_probes, counts.device)
        if per_bit:
            errors[:, col] = (counts * valid).sum((0, 2)).cpu()
            trials[:, col] = int(valid.sum()) * num_neurons * len(seeds)
        else:
            errors[:, col] = ((counts > 0) & valid).sum((0, 2)).cpu()
            trials[:, col] = int(valid.sum()) * len(seeds)
    return CapacityCurve(configs, ks, errors, trials)


def one_step_error(num_neurons: int, num_memories: Sequence[int], powers, rectified=False, seeds=range(4),
                   num_probes: int = 100, device="cpu") -> CapacityCurve:
    """Per-bit one-step error vs K for random ±1 memories (PAPERS.md §3, P_err).

    For every (power, rectified) config, seed and K: start at each of the first
    ``min(num_probes, K)`` stored memories, count the bits one update would flip. All configs
    and seeds are packed into one pass; larger K reuses the smaller K's memories (a nested
    stream). Compare ``.rate`` with ``one_step_error_probability``.
    """
    return _curve(num_neurons, num_memories, powers, rectified, seeds, num_probes, device, per_bit=True)


def perfect_recall_fraction(num_neurons: int, num_memories: Sequence[int], powers, rectified=False,
                            seeds=range(4), num_probes: int = 100, device="cpu") -> CapacityCurve:
    """Fraction of stored memories recalled perfectly vs K (``1 − .rate``; ``.errors`` = failures).

    "Start at a memory and update to a fixed point": asynchronous updates only ever lower the
    energy, so the state returns to the memory only if it never left it — a memory is recalled
    perfectly exactly when no bit is unstable there (tests/test_dam.py checks this against the
    full dynamics).
    """
    return _curve(num_neurons, num_memories, powers, rectified, seeds, num_probes, device, per_bit=False)


def half_recall_capacity(num_neurons: int, powers, rectified=False, seeds=range(4), num_probes: int = 100,
                         growth: float = 1.03, max_memories: int | None = None, device="cpu") -> dict:
    """K at which half of the stored memories are recalled perfectly, per (power, rectified).

    Streams memories along geometric checkpoints K_{j+1} = max(K_j + 1, ⌊growth·K_j⌋) until
    the recalled fraction (pooled over seeds and probes) drops below one half for every
    config (or K reaches ``max_memories``), then interpolates the crossing in log K. Returns
    ``{(power, rectified): K_half}`` (``nan`` if never crossed).
    """
    seeds = _check_sizes(num_neurons, seeds)
    configs = _configs(powers, rectified)
    if not growth > 1:
        raise ValueError(f"growth must be > 1 (got growth={growth!r})")
    if max_memories is None:
        max_memories = int(4 * max(perfect_recall_capacity(num_neurons, int(math.ceil(c[0]))) for c in configs)) + 100
    crossed = [None] * len(configs)
    previous = [(0, 1.0)] * len(configs)

    def checkpoints():
        k = 1
        while k <= max_memories and any(c is None for c in crossed):
            yield k
            k = max(k + 1, int(k * growth))

    for k, counts in _stability_stream(num_neurons, configs, seeds, num_probes, checkpoints(), device):
        valid = _probe_valid(k, num_probes, counts.device)
        frac = (((counts == 0) & valid).sum((0, 2)).double() / (int(valid.sum()) * len(seeds))).cpu()
        for i in range(len(configs)):
            if crossed[i] is None:
                if float(frac[i]) < 0.5:
                    k0, f0 = previous[i]
                    if k0 == 0:
                        crossed[i] = float(k)
                    else:
                        t = (f0 - 0.5) / (f0 - float(frac[i]))
                        crossed[i] = math.exp(math.log(k0) + t * (math.log(k) - math.log(k0)))
                previous[i] = (k, float(frac[i]))
    return {cfg: (math.nan if c is None else c) for cfg, c in zip(configs, crossed)}


class RandomStartResult(NamedTuple):
    configs: list
    """[(power, rectified), …]."""
    stored: torch.Tensor
    """(configs,) fraction of starts that end exactly in a stored memory."""
    negated: torch.Tensor
    """(configs,) fraction ending in the negative of a stored memory."""
    converged: torch.Tensor
    """(configs,) fraction that reached a fixed point within ``max_sweeps``."""


def random_start_recall(num_neurons: int, num_memories: int, powers, rectified=False, seeds=range(1),
                        num_starts: int = 1000, max_sweeps: int = 100, start_batch: int = 2000,
                        device="cpu") -> RandomStartResult:
    """The many-random-starts experiment (PAPERS.md §3: N = 100, K = 2000, 10,000 starts).

    Random ±1 states evolve by asynchronous updates to a fixed point; reported: the fraction
    ending in a stored memory (the rest are spurious states). Configs × seeds are packed; each
    seed's memories are shared by its configs.
    """
    seeds = _check_sizes(num_neurons, seeds)
    configs = _configs(powers, rectified)
    device = torch.device(device)
    q = len(configs)
    power = torch.tensor([c[0] for c in configs], dtype=torch.float64)
    rect = torch.tensor([c[1] for c in configs])
    tab_a, tab_b = _field_tables(num_neurons, power, rect, device)
    tab_a, tab_b = tab_a.flatten(), tab_b.flatten()
    stored = torch.zeros(q, dtype=torch.long)
    negated = torch.zeros_like(stored)
    converged = torch.zeros_like(stored)
    per_batch = max(1, start_batch // q)
    for sd in seeds:  # one memory set at a time: finished starts then drop out of the batch
        mem = random_memories(sd, 0, num_memories, num_neurons, device)[None]  # (1,K,N)
        for s0 in range(0, num_starts, per_batch):
            s = min(per_batch, num_starts - s0)
            # start states from their own stream (the offset keeps them apart from the memories)
            gen = torch.Generator().manual_seed((sd * 1_000_003 + 999_983 + s0) % (2 ** 63))
            start = torch.randint(0, 2, (s, num_neurons), generator=gen).float() * 2 - 1
            sp = start.to(device).repeat(q, 1)[None]  # (1, Q·S, N): every config from the same starts
            offset = _table_offsets(num_neurons, torch.arange(q, device=device).repeat_interleave(s))
            conv, _ = _async_flips(mem, sp, offset.view(1, -1, 1), None, tab_a, tab_b, max_sweeps)
            overlap = (sp[0] @ mem[0].T).view(q, s, num_memories)
            stored += (overlap.amax(-1) == num_neurons).sum(1).cpu()
            negated += (overlap.amin(-1) == -num_neurons).sum(1).cpu()
            converged += conv.view(q, s).sum(1).cpu()
    total = num_starts * len(seeds)
    return RandomStartResult(configs, stored.double() / total, negated.double() / total, converged.double() / total)


# ----------------------------------------------------------------------------------------
# Adversarial inputs (Krotov's slides, PAPERS.md §3)
# ----------------------------------------------------------------------------------------


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
    image. ``model`` maps (B, D) → (B, C) outputs (a DAM or any classifier, e.g. its dual).
    """
    if mode not in ("sign", "scaled"):
        raise ValueError(f'mode must be "sign" or "scaled" (got mode={mode!r})')
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
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
        grad, = torch.autograd.grad(dam_loss(model(v), t, m), v)
        with torch.no_grad():
            if mode == "sign":
                step = grad.sign()
            else:
                step = grad / grad.abs().amax(1, keepdim=True).clamp(min=torch.finfo(grad.dtype).tiny)
            v = (v - step_size * step * active[:, None]).clamp(*clip)
            taken += active
            fooled = model(v).argmax(1) != labels
    return AttackResult(v.detach(), fooled, taken, target)
