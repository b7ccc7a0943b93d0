"""Few-shot transfer (DecisiveNets Table 4): the CIFAR-FS split, the NCM episode evaluator
against a brute-force loop, bad settings, the class-subset data, and the smoke sweep end to end."""
import pickle

import numpy as np
import pytest
import torch
import torchvision

from dham_core import published
from dham_core.fewshot import (SPLITS, FewShotConfig, class_indices, extract_features,
                               fewshot_data, ncm_episodes, sample_episodes)
from dham_core.models import build_model
from tracking import store
from conftest import run_script


# --- the CIFAR-FS split -----------------------------------------------------------------------

def test_cifar_fs_split_counts_names_and_disjointness():
    train, val, test = (set(published.CIFAR_FS_TRAIN), set(published.CIFAR_FS_VAL),
                        set(published.CIFAR_FS_TEST))
    assert (len(published.CIFAR_FS_TRAIN), len(val), len(test)) == (64, 16, 20)
    assert len(train) == 64 and not (train & val or train & test or val & test)
    assert train | val | test == set(published.CIFAR100_CLASSES)
    assert len(published.CIFAR100_CLASSES) == 100
    assert list(published.CIFAR100_CLASSES) == sorted(published.CIFAR100_CLASSES)  # label order
    assert {"baby", "pickup_truck", "sweet_pepper", "worm"} <= test
    assert {"beaver", "maple_tree", "television"} <= val
    assert {"apple", "aquarium_fish", "wolf"} <= train
    split = SPLITS["cifar-fs"]
    assert split.base == published.CIFAR_FS_TRAIN and split.novel == published.CIFAR_FS_TEST
    # label = position in CIFAR-100's alphabetical class list
    assert class_indices(["apple", "baby", "worm"], published.CIFAR100_CLASSES) == [0, 2, 99]


def test_a_class_name_missing_from_the_dataset_is_refused_by_name():
    with pytest.raises(ValueError, match=r"split: class name\(s\) \['unicorn'\] not in"):
        class_indices(["apple", "unicorn"], published.CIFAR100_CLASSES)


