"""Platform self-check: trials that do no real work (measures per-trial overhead; drives the
runner's tests and the fault-injection tests).

    python sweeps/noop.py --preset smoke            # 2 x 3 grid of a smooth score
    python sweeps/noop.py --search tpe --num-samples 20
"""
from optuna.distributions import CategoricalDistribution, FloatDistribution

from sweeps.runner import Preset, Sweep, main
from trainables.noop import train_noop, validate

SWEEP = Sweep(
    name="noop",
    table="trials",
    description="No-op trials: the platform's own overhead.",
    trainable=train_noop,
    space={"x": FloatDistribution(-2.0, 2.0), "y": CategoricalDistribution([0.0, 0.5, 1.0])},
    grid={"x": [0.0, 1.0], "y": [0.0, 0.5, 1.0]},
    presets={"smoke": Preset({"epochs": 3, "checkpoint": True}, num_samples=10),
             "slow": Preset({"epochs": 3, "checkpoint": True, "seconds_per_epoch": 1.0},
                            num_samples=6, description="1 s epochs, for the fault tests"),
             "bench": Preset({"epochs": 1, "checkpoint": False},
                             grid={"x": [i / 50 for i in range(100)], "y": [0.0]})},
    metric="score", mode="max", validate=validate,
    log_checkpoint=True,  # exercises the checkpoint-as-artifact path (tiny: {"epoch": n})
)

if __name__ == "__main__":
    main(SWEEP)
