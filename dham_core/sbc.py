"""Sparse block codes (SBC) in offset form (thesis §2.1.2; docs/resonator.md, eqs. 1-3).

A maximally sparse binary vector of dimension ``D = k·L`` has ``k`` segments of length ``L``
with exactly one 1 per segment. We store it as its *offset vector*: an ``int64`` tensor of
shape ``(..., k)`` with entries in ``[0, L)``. Every function here is batched over the
leading dimensions, runs on whatever device its inputs live on, and takes an explicit
``torch.Generator`` for every random choice.

Operations (thesis eqs. 2.2-2.5; docs/resonator.md, "Sparse block codes"):

- bind     ``a ⊗ b``: ``(a' + b') mod L``          (commutative, associative)
- unbind   ``e ⊘ b``: ``(e' − b') mod L``          (not commutative)
- bundle   ``a ⊕ b ⊕ …``: integer sum of the dense vectors, then *thinning*: per segment keep
  the arg-max, ties broken uniformly at random.
- weighted bundle ``Σ_m w_m a_m`` then thinning.
- overlap  ``⟨x, a_m⟩`` = number of segments where the offsets agree (the inner product of the
  dense 0/1 vectors), for every codeword of a codebook.

The dense 0/1 accumulator of a bundle is laid out as ``(..., k, L)`` (segment-major, the
same order as :func:`to_dense`), so ``acc.flatten(-2)`` is the D-dimensional integer vector
of the thesis.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dham_core.checks import is_int

__all__ = [
    "bind",
    "block_length",
    "bundle",
    "bundle_accumulator",
    "from_dense",
    "multibind",
    "overlap",
    "overlap_lookup",
    "overlap_table",
    "random_codebook",
    "thin",
    "to_dense",
    "unbind",
    "weighted_bundle",
]


def block_length(D: int, k: int) -> int:
    """Segment length ``L = D / k``; raises ValueError unless ``k`` divides ``D``."""
    if not is_int(D) or D < 1:
        raise ValueError(f"D must be a positive integer (got D={D!r})")
    if not is_int(k) or k < 1:
        raise ValueError(f"k must be a positive integer (got k={k!r})")
    if D % k != 0:
        raise ValueError(f"k must divide D (got D={D}, k={k})")
    return int(D) // int(k)


def random_codebook(
    M: int,
    k: int,
    L: int,
    *,
    generator: torch.Generator,
    batch_shape: tuple[int, ...] = (),
    device: torch.device | str | None = None,
) -> Tensor:
    """``M`` i.i.d. uniformly random maximally sparse codewords: int64 ``(*batch_shape, M, k)``.

    ``device`` defaults to the generator's device.
    """
    if M < 1:
        raise ValueError(f"M must be >= 1 (got M={M})")
    if k < 1 or L < 1:
        raise ValueError(f"k and L must be >= 1 (got k={k}, L={L})")
    device = generator.device if device is None else device
    return torch.randint(0, L, (*batch_shape, M, k), generator=generator, device=device)


def bind(a: Tensor, b: Tensor, L: int) -> Tensor:
    """``a ⊗ b``: segment-wise cyclic shift, ``(a' + b') mod L`` (thesis eq. 2.3;
    docs/resonator.md, eq. 1). Broadcasts."""
    return torch.remainder(a + b, L)


def unbind(e: Tensor, b: Tensor, L: int) -> Tensor:
    """``e ⊘ b = (e' − b') mod L`` (thesis eq. 2.4; docs/resonator.md, eq. 2), the inverse of
    binding by ``b``: ``unbind(bind(a, b), b) == a``."""
    return torch.remainder(e - b, L)


def multibind(vectors: Tensor, L: int, dim: int = -2) -> Tensor:
    """Bind all vectors along ``dim`` (default: the stacked axis of ``(..., n, k)``)."""
    return torch.remainder(vectors.sum(dim=dim), L)


def thin(acc: Tensor, *, generator: torch.Generator) -> Tensor:
    """Thinning: per segment, the offset of the maximum of ``acc`` ``(..., k, L)`` -> ``(..., k)``
    (docs/resonator.md, eq. 3).

    Ties are broken uniformly at random: with ``c`` tied maxima in a segment we draw
    ``u ~ U[0,1)`` and keep the ``floor(u·c)``-th tied position (in position order). This costs
    one random number per *segment* (not per element) and the result is a deterministic
    function of ``acc`` and the generator state — any two callers that build the same
    accumulator and share a generator state get the same offsets (the offset and matmul
    bundling paths of the resonator rely on that).
    """
    if acc.dim() < 2:
        raise ValueError(f"acc must have shape (..., k, L) (got shape {tuple(acc.shape)})")
    top = acc.amax(dim=-1, keepdim=True)
    ties = acc == top
    tie8 = ties.view(torch.uint8)  # bool reductions upcast to int64 (slow); uint8 -> int32 is not
    count = tie8.sum(dim=-1, dtype=torch.int32)  # (..., k), >= 1
    u = torch.rand(count.shape, generator=generator, device=acc.device, dtype=torch.float32)
    rank = torch.minimum((u * count).to(torch.int32), count - 1)
    if acc.device.type != "cpu":
        return _rank_position(tie8, rank).long()
    # CPU: a segment with a unique maximum is resolved by a dot product with 0..L-1; only the
    # (usually few) segments with ties pay for the running count.
    L = acc.shape[-1]
    pos = (tie8.reshape(-1, L).to(torch.float32) @ torch.arange(L, dtype=torch.float32)).long()
    multi = (count.reshape(-1) > 1).nonzero().squeeze(1)
    if multi.numel():
        pos[multi] = _rank_position(tie8.reshape(-1, L)[multi], rank.reshape(-1)[multi]).long()
    return pos.view(count.shape)


def _rank_position(tie8: Tensor, rank: Tensor) -> Tensor:
    """Position of the ``(rank+1)``-th tie along the last axis: the number of positions whose
    running tie count is ``<= rank``."""
    running = tie8.cumsum(dim=-1, dtype=torch.int32)
    before = (running <= rank.unsqueeze(-1)).view(torch.uint8)
    return before.sum(dim=-1, dtype=torch.int32)


def bundle_accumulator(
    vectors: Tensor, L: int, weights: Tensor | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """Dense (un-thinned) bundle ``Σ_m w_m a_m`` of ``vectors`` ``(..., n, k)`` as ``(..., k, L)``.

    Built with ``scatter_add`` from the offsets: O(n·k) additions plus zeroing the
    ``(..., k, L)`` output. ``weights`` is ``(..., n)`` (broadcast against the leading dims);
    without weights every vector counts 1 (int32 counts).
    """
    *lead, n, k = vectors.shape
    if weights is None:
        dtype = torch.int32 if dtype is None else dtype
        src = torch.ones((), dtype=dtype, device=vectors.device).expand(*lead, k, n)
    else:
        dtype = weights.dtype if dtype is None else dtype
        src = weights.to(dtype).unsqueeze(-2).expand(*lead, k, n)
    acc = torch.zeros(*lead, k, L, dtype=dtype, device=vectors.device)
    return acc.scatter_add_(-1, vectors.transpose(-1, -2), src)


def bundle(vectors: Tensor, L: int, *, generator: torch.Generator) -> Tensor:
    """``a_1 ⊕ … ⊕ a_n`` of ``vectors`` ``(..., n, k)``: integer sum then :func:`thin` -> ``(..., k)``."""
    return thin(bundle_accumulator(vectors, L), generator=generator)


def weighted_bundle(
    vectors: Tensor, weights: Tensor, L: int, *, generator: torch.Generator
) -> Tensor:
    """``Σ_m w_m a_m`` then :func:`thin` (thesis eq. 3.5); ``vectors (..., n, k)``, ``weights (..., n)``."""
    if weights.shape[-1] != vectors.shape[-2]:
        raise ValueError(
            f"weights must have one entry per vector (got weights {tuple(weights.shape)}, "
            f"vectors {tuple(vectors.shape)})"
        )
    return thin(bundle_accumulator(vectors, L, weights), generator=generator)


def overlap(x: Tensor, codebook: Tensor) -> Tensor:
    """Overlaps (dense inner products) of ``x`` ``(..., k)`` with every codeword of
    ``codebook`` ``(..., M, k)`` by comparison of offsets: ``(..., M)`` int64, O(M·k).
    """
    return (x.unsqueeze(-2) == codebook).sum(dim=-1)


def overlap_table(codebook: Tensor, L: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Lookup table for :func:`overlap_lookup`: the codebook ``(..., M, k)`` as dense 0/1
    columns, ``(..., D, M)`` (row ``j·L + l`` lists the codewords whose segment ``j`` is ``l``)."""
    return to_dense(codebook, L, dtype=dtype).transpose(-1, -2).contiguous()


