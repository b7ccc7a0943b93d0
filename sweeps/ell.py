"""DecisiveNets Table 1: accuracy and multiplications vs the group size ell (same in every layer).

    python sweeps/ell.py --preset smoke
    python sweeps/ell.py --preset paper --seeds 5 --gpus-per-trial 0.5
    python sweeps/ell.py --preset paper-tuned --seeds 5 --gpus-per-trial 0.5   # best temperatures per ell
"""
from optuna.distributions import CategoricalDistribution

from dham_core.published import ELLS
from sweeps.dham_presets import for_val_size, presets
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
    presets=presets(smoke_grid={"ell": [1, 2, 4, 8]}, tuned=("ell", list(ELLS), [2, 8])),
    metric="val_acc", mode="max", validate=validate,
    log_checkpoint=True,  # trained models in MLflow, for the evaluations (robustness, wins, ...)
)
SWEEP.for_argv = for_val_size(SWEEP)

if __name__ == "__main__":
    main(SWEEP)
