"""The Krotov–Hopfield dense associative memory as a classifier, and its dual network.

Energy ``E = −Σ_μ F(ξ^μ · σ)`` with the rectified polynomial ``F(x) = max(x, 0)^n`` or the
plain power ``F(x) = x^n``; n = 2 is the classical Hopfield network (Krotov & Hopfield 2016;
docs/krotov_hopfield.md, "Model" and "Energy and update rule").

* ``energy_fn`` — F with per-cell powers and flags;
* ``DenseAssociativeMemory`` — the one-step MNIST classifier (B×K×C, no loop over classes;
  docs/krotov_hopfield.md, "Classifier and training recipe"), with a hand-written kernel
  (``_PairedPowerSum``) that never stores the B×K×C tensor;
* ``DualNetwork`` — the one-hidden-layer network (activation F′) built from its memories;
* ``targets_pm1``, ``hopfield_loss`` — the ±1 targets and the loss Σ (c − t)^(2m).
"""
from __future__ import annotations


import torch
from torch import nn

from dham_core.checks import is_int, is_number


def energy_fn(x: torch.Tensor, power, rectified) -> torch.Tensor:
    """``F(x)`` with ``power`` and ``rectified`` scalars or tensors broadcastable against ``x``."""
    if isinstance(rectified, torch.Tensor):
        x = torch.where(rectified, x.clamp(min=0), x)
    elif rectified:
        x = x.clamp(min=0)
    return x.pow(power)


def check_power(power, rectified: bool, name: str = "power") -> float:
    """The power n of F as an int when integral; refuses n < 1 and a fractional plain power."""
    if not is_number(power) or power < 1:
        raise ValueError(f"{name} must be a number >= 1 (got {name}={power!r})")
    if not rectified and power != int(power):
        raise ValueError(f"{name} must be an integer for the plain power energy (rectified=False) "
                         f"(got {name}={power!r})")
    return int(power) if power == int(power) else float(power)


# ----------------------------------------------------------------------------------------
# The classifier: one update of the classification neurons
# (docs/krotov_hopfield.md, "Classifier and training recipe")
# ----------------------------------------------------------------------------------------

# F(x) is evaluated in a scaled form. F is homogeneous of degree n, so β F(x) = F(x / T) with
# β = 1/T^n: the arguments are divided by T before the power. When even that could overflow
# float32 (|x/T|^n · K beyond ~1e26), the rows concerned are further divided by their largest
# argument M_b and the sum is multiplied back by M_b^n in the log domain (exact up to tanh
# saturation).
_LOG_SAFE = 60.0  # rows whose largest |F| could exceed e^60 are rescaled
_LOG_SATURATE = 30.0  # tanh(±e^30) is ±1 in every float format


def _arguments(u: torch.Tensor, a_t: torch.Tensor, r: torch.Tensor | None, rows: slice,
               rectified: bool, buffer: torch.Tensor) -> torch.Tensor:
    """The (rows, C, K) arguments of F for a block of rows: (u + a)·r, clamped at 0 when
    rectified, written into the front of ``buffer`` (one block's size, reused by every block).
    Forward and backward both rebuild them block by block rather than keep the B×C×K tensor
    alive between the passes."""
    block = u[rows]
    x = torch.add(block[:, None, :], a_t[None], out=buffer[:block.shape[0]])
    if r is not None:
        x.mul_(r[rows, :, None])
    if rectified:
        x.clamp_(min=0)
    return x


CPU_CHUNK_PER_THREAD = 1 << 18
"""Elements of a CPU block per torch thread: 1 MiB of float32, what one core's cache holds."""
CPU_CHUNK_MAX = 1 << 23