def overlap_lookup(x: Tensor, table: Tensor, L: int, row_offset: Tensor | None = None) -> Tensor:
    """Overlaps of ``x`` ``(B, k)`` with a codebook given as its :func:`overlap_table` ``(R, M)``.

    ``overlap[b, m] = Σ_j table[j·L + x[b, j], m]``: a gather of k rows per problem, summed
    (``embedding_bag``). Same O(M·k) work as comparing offsets, but vectorised ~50x better
    on CPU. ``row_offset`` ``(B,)`` shifts each problem's rows, to address one of several
    stacked tables (``R = G·D``). Returns float ``(B, M)`` holding exact integers.
    """
    k = x.shape[-1]
    rows = x + torch.arange(k, device=x.device) * L
    if row_offset is not None:
        rows = rows + row_offset.unsqueeze(-1)
    return F.embedding_bag(rows, table, mode="sum")


def to_dense(x: Tensor, L: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Offsets ``(..., k)`` -> dense 0/1 vector ``(..., k·L)`` (segment ``j`` = entries ``[j·L, (j+1)·L)``)."""
    if x.numel() and (int(x.min()) < 0 or int(x.max()) >= L):
        raise ValueError(f"offsets must lie in [0, L) = [0, {L}) (got [{int(x.min())}, {int(x.max())}])")
    out = torch.zeros(*x.shape, L, dtype=dtype, device=x.device)
    out.scatter_(-1, x.unsqueeze(-1), 1)
    return out.flatten(-2)


def from_dense(v: Tensor, k: int) -> Tensor:
    """Dense maximally sparse 0/1 vector ``(..., D)`` -> offsets ``(..., k)``.

    Raises ValueError unless every segment holds exactly one 1 and zeros elsewhere
    (use :func:`thin` on ``v.unflatten(-1, (k, L))`` to sparsify a general vector).
    """
    L = block_length(v.shape[-1], k)
    seg = v.unflatten(-1, (k, L))
    is_binary = ((seg == 0) | (seg == 1)).all()
    if not bool(is_binary) or not bool((seg.sum(dim=-1) == 1).all()):
        raise ValueError("v must be maximally sparse: exactly one 1 per segment, 0 elsewhere")
    return seg.argmax(dim=-1)
