"""Random factorisation problems for the resonator networks (docs/resonator.md, eq. 4).

A problem is ``x = a_{i_1} ⊗ … ⊗ a_{i_V}``: one codeword per factor, each from that factor's own
codebook of ``M`` random codewords, bound together. Codebooks are drawn first, then the indices
uniform in ``[0, M)^V``, from one generator, so a seed fixes the problems. One codebook set is
shared by the batch (the thesis: one set per batch of 256 problems) unless
``shared_codebooks=False`` gives every problem its own set (``group`` picks it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dham_core import sbc
from dham_core.checks import is_int
from dham_core.resonator_dense import random_bipolar

__all__ = ["FactorizationProblems", "check_problem_sizes", "dense_problems", "sparse_problems"]


@dataclass
class FactorizationProblems:
    """A batch of problems ``x = a_{i_1} ⊗ … ⊗ a_{i_V}``."""

    codebooks: Tensor  # (G, V, M, k) int64 offsets (sparse) or (G, V, M, D) float32 ±1 (dense)
    group: Tensor  # (B,) int64: codebook set of each problem
    indices: Tensor  # (B, V) int64: the true factor indices
    x: Tensor  # (B, k) offsets (sparse) or (B, D) ±1 (dense)
    D: int  # vector dimension
    k: int | None = None  # segments (sparse only)


def check_problem_sizes(V, M, num_problems) -> None:
    """Refuse ``V < 2``, ``M < 2``, ``num_problems < 1`` or non-integers, naming the field."""
    if not is_int(V) or V < 2:
        raise ValueError(f"V must be an integer >= 2 (got V={V!r})")
    if not is_int(M) or M < 2:
        raise ValueError(f"M must be an integer >= 2 (got M={M!r})")
    if not is_int(num_problems) or num_problems < 1:
        raise ValueError(f"num_problems must be an integer >= 1 (got num_problems={num_problems!r})")


def _bound_factors(cb: Tensor, M: int, num_problems: int, shared_codebooks: bool,
                   generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Draw the indices and pick each problem's codewords: (group, indices, factors (B, V, ·))."""
    V, dev = cb.shape[1], cb.device
    idx = torch.randint(0, M, (num_problems, V), generator=generator, device=dev)
    group = (torch.zeros(num_problems, dtype=torch.long, device=dev) if shared_codebooks
             else torch.arange(num_problems, device=dev))
    return group, idx, cb[group.unsqueeze(1), torch.arange(V, device=dev), idx]


def sparse_problems(
    D: int, k: int, V: int, M: int, num_problems: int, *,
    generator: torch.Generator, shared_codebooks: bool = True,
) -> FactorizationProblems:
    """Random sparse problems: offset codebooks ``(G, V, M, k)``, ``x`` bound by eq. 1."""
    L = sbc.block_length(D, k)
    check_problem_sizes(V, M, num_problems)
    G = 1 if shared_codebooks else num_problems
    cb = sbc.random_codebook(M, k, L, generator=generator, batch_shape=(G, V))
    group, idx, factors = _bound_factors(cb, M, num_problems, shared_codebooks, generator)
    return FactorizationProblems(cb, group, idx, sbc.multibind(factors, L), D, k)


def dense_problems(
    D: int, V: int, M: int, num_problems: int, *,
    generator: torch.Generator, shared_codebooks: bool = True,
) -> FactorizationProblems:
    """Random bipolar problems (eq. 11), same draw order as :func:`sparse_problems`."""
    if not is_int(D) or D < 1:
        raise ValueError(f"D must be a positive integer (got D={D!r})")
    check_problem_sizes(V, M, num_problems)
    G = 1 if shared_codebooks else num_problems
    cb = random_bipolar((G, V, M, D), generator=generator)
    group, idx, factors = _bound_factors(cb, M, num_problems, shared_codebooks, generator)
    return FactorizationProblems(cb, group, idx, factors.prod(dim=1), D, None)
