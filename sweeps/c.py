"""DecisiveNets Table 2: accuracy vs c, the number of groups per layer (ell = channels / c).

    python sweeps/c.py --preset smoke
    python sweeps/c.py --preset paper --seeds 5 --gpus-per-trial 0.5
    python sweeps/c.py --preset paper-tuned --seeds 5 --gpus-per-trial 0.5   # best temperatures per c
"""
from optuna.distributions import CategoricalDistribution

from dham_core.published import ELLS
from sweeps.dham_presets import for_val_size, presets
from sweeps.runner import Sweep, main
from trainables.dham import train_dham, validate

SWEEP = Sweep(
    name="c",
    table="decisivenets.table2",
    description="DHAM groups-per-layer sweep.",
    trainable=train_dham,
    space={"groups": CategoricalDistribution(list(ELLS))},
    grid={"groups": list(ELLS)},
    # The smoke network's first stage has 8 channels, so c stops at 8 there; groups replaces
    # the shared presets' ell (the network takes one or the other).
    presets=presets(smoke_grid={"groups": [1, 2, 4, 8]}, without=("ell",),
                    tuned=("groups", list(ELLS), [2, 8])),
    metric="val_acc", mode="max", validate=validate,
    log_checkpoint=True,  # trained models in MLflow, for the evaluations (robustness, wins, ...)
)
SWEEP.for_argv = for_val_size(SWEEP)

if __name__ == "__main__":
    main(SWEEP)
