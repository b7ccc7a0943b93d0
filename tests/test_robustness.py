"""DecisiveNets Table 5: the CIFAR-10-C noises against their own statistics, the evaluation
against a brute-force loop, the CIFAR-10-C file loader, and the smoke sweep end to end."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import TensorDataset

from analysis.robustness import TABLE5, per_network, severity_spec
from analysis.decisivenets import aggregate, build_table, to_markdown
from dham_core import published
from dham_core.corruption import KINDS, corrupt, load_cifar10c, noise_generator, parameter
from dham_core.data import load_dataset, raw_test_set
from dham_core.models import build_model
from dham_core.robustness import RobustnessConfig, evaluate_robustness, run_robustness
from dham_core.train import DHAMConfig, Trainer
from trainables.robustness import validate

GREY = torch.full((32, 3, 32, 32), 0.5)  # 98,304 values


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_parameters_are_hendrycks_dietterich_cifar10c():
    # make_cifar_c.py of Hendrycks & Dietterich (2019), severities 1..5
    expected = {"gaussian_noise": [0.04, 0.06, 0.08, 0.09, 0.10],
                "shot_noise": [500, 250, 100, 75, 50],
                "impulse_noise": [0.01, 0.02, 0.03, 0.05, 0.07]}
    for kind, values in expected.items():
        assert [parameter(kind, s) for s in range(1, 6)] == pytest.approx(values)


@pytest.mark.parametrize("severity", [1, 3, 5])
def test_gaussian_noise_has_mean_shift_zero_and_std_c(severity):
    c = [0.04, 0.06, 0.08, 0.09, 0.10][severity - 1]
    shift = (corrupt(GREY, "gaussian_noise", severity, gen()) - GREY).flatten().double()
    n = shift.numel()  # clipping at 0.5 ± 5c touches ~1e-6 of the values
    assert abs(float(shift.mean())) < 5 * c / math.sqrt(n)
    assert float(shift.std()) == pytest.approx(c, rel=5 / math.sqrt(2 * n))


@pytest.mark.parametrize("severity", [1, 5])
def test_shot_noise_is_poisson_counts_over_c(severity):
    c = [500, 250, 100, 75, 50][severity - 1]
    for x in (0.1, 0.3, 0.5):
        out = corrupt(torch.full((32, 3, 32, 32), x), "shot_noise", severity, gen(1)).double()
        n = out.numel()
        counts = out * c
        assert torch.allclose(counts, counts.round(), atol=1e-3)  # integer photon counts / c
        assert float(out.mean()) == pytest.approx(x, abs=5 * math.sqrt(x / c / n))
        # Poisson(x c) / c has variance x / c; the sample variance's sd is ~ var sqrt(2 / n)
        assert float(out.var()) == pytest.approx(x / c, rel=0.05)


@pytest.mark.parametrize("severity", [1, 4, 5])
def test_impulse_noise_changes_a_fraction_amount_to_0_or_1(severity):
    amount = [0.01, 0.02, 0.03, 0.05, 0.07][severity - 1]
    out = corrupt(GREY, "impulse_noise", severity, gen(2))
    changed = out != 0.5
    n = out.numel()
    sd = math.sqrt(amount * (1 - amount) / n)
    assert abs(float(changed.float().mean()) - amount) < 5 * sd
    values = out[changed]
    assert bool(((values == 0) | (values == 1)).all())
    salt = float((values == 1).float().mean())
    assert abs(salt - 0.5) < 5 * math.sqrt(0.25 / values.numel())


@pytest.mark.parametrize("kind", KINDS)
def test_output_stays_in_unit_range_and_is_deterministic(kind):
    images = torch.rand((8, 3, 16, 16), generator=gen(3))
    images[0] = 0.0
    images[1] = 1.0
    for severity in range(1, 6):
        a = corrupt(images, kind, severity, noise_generator(kind, severity, seed=0))
        b = corrupt(images, kind, severity, noise_generator(kind, severity, seed=0))
        c = corrupt(images, kind, severity, noise_generator(kind, severity, seed=1))
        assert float(a.min()) >= 0 and float(a.max()) <= 1
        assert torch.equal(a, b) and not torch.equal(a, c)
        assert a.shape == images.shape and not torch.equal(a, images)
    # each (kind, severity) has its own stream: severities 1 and 2 do not share the noise
    g1, g2 = noise_generator(kind, 1), noise_generator(kind, 2)
    assert not torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))


@pytest.mark.parametrize("kind, severity, field", [
    ("fog", 1, "kind"), ("gaussian", 1, "kind"), ("shot_noise", 0, "severity"),
    ("shot_noise", 6, "severity"), ("shot_noise", 2.0, "severity"), ("shot_noise", True, "severity")])
def test_bad_kind_or_severity_is_refused_naming_the_field(kind, severity, field):
    with pytest.raises(ValueError, match=rf"^{field} must be .*(gaussian_noise|1\.\.5)"):
        corrupt(GREY, kind, severity, gen())


def test_images_outside_unit_range_or_not_4d_are_refused():
    with pytest.raises(ValueError, match="images must hold values in \\[0, 1\\]"):
        corrupt(GREY * 3, "shot_noise", 1, gen())
    with pytest.raises(ValueError, match="images must be .* \\(B, C, H, W\\)"):
        corrupt(GREY[0], "shot_noise", 1, gen())


@pytest.mark.parametrize("config, field", [
    ({"kinds": ["fog"]}, "kinds"), ({"kinds": []}, "kinds"), ({"severities": [0, 1]}, "severities"),
    ({"severities": [1, 1]}, "severities"), ({"source": "disk"}, "source"),
    ({"source": "cifar10c"}, "cifar10c_root"), ({"source": "cifar10c", "cifar10c_root": "rel"}, "cifar10c_root"),
    ({"max_images": 0}, "max_images"), ({"arch": "vgg"}, "arch"), ({"nope": 1}, "nope")])
def test_robustness_config_refuses_bad_values(config, field):
    with pytest.raises(ValueError, match=field):
        validate({"source_sweep": "ell", "checkpoint_run": "abc", **config})


def test_raw_test_set_normalised_is_load_datasets_test_set():
    raw = raw_test_set("mnist_offline", seed=3)
    test = load_dataset("mnist_offline", seed=3)[2]
    assert float(raw.images.min()) >= 0 and float(raw.images.max()) <= 1
    assert torch.equal(raw.normalise(raw.images), test.tensors[0])
    assert torch.equal(raw.labels, test.tensors[1])


class Recorder(torch.nn.Module):
    """Records every input batch it sees, on top of a real small DHAM network."""

    def __init__(self, model):
        super().__init__()
        self.model, self.seen = model, []

    def forward(self, x):
        self.seen.append(x.clone())
        return self.model(x)


def _tiny(ell, seed):
    torch.manual_seed(seed)
    return build_model("resnet18", 10, 1, 4, (1, 1, 1, 1), ell).eval()


def test_evaluation_equals_a_brute_force_loop_and_every_model_sees_the_same_images():
    raw = raw_test_set("mnist_offline")
    images, labels = raw.images[:40], raw.labels[:40]
    cfg = RobustnessConfig(kinds=("gaussian_noise", "impulse_noise"), severities=(2, 5), seed=7,
                           batch_size=7).validate()
    models = [Recorder(_tiny(2, 0)), Recorder(_tiny(4, 1))]
    results = [evaluate_robustness(m, images, labels, raw.normalise, cfg) for m in models]
    assert torch.equal(torch.cat(models[0].seen), torch.cat(models[1].seen))
    model = models[0].model
    with torch.no_grad():
        def brute(batch):
            hits = [int(model(raw.normalise(batch[i:i + 1])).argmax()) == int(labels[i])
                    for i in range(len(labels))]
            return sum(hits) / len(hits)
        expected = {"clean_acc": brute(images)}
        for kind in cfg.kinds:
            for s in cfg.severities:
                noisy = corrupt(images, kind, s, noise_generator(kind, s, 7))
                expected[f"{kind}_s{s}_acc"] = brute(noisy)
            expected[f"{kind}_acc"] = (expected[f"{kind}_s2_acc"] + expected[f"{kind}_s5_acc"]) / 2
    assert results[0] == pytest.approx(expected, abs=1e-12)
    assert set(results[0]) == set(expected)


def test_run_robustness_from_a_checkpoint_matches_the_trainers_test_accuracy():
    trainer = Trainer(DHAMConfig(dataset="mnist_offline", width=4, blocks=(1, 1, 1, 1), ell=2,
                                 epochs=1, limit_train_batches=1, device="cpu", seed=1))
    trainer.train_epoch()
    state = trainer.state_dict()
    metrics = run_robustness(state, RobustnessConfig(kinds=("shot_noise",), severities=(1,),
                                                     max_images=200, device="cpu"))
    first = TensorDataset(*(t[:200] for t in trainer.test_ds.tensors))
    assert metrics["clean_acc"] == pytest.approx(trainer.evaluate(first))
    assert metrics["source_ell"] == 2 and metrics["source_seed"] == 1
    assert metrics["shot_noise_acc"] == metrics["shot_noise_s1_acc"]
    with pytest.raises(ValueError, match="arch"):
        run_robustness(state, RobustnessConfig(arch="resnet50", device="cpu"))
    with pytest.raises(ValueError, match="dataset"):  # the published files are CIFAR-10's
        run_robustness(state, RobustnessConfig(source="cifar10c", cifar10c_root="/nonexistent"))


def _fake_cifar10c(root, count=3, size=4):
    """5 severities x ``count`` images whose pixel (i, h, w, c) = i * 10 + c, labels i % 10."""
    i = np.arange(5 * count, dtype=np.uint8)
    images = np.broadcast_to(i[:, None, None, None] * 10 + np.arange(3, dtype=np.uint8),
                             (5 * count, size, size, 3)).copy()
    np.save(root / "shot_noise.npy", images)
    np.save(root / "labels.npy", (i % 10).astype(np.int64))


def test_cifar10c_loader_reads_each_severitys_block(tmp_path):
    _fake_cifar10c(tmp_path)
    images, labels = load_cifar10c(tmp_path, "shot_noise", 4)
    assert images.shape == (3, 3, 4, 4) and images.dtype == torch.float32
    for k, i in enumerate(range(9, 12)):  # severity 4 = images 9, 10, 11
        for ch in range(3):
            assert bool((images[k, ch] == (i * 10 + ch) / 255).all())
    assert labels.tolist() == [9, 0, 1]
    with pytest.raises(FileNotFoundError, match="gaussian_noise.npy.*cifar10c_root"):
        load_cifar10c(tmp_path, "gaussian_noise", 1)
    np.save(tmp_path / "shot_noise.npy", np.zeros((7, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="5 x N"):
        load_cifar10c(tmp_path, "shot_noise", 1)
    with pytest.raises(ValueError, match="severity"):
        load_cifar10c(tmp_path, "shot_noise", 9)


def test_cifar10c_source_evaluates_the_published_images_not_generated_ones(tmp_path):
    _fake_cifar10c(tmp_path, count=6, size=8)
    model = build_model("resnet18", 10, 3, 4, (1, 1, 1, 1), 2).eval()
    cfg = RobustnessConfig(kinds=("shot_noise",), severities=(2, 3), source="cifar10c",
                           cifar10c_root=str(tmp_path), max_images=5, batch_size=2).validate()
    clean, clean_labels = torch.rand(5, 3, 8, 8, generator=gen(4)), torch.arange(5)
    metrics = evaluate_robustness(model, clean, clean_labels, lambda x: x - 0.5, cfg)
    with torch.no_grad():
        for s in (2, 3):
            images, labels = load_cifar10c(tmp_path, "shot_noise", s)
            hits = [int(model(images[i:i + 1] - 0.5).argmax()) == int(labels[i]) for i in range(5)]
            assert metrics[f"shot_noise_s{s}_acc"] == pytest.approx(sum(hits) / 5)
        hits = [int(model(clean[i:i + 1] - 0.5).argmax()) == i for i in range(5)]
        assert metrics["clean_acc"] == pytest.approx(sum(hits) / 5)


def test_report_averages_noise_seeds_per_network_then_ci_over_networks():
    rows = []
    for run, ell, accs in (("a", 2, (0.5, 0.7)), ("b", 2, (0.8, 0.8)), ("c", 4, (0.4, 0.4))):
        for seed, acc in enumerate(accs):
            rows.append({"status": "FINISHED", "checkpoint_run": run, "seed": seed, "source_ell": ell,
                         "source_seed": 0, "clean_acc": acc, "shot_noise_acc": acc / 2,
                         "shot_noise_s1_acc": acc})
    rows.append({"status": "FAILED", "checkpoint_run": "d", "seed": 0})
    networks = per_network(pd.DataFrame(rows))
    table = build_table(networks, TABLE5)
    row = table[table["ell"] == 2].iloc[0]
    assert row["n"] == 2 and row["clean_acc"] == pytest.approx(70.0)  # (0.6 + 0.8) / 2
    assert row["clean_acc_ci"] == pytest.approx(12.706205 * math.sqrt(0.02) / math.sqrt(2) * 100, rel=1e-5)
    assert row["r18_c10_shot"] == 60.21
    md = to_markdown(table, TABLE5)
    lines = {ln.split("|")[1].strip(): ln for ln in md.splitlines() if ln.startswith("| ")}
    assert lines["4"].split("|")[2].strip() == "40.00 (n=1)"
    assert lines["64"].split("|")[2].strip() == "—" and "78.28" in lines["64"]
    assert len(lines) == 1 + len(published.DECISIVENETS_TABLE5)
    breakdown = aggregate(networks, severity_spec("shot_noise"))
    assert breakdown.set_index("ell").loc[4.0, "shot_noise_s1_acc"] == pytest.approx(40.0)


def test_smoke_preset_end_to_end(trained_dham_sweep, tmp_path, monkeypatch, capsys):
    """The ell smoke sweep's checkpoints → robustness sweep (Ray Tune) → MLflow → Table 5."""
    from dham_core.train import model_from_state
    from sweeps.robustness import SWEEP
    from sweeps.runner import main
    from tracking import store
    from trainables.checkpoints import load_source_state

    uri, source_parent = trained_dham_sweep
    for key, value in {"MLFLOW_TRACKING_URI": uri, "DHAM_STORAGE_PATH": str(tmp_path / "ray"),
                       "DHAM_OPTUNA_STORAGE": str(tmp_path / "optuna.journal"),
                       "DHAM_RESULTS_DIR": str(tmp_path / "results"), "RAY_USAGE_STATS_ENABLED": "0"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    parent = main(SWEEP, ["--preset", "smoke", "--set", f"source_run={source_parent}",
                          "--set", "max_images=60", "--num-cpus", "2"])
    out = capsys.readouterr().out
    client = store.client(uri)
    results = store.trials_frame(client, client.get_run(parent))
    sources = store.trials_frame(client, client.get_run(source_parent))
    assert len(results) == len(sources) == 4 and set(results["status"]) == {"FINISHED"}
    ell_of = dict(zip(sources["run_id"], sources["ell"]))
    test = load_dataset("mnist_offline", seed=0)[2].tensors
    for _, row in results.iterrows():
        assert row["source_ell"] == ell_of[row["checkpoint_run"]]
        # clean accuracy against the trainer's normalised test set, image by image
        model, _ = model_from_state(load_source_state({"checkpoint_run": row["checkpoint_run"]}))
        with torch.no_grad():
            hits = [int(model(test[0][i:i + 1]).argmax()) == int(test[1][i]) for i in range(60)]
        assert row["clean_acc"] == pytest.approx(sum(hits) / 60)
        for kind in KINDS:
            per = [row[f"{kind}_s{s}_acc"] for s in range(1, 6)]
            assert all(0 <= a <= 1 for a in per) and row[f"{kind}_acc"] == pytest.approx(sum(per) / 5)
    lines = {ln.split("|")[1].strip(): ln for ln in out.split("### Gaussian")[0].splitlines()
             if ln.startswith("| ") and not ln.startswith("| ell")}
    assert sorted(lines, key=float) == ["1", "2", "4", "8", "16", "32", "64"]
    for ell in ("1", "2", "4", "8"):
        assert "(n=1)" in lines[ell]
    assert lines["32"].split("|")[2].strip() == "—" and "56.56" in lines["32"]
    assert out.count("noise per severity") == 3
    logged = {a.path.rsplit(".", 1)[-1] for a in client.list_artifacts(parent, "tables")}
    assert logged == {"md", "parquet", "png"}
