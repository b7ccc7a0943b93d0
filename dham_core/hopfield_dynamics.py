"""Auto-associative retrieval of the dense associative memory on ±1 spins.

``E(σ) = −Σ_μ F(ξ^μ · σ)``; the asynchronous rule sets ``σ_i ← sign(D_i)`` with
``D_i = E(σ_i = −1) − E(σ_i = +1)`` given the other spins (Krotov & Hopfield 2016;
docs/krotov_hopfield.md, "Energy and update rule"). Everything is batched over memory sets
("cells") and start states; for ±1 memories a look-up-table fast path replaces the K×N
tensor of powers.

* ``spin_energy``, ``spin_fields``, ``retrieve`` (asynchronous and synchronous updates);
* ``field_tables``, ``table_offsets``, ``lookup``, ``async_flips`` — the fast path, also used
  by the streamed capacity measurements (``dham_core.hopfield_capacity``).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from dham_core.checks import is_int
from dham_core.hopfield_model import chunk_rows, energy_fn


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
    chunk = chunk_rows(s, p * k * n_units, sp.device)
    for s0 in range(0, s, chunk):
        xi = mem[:, None]  # (P,1,K,N)
        rest = h[:, s0:s0 + chunk, :, None] - xi * sp[:, s0:s0 + chunk, None, :]
        out[:, s0:s0 + chunk] = (energy_fn(rest + xi, n[..., None], rect[..., None])
                                 - energy_fn(rest - xi, n[..., None], rect[..., None])).sum(2)
    return out


def spin_fields(memories: torch.Tensor, spins: torch.Tensor, power, rectified=False) -> torch.Tensor:
    """Energy gap per spin, ``D_i = E(σ_i = −1) − E(σ_i = +1)`` given the others (…, S, N).

    The asynchronous rule sets ``σ_i ← sign(D_i)``; a spin is unstable when
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


def field_tables(num_units: int, power: torch.Tensor, rectified: torch.Tensor, device):
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


def table_offsets(num_units: int, cell: torch.Tensor) -> torch.Tensor:
    """Float offset that turns an overlap h into its flat table index: h + N + cell·(2N+1)."""
    return (cell * (2 * num_units + 1) + num_units).to(torch.float32)


def lookup(table: torch.Tensor, h: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    # float add + int32 cast + index_select: ~10× faster on CPU than int64 advanced indexing
    idx = (h + offset).to(torch.int32)
    return table.index_select(0, idx.flatten()).view(idx.shape)


def _fast_margins(mem, sp, h, tab_a, tab_b, offset):
    """``σ_i D_i`` for mem (G, K, N), sp (G, R, N), h (G, R, K), offset (G, R, 1)."""
    a = lookup(tab_a, h, offset)
    b = lookup(tab_b, h, offset).sum(-1, keepdim=True)
    return sp * (a @ mem) + b


def _is_pm1(x: torch.Tensor) -> bool:
    return bool(((x == 1) | (x == -1)).all())


def async_flips(mem, sp, offset, clamped, tab_a, tab_b, max_sweeps):
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
    """Run the dense associative memory dynamics from ±1 start states to a fixed point (or ``max_sweeps``).

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
    if not is_int(max_sweeps) or max_sweeps < 1:
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
        tab_a, tab_b = field_tables(n_units, power_t, rect_t, sp.device)
        tab_a, tab_b = tab_a.flatten(), tab_b.flatten()
        offset = table_offsets(n_units, torch.arange(p, device=sp.device)).view(p, 1, 1).expand(p, s, 1)
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
        converged, sweeps = async_flips(mem, sp, offset, clamped, tab_a, tab_b, max_sweeps)
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
