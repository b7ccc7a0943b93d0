"""DecisiveNets Table 5: accuracy of trained DHAM networks under Gaussian, shot and impulse noise.

An evaluation sweep: every finished trial of a training sweep (``--set source_sweep=ell``, its
newest finished launch or ``--set source_run=<parent run id>``) that logged its checkpoint to
MLflow is evaluated once, clean and at the 5 CIFAR-10-C severities of each noise, on the same
corrupted images (docs/decisivenets.md, "Table 5 - robustness").

    python sweeps/ell.py --preset smoke && python sweeps/robustness.py --preset smoke
    python sweeps/robustness.py --preset paper --gpus-per-trial 0.25      # after ell --preset paper
    python sweeps/robustness.py --preset cifar10c --set cifar10c_root=/data/CIFAR-10-C
"""
import os

from sweeps.runner import Preset, Sweep, main
from trainables.robustness import evaluate_robustness, validate

GRID = ("grid",)
PAPER = {"source_sweep": "ell", "dataset": "cifar10", "arch": "resnet18", "device": "auto",
         "download": True}

SWEEP = Sweep(
    name="robustness",
    table="decisivenets.table5",
    description="DHAM networks under CIFAR-10-C noise (Gaussian, shot, impulse; severities 1-5).",
    trainable=evaluate_robustness,
    space={}, grid={},
    presets={
        "smoke": Preset({"source_sweep": "ell", "dataset": "mnist_offline", "max_images": 500,
                         "device": "cpu", "num_threads": 1}, searches=GRID,
                        description="the ell sweep's smoke models (offline MNIST digits), 500 "
                                    "test images, CPU: seconds per model"),
        "paper": Preset(PAPER, searches=GRID,
                        description="the ell sweep's paper models (ResNet-18 / CIFAR-10): the "
                                    "10,000 test images corrupted here, one GPU"),
        "cifar10c": Preset({**PAPER, "source": "cifar10c", "cifar10c_root": os.path.abspath("data/CIFAR-10-C")},
                           searches=GRID,
                           description="the ell sweep's paper models on the published CIFAR-10-C "
                                       "files (default folder data/CIFAR-10-C; --set cifar10c_root=/abs/path)"),
    },
    metric="clean_acc", mode="max", validate=validate, max_t_key=None,
    checkpoints_from="source_sweep",
)

if __name__ == "__main__":
    main(SWEEP)
