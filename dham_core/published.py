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

# --- DecisiveNets Table 4: few-shot transfer on CIFAR-FS (docs/decisivenets.md, "Table 4") -----
# CIFAR-100's 100 fine class names in label order (torchvision's ``CIFAR100.classes``, the
# meta file's ``fine_label_names``: alphabetical).
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone",
    "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
)
# CIFAR-FS (Bertinetto, Henriques, Torr & Vedaldi 2019): CIFAR-100's classes split 64/16/20.
CIFAR_FS_TRAIN = (
    "apple", "aquarium_fish", "bear", "bee", "bottle", "bowl", "boy", "bridge", "bus",
    "can", "castle", "caterpillar", "chair", "clock", "cloud", "cockroach", "couch", "cup",
    "dinosaur", "dolphin", "elephant", "forest", "girl", "hamster", "house", "kangaroo",
    "keyboard", "lawn_mower", "lion", "lizard", "lobster", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "palm_tree", "pear", "pine_tree", "plate", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "seal", "shrew", "skunk", "skyscraper",
    "snake", "spider", "squirrel", "streetcar", "sunflower", "tank", "tiger", "train", "trout",
    "tulip", "turtle", "willow_tree", "wolf",
)
CIFAR_FS_VAL = (
    "beaver", "beetle", "butterfly", "camel", "cattle", "crab", "crocodile", "flatfish", "lamp",
    "maple_tree", "motorcycle", "otter", "sea", "shark", "television", "tractor",
)
CIFAR_FS_TEST = (
    "baby", "bed", "bicycle", "chimpanzee", "fox", "leopard", "man", "pickup_truck", "plain",
    "poppy", "rocket", "rose", "snail", "sweet_pepper", "table", "telephone", "wardrobe", "whale",
    "woman", "worm",
)
# 5-way 5-shot, nearest class mean on frozen backbone features, 595 queries per class, mean
# accuracy (%) over 10,000 episodes and its 95% confidence half-width.
DECISIVENETS_TABLE4 = [
    {"ell": ell, "r18_acc": a18, "r18_ci95": c18, "r50_acc": a50, "r50_ci95": c50}
    for ell, a18, c18, a50, c50 in [
        (1, 82.74, 0.13, 83.94, 0.14), (2, 83.78, 0.14, 85.44, 0.13),
        (4, 84.21, 0.13, 84.83, 0.13), (8, 81.87, 0.14, 82.43, 0.14),
        (16, 78.63, 0.15, 77.93, 0.15), (32, 72.09, 0.16, 76.40, 0.15),
        (64, 63.69, 0.17, 70.15, 0.16),
    ]
]

# --- DecisiveNets Figs 2-4: proportion of wins (docs/decisivenets.md, "Proportion of wins") ---
# ResNet-50 on CIFAR-100; the figures are bar plots without printed numbers, so what is
# published is each figure's setting and what the text reads from it. Layers are 1-based;
# classes are label indices (the paper's "classes 1 and 2" = the first two labels).
DECISIVENETS_WINS_FIGURES = {
    "fig2": {"ell": 2, "layers": (1,), "groups": 12, "classes": (0, 1)},
    "fig3": {"ell": 8, "layers": (1,), "groups": 4, "classes": None},
    "fig4": {"ell": 2, "layers": (1, 21, 48), "maps": 12, "classes": (0, 1)},
}
DECISIVENETS_WINS_FINDINGS = (
    "strong imbalance between the maps of a group; the two classes' proportions are almost the "
    "same in layer 1, a bit different in layer 21 and very different in layer 48 (the last)")

