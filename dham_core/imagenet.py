"""ImageNet-1k from a folder in torchvision's ``ImageNet`` layout (no download, no Ray import).

The user gives the root; :func:`check_root` refuses a missing folder or one that torchvision's
``torchvision.datasets.ImageNet`` cannot read, naming the field (``data_root``) and what it must
hold, before any work: the devkit (``meta.bin``, or ``ILSVRC2012_devkit_t12.tar.gz`` that
torchvision parses into it) and each split as a folder (``train/``, ``val/`` with one sub-folder
per WordNet id) or as its archive (``ILSVRC2012_img_train.tar``, ``ILSVRC2012_img_val.tar``, which
torchvision unpacks on first use).

:func:`load_imagenet` returns what ``dham_core.data.load_dataset`` returns: ``(train, val, test,
1000, 3)``; ``val`` is ``val_size`` training images held out by a seeded permutation (the
convention of the CIFAR loaders), ``test`` is ImageNet's validation split, on which the thesis
reports (Tables 4.1-4.6). Transforms are the usual ImageNet ones (train: random resized 224 crop
and horizontal flip; evaluation: resize 256, centre crop 224), normalised with the ImageNet
channel statistics.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Subset

IMAGENET_CLASSES = 1000
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
IMAGE_SIZE = 224
# What torchvision's ImageNet needs in the root: each entry is satisfied by any of its names.
LAYOUT = {
    "devkit": ("meta.bin", "ILSVRC2012_devkit_t12.tar.gz"),
    "train split": ("train/", "ILSVRC2012_img_train.tar"),
    "val split": ("val/", "ILSVRC2012_img_val.tar"),
}


def check_root(root) -> Path:
    """The root as a Path if it is in torchvision's ImageNet layout, else ``ValueError`` naming
    ``data_root``, what is missing and what is allowed (see the module docstring)."""
    if root is None:
        raise ValueError("data_root must be the ImageNet folder in torchvision's ImageNet layout "
                         "(meta.bin or the devkit archive, train/ and val/ or their archives); "
                         "there is no download (got data_root=None)")
    path = Path(os.path.expanduser(str(root)))
    if not path.is_dir():
        raise ValueError(f"data_root must be an existing ImageNet folder (got data_root={str(root)!r}: "
                         "no such directory)")
    missing = []
    for what, names in LAYOUT.items():
        if not any((path / n).is_dir() if n.endswith("/") else (path / n).is_file() for n in names):
            missing.append(f"{what} ({' or '.join(names)})")
    if missing:
        raise ValueError(f"data_root must be in torchvision's ImageNet layout; {path} lacks "
                         f"{', '.join(missing)} (got data_root={str(root)!r})")
    return path


def transforms_pair():
    """``(train_tf, eval_tf)``: the usual ImageNet augmentation and evaluation crops."""
    from torchvision import transforms

    normalise = transforms.Normalize(*IMAGENET_STATS)
    train_tf = transforms.Compose([transforms.RandomResizedCrop(IMAGE_SIZE),
                                   transforms.RandomHorizontalFlip(), transforms.ToTensor(), normalise])
    eval_tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(IMAGE_SIZE),
                                  transforms.ToTensor(), normalise])
    return train_tf, eval_tf


def load_imagenet(root, seed: int = 0, val_size: int = 10000):
    """``(train, val, test, 1000, 3)`` read by ``torchvision.datasets.ImageNet`` (module docstring)."""
    from torchvision.datasets import ImageNet

    path = check_root(root)
    train_tf, eval_tf = transforms_pair()
    train_full = ImageNet(path, split="train", transform=train_tf)
    val_full = ImageNet(path, split="train", transform=eval_tf)
    test = ImageNet(path, split="val", transform=eval_tf)
    n = len(train_full)
    if not 1 <= val_size < n:
        raise ValueError(f"val_size must be an integer in [1, {n - 1}] (got val_size={val_size!r})")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    train_idx, val_idx = order[: n - val_size], order[n - val_size:]
    return (Subset(train_full, train_idx.tolist()), Subset(val_full, val_idx.tolist()), test,
            IMAGENET_CLASSES, 3)
