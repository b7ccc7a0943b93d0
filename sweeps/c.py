"""DecisiveNets Table 2: accuracy vs c, the number of groups per layer (ell = channels / c).

    python sweeps/c.py --preset smoke
    python sweeps/c.py --preset paper --seeds 5 --gpus-per-trial 0.5
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script too

from optuna.distributions import CategoricalDistribution  # noqa: E402

from analysis.published import ELLS  # noqa: E402
from sweeps.dham_presets import presets  # noqa: E402
from sweeps.runner import Sweep, main  # noqa: E402
from trainables.dham import train_dham, validate  # noqa: E402

SWEEP = Sweep(
    name="c",
    table="decisivenets.table2",
    description="DHAM groups-per-layer sweep.",
    trainable=train_dham,
    space={"groups": CategoricalDistribution(list(ELLS))},
    grid={"groups": list(ELLS)},
    # The smoke network's first stage has 8 channels, so c stops at 8 there.
    presets=presets(smoke_grid={"groups": [1, 2, 4, 8]}, smoke_config={"ell": 1}),
    metric="val_acc", mode="max", validate=validate,
)

if __name__ == "__main__":
    main(SWEEP)