def chunk_rows(rows: int, per_row: int, device: torch.device) -> int:
    """Rows per block: about 2^26 elements on CUDA; on CPU ``CPU_CHUNK_PER_THREAD`` elements
    *per torch thread* (at most ``CPU_CHUNK_MAX``).

    Every elementwise op and reduction on a block is one parallel region split across the
    threads. A block of a fixed 2^18 elements gave each of T threads only 1/T of a cache-sized
    piece, so with more threads the kernel paid the regions' fork/join and barrier costs T
    times as often per element while ``matmul`` (the MLP) kept its threads busy: at 2 threads
    the DAM step was 1.75x the MLP's against 1.07x at 1 thread (benchmarks/hopfield.py).
    Sized per thread, each thread works on one cache-sized piece per region at any count."""
    if device.type == "cuda":
        target = 1 << 26
    else:
        target = min(CPU_CHUNK_MAX, CPU_CHUNK_PER_THREAD * torch.get_num_threads())
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
    makes a DAM step cost about as much as the dual MLP step (benchmarks/hopfield.py).
    """

    @staticmethod
    def forward(ctx, u, a_t, r, n, rectified):  # u (B,K), a_t (C,K), r (B,1) or None
        rows, k = u.shape
        c = a_t.shape[0]
        chunk = chunk_rows(rows, c * k, u.device)
        out = u.new_empty(rows, c)
        buffer = u.new_empty(chunk, c, k)
        for b0 in range(0, rows, chunk):
            x = _arguments(u, a_t, r, slice(b0, b0 + chunk), rectified, buffer)
            torch.sum(_pow_inplace(x, n), 2, out=out[b0:b0 + chunk])
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
        chunk = chunk_rows(rows, c * k, u.device)
        g = grad * n if r is None else grad * (n * r)  # chain rule through r·x and F = x^n
        grad_u = torch.empty_like(u)
        grad_a = torch.zeros_like(a_t)
        buffer = u.new_empty(chunk, c, k)
        for b0 in range(0, rows, chunk):
            x = _arguments(u, a_t, r, slice(b0, b0 + chunk), rectified, buffer)
            x = _f_prime_inplace(x, n, rectified).mul_(g[b0:b0 + chunk, :, None])
            torch.sum(x, 1, out=grad_u[b0:b0 + chunk])
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
    neuron at −1 and makes one update (docs/krotov_hopfield.md, "Classifier and training recipe"):

        c_α = tanh(β Σ_μ [F(s_μ + 2ξ^μ_α) − F(s_μ)]),  s_μ = Σ_i ξ^μ_i v_i − Σ_γ ξ^μ_γ,  β = 1/Tⁿ

    returning ``c`` (B, num_classes) in (−1, 1); prediction = arg-max.
    """

    def __init__(self, num_visible: int, num_classes: int, num_memories: int, power: float,
                 temperature: float, rectified: bool = True, *, generator: torch.Generator | None = None,
                 init_mean: float = -0.3, init_std: float = 0.3, device=None, dtype=None) -> None:
        super().__init__()
        for name, value in (("num_visible", num_visible), ("num_classes", num_classes),
                            ("num_memories", num_memories)):
            if not is_int(value) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1 (got {name}={value!r})")
        self.num_visible, self.num_classes, self.num_memories = num_visible, num_classes, num_memories
        self.rectified = bool(rectified)
        self.power = check_power(power, self.rectified)
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
        if not is_number(value) or value <= 0:
            raise ValueError(f"temperature must be a finite number > 0 (got temperature={value!r})")
        self._temperature.fill_(float(value))

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
    """One hidden layer (docs/krotov_hopfield.md, "Readings we chose"): ``c = tanh(β W₂ F′(W₁ v + b₁))``.

    Built from a DAM by ``DenseAssociativeMemory.dual_network()``: ``W₁`` = the visible part of
    the memories, ``b₁ = −Σ_γ ξ_γ`` (so the hidden pre-activations are the DAM's s_μ) and
    ``W₂ = 2ξ_αᵀ``. It is the first-order term of ``F(s + 2ξ_α) − F(s) = 2ξ_α F′(s) + O(ξ_α²
    F″(s))``, the paper's large-N limit where the label units' contribution is small beside the
    pixels'; the two agree to that order (tests/test_hopfield.py). Plain ``nn.Linear`` layers, so it
    also serves as the same-size MLP baseline.
    """

    def __init__(self, num_visible: int, num_classes: int, num_hidden: int, power: float,
                 temperature: float, rectified: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.power, self.temperature, self.rectified = check_power(power, rectified), float(temperature), rectified
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


def targets_pm1(labels: torch.Tensor, num_classes: int, dtype=torch.float32) -> torch.Tensor:
    """Targets t_α = +1 for the true class, −1 otherwise."""
    return nn.functional.one_hot(labels, num_classes).to(dtype) * 2 - 1


def hopfield_loss(outputs: torch.Tensor, targets: torch.Tensor, m: int) -> torch.Tensor:
    """``Σ_batch Σ_α (c_α − t_α)^(2m)`` (Krotov & Hopfield 2016; docs/krotov_hopfield.md,
    "Classifier and training recipe")."""
    return (outputs - targets).pow(2 * m).sum()
