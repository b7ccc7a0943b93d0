"""Sparse resonator capacity (thesis Figs 3.4-3.6): accuracy and iterations vs problem size M^V.

    python sweeps/resonator_capacity.py --preset smoke      # minutes on a CPU
    python sweeps/resonator_capacity.py --preset fig3.4     # k grid at D = 1024, M^V 1e2..1e9 (GPU)
    python sweeps/resonator_capacity.py --preset claims     # the thesis's D = 1280 statements
    python sweeps/resonator_capacity.py --preset fig3.2     # attention traces (Figs 3.2-3.3)
    python sweeps/resonator_capacity.py --preset pareto --search tpe --num-samples 40 \\
        --set M=100                                          # (k, a) Pareto front at one size

A trial is a pack: the list-valued ``M`` (and ``a``, ``seed``) of the preset are evaluated
inside one trial, vectorised where shapes agree (``trainables.resonator``). ``--search tpe`` is
a multi-objective Optuna search maximising accuracy and minimising mean iterations over
(``k``, ``a``, ``noise``) at the preset's D, V and M (``pareto``; ``--search grid`` with that preset
gives the grid to warm-start it from). ``--set KEY=VALUE`` pins a key (it leaves the grid).
"""
from optuna.distributions import (
    CategoricalDistribution, FloatDistribution, IntDistribution)

from dham_core.published import RESONATOR_M_V2, RESONATOR_M_V3
from dham_core.resonator_pack import A_EQUALS_M
from sweeps.runner import Preset, Sweep, main
from trainables.resonator import TRACE_KEY, train_resonator_pack, trial_pack_size, validate

# M per factor so that M^V spans 1e2 .. 1e9 (V = 3 and V = 2): the thesis's x-axis.
M_V3, M_V2 = list(RESONATOR_M_V3), list(RESONATOR_M_V2)
A_GRID = [1, 2, 3, 5, 8, 13, 21]
# The sweep's space crosses k with D (k must divide D) and a with small M, so a TPE search needs
# a preset with its own space (pareto); the others are grid-only. Cells with a > M are dropped
# from a pack (dham_core.resonator_pack.expand_pack; docs/resonator.md, "Readings we chose").
# a = "M" is Fig 3.6's "no sparsification" line: each cell keeps all M codewords.
GRID = ("grid",)

SWEEP = Sweep(
    name="resonator_capacity",
    table="resonator.capacity",
    description="Sparse resonator accuracy/iterations vs problem size.",
    trainable=train_resonator_pack,
    space={"D": CategoricalDistribution([512, 1024, 1280, 2048]),
           "k": CategoricalDistribution([16, 32, 40, 64, 128, 256]),
           "V": CategoricalDistribution([2, 3]),
           "a": IntDistribution(1, 64),
           # scale of the attention noise r ~ U[0, noise) (thesis: 1); it trades iterations
           # against accuracy as strongly as a does (docs/resonator.md, "Readings we chose")
           "noise": FloatDistribution(0.1, 1.5)},
    grid={"D": [1024], "k": [16, 32, 64, 128], "V": [3]},
    presets={
        "smoke": Preset({"V": 3, "M": [5, 10, 22, 46], "a": 5, "num_problems": 64},
                        grid={"D": [1024, 2048], "k": [32, 64]}, searches=GRID,
                        description="M^V up to 1e5, 64 problems per cell: minutes on 2 cores"),
        "cpu": Preset({"V": 3, "M": M_V3[:6], "a": [3, 5, 8], "num_problems": 256},
                      grid={"D": [1024, 2048], "k": [32, 64, 128]}, searches=GRID,
                      description="M^V up to 1e7 at the thesis's max_it: about an hour on 2 cores"),
        "fig3.4": Preset({"V": 3, "M": M_V3, "a": [3, 5, 8], "num_problems": 256},
                         grid={"D": [1024], "k": [16, 32, 64, 128]}, searches=GRID,
                         description="Fig 3.4, k grid at D = 1024 up to M^V = 1e9: GPU"),
        "fig3.5": Preset({"V": 3, "M": M_V3, "a": [3, 5, 8], "num_problems": 256},
                         grid={"D": [2048], "k": [32, 64, 128, 256]}, searches=GRID,
                         description="Fig 3.5, k grid at D = 2048 up to M^V = 1e9: GPU"),
        "fig3.6": Preset({"V": 3, "M": M_V3, "num_problems": 256, "k": 64},
                         grid={"D": [1024], "a": A_GRID + [A_EQUALS_M]}, searches=GRID,
                         space={"a": CategoricalDistribution(A_GRID + [A_EQUALS_M])},
                         description="Fig 3.6, a grid at D = 1024, k = 64, and a = M (no "
                                     "sparsification): GPU"),
        "fig3.2": Preset({"D": 1280, "k": 40, "a": 5, "V": 3, "M": 10, "num_problems": 256,
                          "max_it": 300, TRACE_KEY: True}, grid={}, searches=GRID,
                         description="Figs 3.2-3.3: attention traces of one decoded and one "
                                     "undecoded problem (V = 3, M = 10): seconds"),
        "v2": Preset({"M": M_V2, "a": [3, 5, 8], "num_problems": 256},
                     grid={"D": [1024, 2048], "k": [32, 64], "V": [2]}, searches=GRID,
                     description="V = 2, M^V up to 1e9: GPU"),
        "claims": Preset({"D": 1280, "M": [10, 32], "a": [4, 6, 8, 10], "num_problems": 512,
                          "patience": 2},
                         grid={"V": [2, 3], "k": [40, 64]}, searches=GRID,
                         description="D = 1280: V=2/M=32 and V=3/M=10 at k = 40 and 64"),
        "1e6": Preset({"V": 3, "M": [100], "k": 64, "a": [4, 8], "noise": 0.5,
                       "max_it": 20000, "num_problems": 256},
                      grid={"D": [1024, 2048]}, searches=GRID,
                      description="M^V = 1e6 with max_it 20000, noise 0.5: ~10 min on 2 cores"),
        "scaling": Preset({"D": 1024, "V": 3, "M": [10, 22], "num_problems": 128},
                          grid={"k": [32, 64], "a": [3, 5]}, searches=GRID,
                          description="fixed workload of sweeps/scaling.py"),
        "pareto": Preset({"D": 1024, "V": 3, "M": 46, "num_problems": 128},
                         grid={"k": [16, 32, 64, 128], "a": [2, 5, 8]},
                         space={"k": CategoricalDistribution([16, 32, 64, 128]),
                                "a": IntDistribution(1, 32),
                                "noise": FloatDistribution(0.1, 1.5)}, num_samples=30,
                         description="TPE over (k, a, noise) at one D, V, M"),
    },
    metric=["accuracy", "iters_mean"], mode=["max", "min"], max_t_key=None,
    validate=validate, pack=trial_pack_size,
)

if __name__ == "__main__":
    main(SWEEP)
