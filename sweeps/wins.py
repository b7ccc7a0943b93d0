"""DecisiveNets Figs 2–4: proportion of wins of the DHAM feature maps of trained models.

An evaluation sweep: every finished trial of a training sweep (``source_sweep``, default the
ell sweep; its newest finished launch, or ``--set source_run=<parent run id>``) that logged
its checkpoint is one trial here, counting per DHAM layer, per feature map and per class the
(image, location) pairs the map wins under WTA on the test split. Grid-only.

    python sweeps/ell.py --preset smoke && python sweeps/wins.py --preset smoke
    python sweeps/wins.py --preset paper-r50 --set source_run=<ell paper-r50 parent> --gpus-per-trial 1
"""
from sweeps.runner import Preset, Sweep, main
from trainables.wins import count_source_wins, validate

GRID_ONLY = ("grid",)
SMOKE = {"source_sweep": "ell", "dataset": "mnist_offline", "arch": "resnet18",
         "device": "cpu", "batch_size": 500, "num_threads": 1}
PAPER = {"source_sweep": "ell", "dataset": "cifar10", "arch": "resnet18", "device": "auto",
         "download": True}

SWEEP = Sweep(
    name="wins",
    table="decisivenets.wins",
    description="Proportion of wins of DHAM feature maps (evaluates a training sweep's checkpoints).",
    trainable=count_source_wins,
    space={}, grid={},
    presets={
        "smoke": Preset(SMOKE, searches=GRID_ONLY,
                        description="the ell sweep's smoke models (tiny ResNet-18, offline MNIST "
                                    "digits), 1,000 test images, CPU, seconds per model"),
        "paper": Preset(PAPER, searches=GRID_ONLY,
                        description="ResNet-18 / CIFAR-10 models of the ell sweep's paper preset "
                                    "(the figures use ell = 2 and 8): one test pass each, GPU"),
        "paper-r50": Preset({**PAPER, "dataset": "cifar100", "arch": "resnet50"},
                            searches=GRID_ONLY,
                            description="ResNet-50 / CIFAR-100 models of the ell sweep's "
                                        "paper-r50 preset, the paper's own figure setting; GPU"),
    },
    # An evaluation has no objective: the searcher's metric is the number of test images counted.
    metric="images", mode="max", validate=validate, max_t_key=None,
    log_checkpoint=True,  # the win tables travel to analysis.wins in the trial's checkpoint
    checkpoints_from="source_sweep",
)

if __name__ == "__main__":
    main(SWEEP)
