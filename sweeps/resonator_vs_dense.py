"""Sparse vs dense resonator (thesis Fig 3.7): iterations and wall time vs problem size at
D = 512, k = 64.

    python sweeps/resonator_vs_dense.py --preset smoke
    python sweeps/resonator_vs_dense.py --preset paper --gpus-per-trial 1
"""
from optuna.distributions import CategoricalDistribution

from dham_core.published import RESONATOR_M_V3
from dham_core.resonator_pack import pack_size
from sweeps.runner import Preset, Sweep, main
from trainables.resonator import train_resonator_pack, validate

M_V3 = list(RESONATOR_M_V3)  # M^V = 1e2 .. 1e9 at V = 3 (thesis Fig 3.7's x-axis)

FIXED = {"D": 512, "k": 64, "V": 3, "a": 5}

SWEEP = Sweep(
    name="resonator_vs_dense",
    table="resonator.vs_dense",
    description="Sparse vs dense resonator at D = 512, k = 64.",
    trainable=train_resonator_pack,
    space={"kind": CategoricalDistribution(["sparse", "dense"])},
    grid={"kind": ["sparse", "dense"]},
    presets={
        "smoke": Preset({**FIXED, "M": [5, 10, 22], "num_problems": 64},
                        description="M^V up to 1e4: a minute on 2 cores"),
        "cpu": Preset({**FIXED, "a": 4, "noise": 0.25, "M": M_V3[:5], "max_it": 20000,
                       "num_problems": 128},
                      description="M^V up to 1e6, max_it 20000: ~10 minutes on 2 cores"),
        "paper": Preset({**FIXED, "M": M_V3, "num_problems": 256},
                        description="Fig 3.7, M^V up to 1e9: GPU"),
    },
    metric=["accuracy", "iters_mean"], mode=["max", "min"], max_t_key=None,
    validate=validate, pack=pack_size,
)

if __name__ == "__main__":
    main(SWEEP)
