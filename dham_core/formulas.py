"""Closed-form predictions the experiments are compared with. Torch-free (``math`` only), so
the analysis layer can draw them without importing torch.

Krotov & Hopfield 2016 (docs/krotov_hopfield.md, "Capacity"); Gripon & Berrou 2011
(docs/gripon_berrou.md, "Density and error").
"""
from __future__ import annotations

import math
from typing import Callable


def double_factorial(k: int) -> int:
    """k!! (1 for k ≤ 0)."""
    out = 1
    while k > 1:
        out, k = out * k, k - 2
    return out


def perfect_recall_capacity(num_neurons: float, power: int) -> float:
    """``K_max ≈ N^(n−1) / (2 (2n−3)!! ln N)``: random ±1 memories recalled without error
    (Krotov & Hopfield 2016, capacity of the polynomial energy)."""
    return num_neurons ** (power - 1) / (2 * double_factorial(2 * power - 3) * math.log(num_neurons))


def one_step_error_probability(num_neurons: float, num_memories: float, power: int) -> float:
    """``P_err ≈ sqrt((2n−3)!!/(2π) · K/N^(n−1)) · exp(−N^(n−1) / (2K(2n−3)!!))``: the chance
    that one update flips a bit of a stored memory (Krotov & Hopfield 2016, per bit)."""
    df = double_factorial(2 * power - 3)
    ratio = num_memories / num_neurons ** (power - 1)
    return math.sqrt(df / (2 * math.pi) * ratio) * math.exp(-1 / (2 * ratio * df))


def solve_increasing(f: Callable[[float], float], target: float,
                     low: float = 1e-3, high: float = 1e12) -> float:
    """x in [low, high] with ``f(x) = target`` for an increasing ``f``: bisection in log x
    (200 halvings of the log-interval: exact to float precision)."""
    for _ in range(200):
        mid = math.sqrt(low * high)
        low, high = (mid, high) if f(mid) < target else (low, mid)
    return math.sqrt(low * high)


def memories_for_error(num_neurons: float, power: int, p_err: float) -> float:
    """K at which :func:`one_step_error_probability` equals ``p_err`` (it grows with K)."""
    return solve_increasing(lambda k: one_step_error_probability(num_neurons, k, power), p_err)


def ln2_memories(num_neurons: float, power: int) -> float:
    """K where ``N · P_err(K) = ln 2``: half of the memories keep every bit if bits fail
    independently (our reading of the paper's P_err for a half-recall line, not a published
    formula)."""
    return memories_for_error(num_neurons, power, math.log(2) / num_neurons)


def clique_density(num_messages: float, neurons_per_cluster: int) -> float:
    """Expected edge density after M random messages: ``d = 1 − (1 − 1/ℓ²)^M``
    (Gripon & Berrou 2011)."""
    return -math.expm1(num_messages * math.log1p(-1 / neurons_per_cluster ** 2))


def clique_one_iteration_error(num_messages: float, clusters: int, neurons_per_cluster: int,
                               erased: int) -> float:
    """One-iteration retrieval error with ``c_e`` erased clusters (independent-edge
    approximation, Gripon & Berrou 2011): ``P_e = 1 − (1 − d^(c − c_e))^(c_e (ℓ − 1))``."""
    d = clique_density(num_messages, neurons_per_cluster)
    if d ** (clusters - erased) == 1.0:  # every link present (d rounds to 1): a rival always ties
        return 1.0 if erased else 0.0
    return -math.expm1(math.log1p(-d ** (clusters - erased)) * (erased * (neurons_per_cluster - 1)))