def _write_cifar100(root, classes, per_class_train=3, per_class_test=2):
    """A tiny CIFAR-100 folder in torchvision's pickle layout (random pixels, given class names);
    pixel 0 of every image encodes its (split, index) so the test can find it again."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, per in (("train", per_class_train), ("test", per_class_test)):
        labels = np.repeat(np.arange(len(classes)), per)
        data = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "fine_labels": labels.tolist()}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": list(classes)}, f)


@pytest.fixture
def no_cifar_checksums(monkeypatch):
    # The fake files have other md5 sums than the real ones: skip torchvision's checksums.
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)


def test_cifar_fs_data_resolves_classes_by_name(tmp_path, no_cifar_checksums):
    # The folder's class order is reversed: labels must follow the names, not CIFAR100_CLASSES.
    classes = tuple(reversed(published.CIFAR100_CLASSES))
    _write_cifar100(tmp_path, classes)
    data = fewshot_data(FewShotConfig(data_root=str(tmp_path)))
    train_ds, val_ds, test_ds, num_classes, in_channels = data.train
    assert (num_classes, in_channels) == (64, 3)
    assert (len(train_ds), len(val_ds), len(novel := data.novel)) == (64 * 3, 64 * 2, 20 * 5)
    raw = torchvision.datasets.CIFAR100(tmp_path, train=True)
    for i in range(0, len(train_ds), 37):
        label = raw.targets[train_ds.indices[i]]
        assert published.CIFAR_FS_TRAIN[train_ds[i][1]] == classes[label]
    novel_names = {classes[label] for _, label in novel}
    assert novel_names == set(published.CIFAR_FS_TEST)


def test_cifar_fs_data_refuses_a_dataset_missing_a_class(tmp_path, no_cifar_checksums):
    classes = [c if c != "worm" else "earthworm" for c in published.CIFAR100_CLASSES]
    _write_cifar100(tmp_path, classes)
    with pytest.raises(ValueError, match=r"\['worm'\] not in the dataset's classes"):
        fewshot_data(FewShotConfig(data_root=str(tmp_path)))


def test_digit_split_relabels_base_classes_and_keeps_novel_images():
    data = fewshot_data(FewShotConfig(dataset="mnist_offline", split="digits"))
    train_ds, val_ds, test_ds, num_classes, _ = data.train
    assert num_classes == 5
    for ds in (train_ds, val_ds, test_ds):
        assert set(ds.tensors[1].tolist()) == {0, 1, 2, 3, 4}
    assert len(train_ds) + len(val_ds) + len(test_ds) == 2500  # 500 per base digit, split 3.5/0.5/1
    labels = data.novel.tensors[1]
    assert torch.bincount(labels, minlength=10).tolist() == [0] * 5 + [500] * 5


# --- bad settings -----------------------------------------------------------------------------

@pytest.mark.parametrize("changes, field", [
    ({"ways": 21}, "ways"),
    ({"ways": 1}, "ways"),
    ({"queries": 596}, "queries"),
    ({"shots": 0}, "shots"),
    ({"episodes": 0}, "episodes"),
    ({"split": "miniimagenet"}, "split"),
    ({"split": "digits"}, "dataset"),
    ({"feature_norm": "cl2n"}, "feature_norm"),
])
def test_bad_fewshot_settings_are_refused_naming_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"^{field} must be"):
        FewShotConfig(**changes).validate()


def test_digit_split_limits_queries_to_its_500_images():
    FewShotConfig(dataset="mnist_offline", split="digits", queries=495).validate()
    with pytest.raises(ValueError, match=r"queries must be at most 495 .*500 images"):
        FewShotConfig(dataset="mnist_offline", split="digits", queries=496).validate()


def test_evaluator_refuses_what_the_features_cannot_satisfy():
    labels = torch.arange(4).repeat_interleave(10)
    features = torch.randn(40, 3)
    with pytest.raises(ValueError, match=r"^ways must be an integer in \[2, 4\]"):
        ncm_episodes(features, labels, ways=5, shots=1, queries=1)
    with pytest.raises(ValueError, match=r"^queries must be at most 8"):
        ncm_episodes(features, labels, ways=2, shots=2, queries=9)
    with pytest.raises(ValueError, match=r"^features must be \(N, d\)"):
        ncm_episodes(features[:, 0], labels)


# --- the NCM episode evaluator ----------------------------------------------------------------

def _brute_force(features: np.ndarray, support, query) -> list[float]:
    """Per-episode NCM accuracy with explicit loops and numpy's Euclidean norm."""
    accs = []
    for s_ep, q_ep in zip(support.tolist(), query.tolist()):
        means = [features[idx].mean(0) for idx in s_ep]
        right = total = 0
        for way, idx in enumerate(q_ep):
            for i in idx:
                right += int(np.argmin([np.linalg.norm(features[i] - m) for m in means]) == way)
                total += 1
        accs.append(right / total)
    return accs


@pytest.mark.parametrize("feature_norm", ["none", "l2"])
def test_ncm_matches_a_brute_force_loop_on_the_same_episodes(feature_norm):
    gen = torch.Generator().manual_seed(0)
    classes, per, d = 7, 12, 6
    labels = torch.arange(classes).repeat_interleave(per)[torch.randperm(classes * per, generator=gen)]
    centres = torch.randn(classes, d, generator=gen)
    features = centres[labels] * 0.8 + torch.randn(classes * per, d, generator=gen)
    result = ncm_episodes(features, labels, ways=4, shots=3, queries=5, episodes=1500, seed=3,
                          feature_norm=feature_norm, return_indices=True)
    support, query = result.support, result.query
    assert support.shape == (1500, 4, 3) and query.shape == (1500, 4, 5)
    # every episode: distinct classes, each way's images from one class, no image used twice
    way_labels = labels[support[..., 0]]
    assert all(len(set(row)) == 4 for row in way_labels.tolist())
    assert (labels[support] == way_labels.unsqueeze(-1)).all()
    assert (labels[query] == way_labels.unsqueeze(-1)).all()
    assert all(len(set(row)) == 32 for row in torch.cat([support, query], -1).flatten(1).tolist())
    feats = features.double().numpy()
    if feature_norm == "l2":
        feats = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    expected = _brute_force(feats, support, query)
    np.testing.assert_allclose(result.per_episode.numpy(), expected, rtol=0, atol=1e-12)
    assert result.accuracy == pytest.approx(np.mean(expected), abs=1e-12)
    assert result.ci95 == pytest.approx(1.96 * np.std(expected, ddof=1) / np.sqrt(1500), rel=1e-9)
    # the draws are uniform: every class in about 4/7 of the episodes
    share = torch.bincount(way_labels.flatten(), minlength=classes) / 1500
    assert (share - 4 / 7).abs().max() < 0.05


