"""DecisiveNets Table 3: accuracy vs the temperature schedule (t_init, t_final) for ell = 2, 4.

    python sweeps/temperature.py --preset smoke            # every cell once, local Ray
    python sweeps/temperature.py --preset paper --seeds 5 --gpus-per-trial 0.5
    python sweeps/temperature.py --search tpe --warm-start --num-samples 30
"""
from optuna.distributions import CategoricalDistribution, FloatDistribution

from sweeps.dham_presets import T_FINALS, T_INITS, for_val_size, presets
from sweeps.runner import Sweep, main
from trainables.dham import train_dham, validate

SWEEP = Sweep(
    name="temperature",
    table="decisivenets.table3",
    description="DHAM temperature-schedule sweep.",
    trainable=train_dham,
    space={"ell": CategoricalDistribution([2, 4]),
           "t_init": FloatDistribution(0.01, 10.0, log=True),
           "t_final": FloatDistribution(100.0, 100_000.0, log=True)},
    grid={"ell": [2, 4], "t_init": T_INITS, "t_final": T_FINALS},
    presets=presets(),
    metric="val_acc", mode="max", validate=validate,
    log_checkpoint=True,  # trained models in MLflow, for the evaluations (robustness, wins, ...)
)
SWEEP.for_argv = for_val_size(SWEEP)

if __name__ == "__main__":
    main(SWEEP)
