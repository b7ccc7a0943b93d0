"""Krotov & Hopfield 2016: MNIST test error vs the power n of the dense associative memory
(docs/krotov_hopfield.md, "Classifier and training recipe").

Grid over n ∈ {2, 3, 4, 6, 8, 12, 20, 30}, each with its m and temperature schedule from the
paper (dham_core.hopfield_train.POWER_DEFAULTS; n = 4 … 12 are not published and are ours):

    python sweeps/hopfield_power.py --preset smoke                      # K = 100, 25 epochs
    python sweeps/hopfield_power.py --preset cpu --seeds 3 --max-concurrent 2
    python sweeps/hopfield_power.py --preset paper --seeds 5 --gpus-per-trial 0.25   # GPU preset:
        # full MNIST (torchvision download), K = 2000, 3000 epochs, batch 1000

One power only: ``--set power=3`` (a ``--set`` key pins its grid axis). The paper's
hyper-parameter window search, one n at a time (TPE over T, m, lr, momentum on a held-out
validation split, ASHA stopping poor trials early):

    python sweeps/hopfield_power.py --search tpe --set power=3 --preset cpu --num-samples 30

Each finished trial's last checkpoint (its memories) is logged to MLflow (``checkpoint/``).
"""
import argparse
import sys

from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from dham_core.checks import is_number
from dham_core.hopfield_train import POWER_DEFAULTS, search_window
from sweeps.runner import Preset, Sweep, main, parse_value
from trainables.hopfield import train_hopfield_classifier, validate_classifier

POWERS = [2, 3, 4, 6, 8, 12, 20, 30]

PRESETS = {
    "smoke": Preset({"dataset": "mnist_offline", "num_memories": 100, "epochs": 25, "ramp_epochs": 10,
                     "batch_size": 100, "device": "cpu"}, num_samples=6,
                    description="offline digits, K = 100, 25 epochs: under a minute on 2 cores"),
    "cpu": Preset({"dataset": "mnist_offline", "num_memories": 1000, "epochs": 600, "ramp_epochs": 100,
                   "batch_size": 100, "device": "cpu"}, num_samples=30, seconds_per_trial=320,
                  measured_on="2-core CPU, --max-concurrent 2",
                  description="5,000 offline digits (4,000 train / 1,000 test), K = 1000, 600 epochs, batch "
                              "100: the 8-power grid took 21 min per seed on 2 cores (measured, "
                              "--max-concurrent 2; --seeds 3: ~1 h)"),
    "paper": Preset({"dataset": "mnist", "download": True, "num_memories": 2000, "epochs": 3000,
                     "ramp_epochs": 200, "batch_size": 1000, "device": "auto"}, num_samples=30,
                    description="GPU preset: the paper's recipe on full MNIST (60k/10k, torchvision "
                                "download), K = 2000, 3000 epochs, batch 1000"),
}

SPACE = {
    "power": CategoricalDistribution(POWERS),
    "t_const": FloatDistribution(20.0, 1000.0, log=True),
    "t_init": FloatDistribution(20.0, 1000.0, log=True),
    "t_final": FloatDistribution(10.0, 1000.0, log=True),
    "m": IntDistribution(1, 60),
    "lr": FloatDistribution(0.001, 0.1, log=True),
    "momentum": FloatDistribution(0.0, 0.99),
}
"""Every axis the grid or a per-n TPE search uses (the grid varies only the power)."""

SWEEP = Sweep(
    name="hopfield_power",
    table="krotov.mnist_power",
    description="Dense associative memory classifier: test error vs the power n.",
    trainable=train_hopfield_classifier,
    space=SPACE,
    grid={"power": POWERS},
    presets=PRESETS,
    metric="eval_error", mode="min", validate=validate_classifier,
    log_checkpoint=True,  # the final memories, drawn as 28×28 images by analysis.hopfield.report_power
    tpe_pins={"power": 3}, for_argv=lambda argv: sweep_for(argv),
)


def tpe_sweep(power: float) -> Sweep:
    """The sweep of the paper's window search for one n: TPE over its window
    (:func:`dham_core.hopfield_train.search_window`), on the validation split, power fixed."""
    space = {}
    for key, (low, high, kind) in search_window(power).items():
        space[key] = IntDistribution(low, high) if kind == "int" else FloatDistribution(low, high, log=kind == "log")
    presets = {name: Preset({**p.config, "power": power, "eval_split": "val"}, num_samples=p.num_samples,
                            description=p.description + "; validation split") for name, p in PRESETS.items()}
    return Sweep(name=SWEEP.name, table=SWEEP.table, description=SWEEP.description,
                 trainable=SWEEP.trainable, space=space, grid={}, presets=presets, metric=SWEEP.metric,
                 mode=SWEEP.mode, validate=SWEEP.validate, log_checkpoint=True)


def sweep_for(argv: list[str]) -> Sweep:
    """``--search tpe`` needs one power (``--set power=N``): it searches that n's window."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--search", default="grid")
    p.add_argument("--set", action="append", default=[])
    known, _ = p.parse_known_args(argv)
    if known.search != "tpe":
        return SWEEP
    powers = [parse_value(item.split("=", 1)[1]) for item in known.set if item.startswith("power=")]
    if not powers:
        print("error: --search tpe searches one power at a time (the paper's window per n): add "
              f"--set power=N, N one of {sorted(POWER_DEFAULTS)} or any n >= 1", file=sys.stderr)
        raise SystemExit(2)
    power = powers[-1]
    if not is_number(power) or power < 1:
        print(f"error: power must be a number >= 1 (got power={power!r})", file=sys.stderr)
        raise SystemExit(2)
    return tpe_sweep(power)


if __name__ == "__main__":
    main(SWEEP)  # for_argv picks the per-power TPE sweep from the command line
