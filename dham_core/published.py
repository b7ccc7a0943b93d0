"""Every published number the platform puts beside its own results, and the papers' grids.

Sources and readings: docs/decisivenets.md, docs/resonator.md, docs/krotov_hopfield.md,
docs/gripon_berrou.md. Torch-free: sweeps, analysis and tests all read it.

One place: analysis tables, tests and notes read these, nobody re-types them.
Accuracies are in percent, as printed in the papers.
"""
from __future__ import annotations

ELLS = (1, 2, 4, 8, 16, 32, 64)

# DecisiveNets Table 1 - accuracy and multiplications vs ell.
DECISIVENETS_TABLE1 = [
    {"ell": ell, "r18_c10_acc": a18, "r18_mults": m18, "r50_c100_acc": a50, "r50_mults": m50}
    for ell, a18, m18, a50, m50 in [
        (1, 95.21, 5_070_848, 78.50, 1_297_809_408),
        (2, 95.25, 3_125_248, 79.23, 861_601_792),
        (4, 94.65, 2_152_448, 76.58, 643_497_984),
        (8, 92.95, 1_666_048, 70.46, 534_446_080),
        (16, 88.95, 1_422_848, 64.36, 479_920_128),
        (32, 84.90, 1_301_248, 61.07, 452_657_152),
        (64, 78.28, 1_240_448, 53.05, 439_025_664),
    ]
]

# DecisiveNets Table 2 - accuracy vs c (groups per layer).
DECISIVENETS_TABLE2 = [
    {"groups": c, "r18_c10_acc": a18, "r50_c100_acc": a50}
    for c, a18, a50 in [
        (1, 59.73, 13.39), (2, 70.69, 26.34), (4, 81.04, 41.84), (8, 87.38, 55.27),
        (16, 91.09, 62.01), (32, 94.00, 65.89), (64, 94.91, 71.87),
    ]
]

# DecisiveNets Table 3 - accuracy vs temperatures.
DECISIVENETS_TABLE3 = [
    {"ell": ell, "t_init": ti, "t_final": tf, "r18_c10_acc": a18, "r50_c100_acc": a50}
    for ell, ti, tf, a18, a50 in [
        (2, 0.1, 100, 94.56, 74.19), (2, 1, 100, 95.01, 78.17), (2, 10, 100, 95.24, 79.30),
        (2, 0.1, 1000, 94.81, 77.93), (2, 1, 1000, 95.25, 78.81), (2, 10, 1000, 95.25, 79.23),
        (2, 0.1, 10000, 95.07, 78.28), (2, 1, 10000, 95.11, 78.89), (2, 10, 10000, 95.13, 78.88),
        (4, 0.1, 100, 90.35, 53.00), (4, 1, 100, 93.65, 66.27), (4, 10, 100, 94.65, 76.80),
        (4, 0.1, 1000, 94.02, 74.61), (4, 1, 1000, 94.72, 76.56), (4, 10, 1000, 94.65, 76.58),
        (4, 0.1, 10000, 94.49, 76.16), (4, 1, 10000, 94.74, 76.73), (4, 10, 10000, 94.73, 76.89),
    ]
]

# DecisiveNets Table 1 multiplication laws (docs/decisivenets.md, 'The multiplication counter'): mults = A + B / ell.
R50_C100_MULTS_LAW = (425_394_176, 872_415_232)
R18_C10_MULTS_LAW = (1_179_648, 3_891_200)

# --- Krotov & Hopfield 2016, dense associative memory (docs/krotov_hopfield.md) ----------------
# MNIST test error (%) per power n: n = 2 "in the 1.6% range", n = 3 every run below 1.6%; the
# slides' per-n errors (n = 2, 3, 20, 30) were not recoverable. Text, not numbers, where the
# paper gives a range or a bound.
KROTOV_MNIST_ERROR = {2: "≈1.6", 3: "<1.6"}
# Epochs until the test error first falls below 2% (ranges over runs).
KROTOV_EPOCHS_TO_2PCT = {2: (179, 312), 3: (158, 262)}
# Feature -> prototype at n = 30: > 40% of memories vote for a single class; for > 8,000 of
# 10,000 test images no other memory contributes more than 0.9 of the largest contribution.
KROTOV_N30_SINGLE_CLASS_MIN = 0.40
KROTOV_N30_SINGLE_CONTRIBUTOR_MIN = 0.80
KROTOV_NUMPY_REPRO_ERROR = 2.48  # public NumPy reproduction, K = 100, n = 20 (%)
# Perfect-recall capacity at N = 100 (formula N^(n-1) / (2 (2n-3)!! ln N)), as the paper prints.
KROTOV_CAPACITY_N100 = {2: 11, 3: 360, 4: 7240}
# N = 100, K = 2000 random starts: n = 2, 3 end in spurious states; from n = 5 on every start
# converges to a stored memory.
KROTOV_RANDOM_STARTS = {2: "spurious", 3: "spurious", 5: "all recalled"}
# Slides: adversarial images generated against row n, classified by column n (error rate, %).
KROTOV_ADVERSARIAL = {(2, 2): 100.0, (2, 8): 32.0, (8, 2): 57.0, (8, 8): 100.0}

# --- Gripon & Berrou 2011, clique networks (docs/gripon_berrou.md) ----------------------------
# The classic setting: c = 8 clusters of l = 256 neurons, c_e = 4 erased, up to ~30,000 messages,
# 4 iterations; density d = 1 - (1 - 1/l^2)^M, one-iteration error
# P_e = 1 - (1 - d^(c - c_e))^(c_e (l - 1)) (dham_core.formulas holds both).
GRIPON_CLASSIC = {"clusters": 8, "neurons_per_cluster": 256, "erased": 4, "iterations": 4}
# XOR with N = 3 units and the 4 truth-table rows as memories (K = 4 > N): no n = 1 or 2 model
# (plain energy: the classical Hopfield net) solves it; rectified polynomials with n >= 2 and
# odd plain powers n >= 3 do.
KROTOV_XOR = {"plain": "solved for odd n >= 3 only", "rectified": "solved for n >= 2"}

# --- Sparse resonator networks (thesis ch. 3; docs/resonator.md) -----------------------------
# Codewords per factor M so that the problem size M^V steps through 1e2 .. 1e9, the x-axis of
# the capacity figures (Figs 3.4-3.7): V = 3 and V = 2.
RESONATOR_M_V3 = (5, 10, 22, 46, 100, 215, 464, 1000)
RESONATOR_M_V2 = (10, 32, 100, 316, 1000, 3162, 10000, 31623)
