"""DecisiveNets Table 1: accuracy and multiplications vs the group size ell (same in every layer).

    python sweeps/ell.py --preset smoke
    python sweeps/ell.py --preset paper --seeds 5 --gpus-per-trial 0.5
"""
from optuna.distributions import CategoricalDistribution

from dham_core.published import ELLS
from sweeps.dham_presets import presets
from sweeps.runner import Sweep, main
from trainables.dham import train_dham, validate

SWEEP = Sweep(
    name="ell",
    table="decisivenets.table1",
    description="DHAM group-size sweep (ell = 1 is the plain ReLU network).",
    trainable=train_dham,
    space={"ell": CategoricalDistribution(list(ELLS))},
    grid={"ell": list(ELLS)},
    # The smoke network's first stage has 8 channels, so ell stops at 8 there.
    presets=presets(smoke_grid={"ell": [1, 2, 4, 8]}),
    metric="val_acc", mode="max", validate=validate,
)

if __name__ == "__main__":
    main(SWEEP)