def test_same_seed_same_episodes_other_seed_other_episodes():
    labels = torch.arange(6).repeat_interleave(8)
    a = sample_episodes(labels, 3, 2, 4, 50, torch.Generator().manual_seed(1))
    b = sample_episodes(labels, 3, 2, 4, 50, torch.Generator().manual_seed(1))
    c = sample_episodes(labels, 3, 2, 4, 50, torch.Generator().manual_seed(2))
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not torch.equal(a[1], c[1])
    features = torch.randn(48, 5)
    runs = [ncm_episodes(features, labels, 3, 2, 4, 1200, seed=s, return_indices=True) for s in (7, 7, 8)]
    assert torch.equal(runs[0].query, runs[1].query) and torch.equal(runs[0].per_episode, runs[1].per_episode)
    assert not torch.equal(runs[0].query, runs[2].query)


def test_well_separated_classes_score_100_percent():
    labels = torch.arange(10).repeat_interleave(30)
    features = 100.0 * torch.eye(10)[labels] + torch.rand(300, 10)
    result = ncm_episodes(features, labels, ways=5, shots=1, queries=29, episodes=500)
    assert result.accuracy == 1.0 and result.ci95 == 0.0


def test_random_features_score_about_one_over_ways():
    gen = torch.Generator().manual_seed(5)
    labels = torch.arange(20).repeat_interleave(40)
    result = ncm_episodes(torch.randn(800, 16, generator=gen), labels, ways=5, shots=5,
                          queries=35, episodes=2000, seed=1)
    assert abs(result.accuracy - 0.2) < 3 * result.ci95 + 0.005
    assert 0 < result.ci95 < 0.01


def test_extracted_features_are_the_eval_mode_pooled_features():
    model = build_model("resnet18", 5, 1, 8, (1, 1, 1, 1), 2, None, "inside", "keep")
    model.train()
    images, labels = torch.randn(7, 1, 28, 28), torch.arange(7)
    feats, labs = extract_features(model, torch.utils.data.TensorDataset(images, labels), batch_size=3)
    assert not model.training and torch.equal(labs, labels)
    with torch.no_grad():
        torch.testing.assert_close(feats, model.features(images))
    assert feats.shape == (7, 64)


# --- end to end -------------------------------------------------------------------------------

def test_fewshot_smoke_sweep_prints_table4(sweep_env):
    # one ell, two seeds: the table's mean ± CI over seeds beside the paper's row
    proc = run_script(["sweeps/fewshot.py", "--preset", "smoke", "--seeds", "2", "--set", "ell=2",
                       "--set", "epochs=1", "--set", "limit_train_batches=2", "--set", "episodes=200",
                       "--set", "queries=50"], sweep_env)
    assert "2 trials finished, 0 failed" in proc.stdout
    client = store.client(sweep_env["MLFLOW_TRACKING_URI"])
    parent = store.find_parent_run(client, "fewshot")
    assert parent.data.tags[store.TAG_TABLE] == "decisivenets.table4"
    trials = store.trials_frame(client, parent)
    assert len(trials) == 2 and set(trials["status"]) == {"FINISHED"}
    assert ((trials["fewshot_acc"] >= 0) & (trials["fewshot_acc"] <= 1)).all()
    assert (trials["fewshot_ci95"] > 0).all() and trials["test_acc"].notna().all()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ")]
    mean = 100 * trials["fewshot_acc"].mean()
    for row in published.DECISIVENETS_TABLE4:
        match = [ln for ln in lines if ln.startswith(f"| {row['ell']:g} |")]
        assert len(match) == 1 and f"{row['r18_acc']:.2f}" in match[0]
        ours = match[0].split("|")[2].strip()
        if row["ell"] == 2:
            assert ours.startswith(f"{mean:.2f} ± ") and ours.endswith("(n=2)"), ours
        else:
            assert ours == "—", ours
    for run_id in trials["run_id"]:
        assert [a.path for a in client.list_artifacts(run_id, "checkpoint")] == ["checkpoint/state.pt"]
    files = {a.path.rsplit(".", 1)[-1] for a in client.list_artifacts(parent.info.run_id, "tables")}
    assert files == {"md", "parquet", "png"}
