"""DecisiveNets Table 4: few-shot transfer on CIFAR-FS with frozen DHAM backbones, per ell.

Each trial trains a backbone on the split's base classes, then averages a nearest-class-mean
classifier over N-way K-shot episodes on the novel classes' frozen features (docs/decisivenets.md,
"Table 4"). Finished trials log their checkpoint to MLflow.

    python sweeps/fewshot.py --preset smoke
    python sweeps/fewshot.py --preset paper --seeds 5 --gpus-per-trial 0.5
    python sweeps/fewshot.py --preset paper-r50 --set episodes=2000
"""
from optuna.distributions import CategoricalDistribution

from dham_core.published import ELLS
from sweeps.dham_presets import PAPER_R18, SMOKE
from sweeps.runner import Preset, Sweep, main
from trainables.fewshot import train_fewshot, validate

# Base digits 0-4, 5-way episodes on digits 5-9 (500 images each: 5 shots + 495 queries).
SMOKE_FS = {**SMOKE, "split": "digits", "ways": 5, "shots": 5, "queries": 495, "episodes": 10_000}
# The paper's protocol: 64 CIFAR-FS base classes, 5-way 5-shot, 595 queries, 10,000 episodes.
PAPER_FS = {**PAPER_R18, "dataset": "cifar100", "split": "cifar-fs", "ways": 5, "shots": 5,
            "queries": 595, "episodes": 10_000}
SMOKE_GRID = {"ell": [1, 2, 4, 8]}  # the smoke network's first stage has 8 channels

SWEEP = Sweep(
    name="fewshot",
    table="decisivenets.table4",
    description="DHAM few-shot transfer (ell = 1 is the plain ReLU backbone).",
    trainable=train_fewshot,
    space={"ell": CategoricalDistribution(list(ELLS))},
    grid={"ell": list(ELLS)},
    presets={
        "smoke": Preset(SMOKE_FS, grid=SMOKE_GRID, space={"ell": CategoricalDistribution([1, 2, 4, 8])},
                        num_samples=8, description="tiny ResNet-18 trained on offline digits 0-4, "
                        "5-way 5-shot episodes on digits 5-9, CPU, minutes"),
        "paper": Preset(PAPER_FS, num_samples=30,
                        description="ResNet-18 on the 64 CIFAR-FS base classes, 300 epochs, "
                                    "10,000 episodes: GPU cluster"),
        "paper-r50": Preset({**PAPER_FS, "arch": "resnet50"}, num_samples=30,
                            description="ResNet-50 on the 64 CIFAR-FS base classes, 300 epochs, "
                                        "10,000 episodes: GPU cluster"),
    },
    metric="val_acc", mode="max", validate=validate, log_checkpoint=True,
)

if __name__ == "__main__":
    main(SWEEP)