# --- DecisiveNets Table 5: robustness of ResNet-18 / CIFAR-10 (docs/decisivenets.md, "Table 5") --
# Clean accuracy and accuracy under CIFAR-10-C noise, each noise averaged over its 5 severities.
DECISIVENETS_TABLE5 = [
    {"ell": ell, "r18_c10_clean": clean, "r18_c10_gaussian": gauss, "r18_c10_shot": shot,
     "r18_c10_impulse": impulse}
    for ell, clean, gauss, shot, impulse in [
        (1, 95.21, 46.40, 59.50, 51.75), (2, 95.25, 47.59, 60.21, 53.45),
        (4, 94.65, 49.98, 61.99, 52.33), (8, 92.95, 46.34, 58.07, 53.54),
        (16, 88.95, 50.51, 60.26, 48.95), (32, 84.90, 56.56, 64.34, 54.78),
        (64, 78.28, 48.72, 55.60, 40.03),
    ]
]

# --- Resonator classifier head, thesis ch. 4 (docs/resonator.md, "The classifier head") -------
# MobileNet-V2 on ImageNet-1k, D = 1280; accuracies (%) by resonator decoding, overlap (nearest
# class target) and segment-wise; None = not given ("—", Table 4.5's overlap-trained model), and
# Table 4.5's "< 5%" resonator accuracy is kept as the bound 5.0 with "<" in RESONATOR_HEAD_BOUNDS.
# "fixed" = the settings every row of a table shares (V = 3, M = 10 unless a row says otherwise).
_HEAD_BASE = {"factors": 3, "pooling": "weighted", "loss": "cosine", "training": "segment"}
RESONATOR_HEAD_TABLES = {
    "4.1": {"title": "loss function (k = 80, average pooling, 100 epochs)", "key": ("loss",),
            "fixed": {**_HEAD_BASE, "k": 80, "pooling": "average", "epochs": 100},
            "rows": [("cross_entropy", 63.2, 63.9, 64.5), ("cosine", 66.5, 66.7, 68.1)]},
    "4.2": {"title": "pooling (k = 80, cosine loss, 100 epochs)", "key": ("pooling",),
            "fixed": {**_HEAD_BASE, "k": 80, "epochs": 100},
            "rows": [("average", 66.5, 66.7, 68.1), ("weighted", 66.8, 67.1, 68.4)]},
    "4.3": {"title": "segments k (weighted pooling, cosine loss, 200 epochs)", "key": ("k",),
            "fixed": {**_HEAD_BASE, "epochs": 200},
            "rows": [(40, 60.6, 69.7, 70.1), (64, 68.3, 69.1, 70.1), (80, 68.2, 68.6, 70.1),
                     (128, 67.4, 67.5, 70.3), (160, 66.4, 66.8, 70.4)]},
    "4.4": {"title": "epochs (k = 64, weighted pooling, cosine loss)", "key": ("epochs",),
            "fixed": {**_HEAD_BASE, "k": 64},
            "rows": [(200, 68.3, 69.1, 70.1), (400, 68.8, 70.1, 71.1)]},
    "4.5": {"title": "segment-wise vs overlap training (k = 64, cosine loss, 200 epochs)",
            "key": ("training",), "fixed": {**_HEAD_BASE, "k": 64, "epochs": 200},
            "rows": [("segment", 68.3, 69.1, 70.1), ("overlap", 5.0, 70.4, None)]},
    "4.6": {"title": "factors V = 3 (M = 10) vs V = 2 (M = 32) (200 epochs)", "key": ("factors", "k"),
            "fixed": {**_HEAD_BASE, "epochs": 200},
            "rows": [((3, 40), 60.6, 69.7, 70.1), ((3, 64), 68.3, 69.1, 70.1),
                     ((2, 40), 69.1, 69.5, 69.8), ((2, 64), 69.0, 69.2, 70.1)]},
}
RESONATOR_HEAD_BOUNDS = {("4.5", "overlap", "resonator"): "<"}
# Baselines (thesis §4.4): MobileNet-V2 with its FC layer, and the identity classifier (cosine
# loss, 100 epochs); parameters of the FC layer and of the best head (V = 2, k = 40, §4.4.7).
RESONATOR_HEAD_BASELINES = {"fc": 72.0, "identity": 70.8}
RESONATOR_HEAD_PARAMS = {"fc": 1_280_000, "best_head": 2_609, "reduction_percent": 99.79}
