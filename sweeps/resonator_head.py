"""The resonator classifier head (thesis ch. 4, Tables 4.1-4.6): MobileNet-V2 with its classifier
replaced by a sparse-block-code target decoded by the sparse resonator.

    python sweeps/resonator_head.py --preset smoke                      # offline digits, CPU, minutes
    python sweeps/resonator_head.py --preset cifar100 --gpus-per-trial 1
    python sweeps/resonator_head.py --preset table4.3 --gpus-per-trial 1 --set data_root=/data/imagenet

The ``table4.x`` presets train torchvision's ImageNet MobileNet-V2 on ImageNet-1k in
torchvision's ``ImageNet`` layout (``--set data_root=...``; no download; a launch refuses a
missing folder or a wrong layout before anything starts, a ``--dry-run`` plans without it):
GPU days per trial. Every preset is a grid over what its table varies; the report
(``python -m analysis.report resonator_head``) prints each table with the thesis's three
accuracies beside ours, the baselines and the parameter counts.
"""
import dataclasses

from optuna.distributions import CategoricalDistribution

from sweeps.runner import Preset, Sweep, main
from trainables.resonator_head import train_resonator_head, validate, validate_plan

GRID = ("grid",)
# Thesis §4.2 recipe on ImageNet (HeadConfig's defaults, spelled out): V = 3, M = 10, D = 1280.
IMAGENET = {"dataset": "imagenet", "arch": "mobilenetv2_imagenet", "width": 64, "batch_size": 256,
            "lr": 0.04, "schedule": "cosine", "nesterov": True, "momentum": 0.9,
            "weight_decay": 4e-5, "factors": 3, "D": 1280, "pooling": "weighted", "loss": "cosine",
            "training": "segment", "val_size": 10000, "num_workers": 8, "device": "auto"}


def _table(description: str, grid: dict, **fixed) -> Preset:
    return Preset({**IMAGENET, **fixed}, grid=grid, searches=GRID,
                  description=description + "; ImageNet-1k, MobileNet-V2: GPU days per trial")


PRESETS = {
    "table4.1": _table("Table 4.1, loss (k = 80, average pooling, 100 epochs)",
                       {"loss": ["cross_entropy", "cosine"]}, k=80, pooling="average", epochs=100),
    "table4.2": _table("Table 4.2, pooling (k = 80, cosine, 100 epochs)",
                       {"pooling": ["average", "weighted"]}, k=80, epochs=100),
    "table4.3": _table("Table 4.3, k (weighted, cosine, 200 epochs)",
                       {"k": [40, 64, 80, 128, 160]}, epochs=200),
    "table4.4": _table("Table 4.4, epochs (k = 64)", {"epochs": [200, 400]}, k=64),
    "table4.5": _table("Table 4.5, segment-wise vs overlap training (k = 64, 200 epochs)",
                       {"training": ["segment", "overlap"]}, k=64, epochs=200),
    "table4.6": _table("Table 4.6, V = 3 (M = 10) vs V = 2 (M = 32) (200 epochs)",
                       {"factors": [3, 2], "k": [40, 64]}, epochs=200),
    # CIFAR-100 = V = 2, M = 10 exactly; the repo's CIFAR MobileNet-V2 (last map 1280×4×4).
    "cifar100": Preset({**IMAGENET, "dataset": "cifar100", "arch": "mobilenetv2", "download": True,
                        "factors": 2, "size": 10, "epochs": 100, "val_size": 5000, "num_workers": 4},
                       grid={"k": [40, 64], "training": ["segment", "overlap"]}, searches=GRID,
                       description="CIFAR-100, CIFAR MobileNet-V2, 100 epochs: GPU hours per trial"),
    # Offline digits, tiny MobileNet-V2 (last map 160×4×4 = D): V = 2, M = 4, k = 32, L = 5.
    "smoke": Preset({"dataset": "mnist_offline", "arch": "mobilenetv2", "width": 8,
                     "blocks": [1, 1, 1, 1, 1, 1, 1], "epochs": 2, "batch_size": 128, "lr": 0.04,
                     "schedule": "cosine", "nesterov": True, "weight_decay": 4e-5, "factors": 2,
                     "size": 4, "D": 160, "k": 32, "a": 3, "max_it": 100, "pooling": "weighted",
                     "device": "cpu", "num_threads": 1},
                    grid={"training": ["segment", "overlap"], "loss": ["cross_entropy", "cosine"]},
                    searches=GRID, description="offline digits, tiny MobileNet-V2, CPU: minutes"),
}

SWEEP = Sweep(
    name="resonator_head",
    table="resonator.head",
    description="Resonator classifier head on MobileNet-V2 (thesis Tables 4.1-4.6).",
    trainable=train_resonator_head,
    space={"loss": CategoricalDistribution(["cross_entropy", "cosine"]),
           "pooling": CategoricalDistribution(["average", "weighted"]),
           "k": CategoricalDistribution([40, 64, 80, 128, 160]),
           "epochs": CategoricalDistribution([100, 200, 400]),
           "training": CategoricalDistribution(["segment", "overlap"]),
           "factors": CategoricalDistribution([2, 3])},
    grid={"k": [40, 64, 80, 128, 160]},
    presets=PRESETS,
    metric="val_acc", mode="max", validate=validate,
    # A dry run plans without the ImageNet folder; a launch checks it before anything starts.
    for_argv=lambda argv: (dataclasses.replace(SWEEP, validate=validate_plan, for_argv=None)
                           if "--dry-run" in argv else SWEEP),
)

if __name__ == "__main__":
    main(SWEEP)
