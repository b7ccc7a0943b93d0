"""Dense associative memory and clique memory sweeps: flat data, trainables, analysis, validation
before launch, and each sweep script end to end (subprocess, temporary MLflow store)."""
import gzip
import io
import math
import struct

import numpy as np
import pytest
import torch
from conftest import run_script

import trainables.clique as tclique
import trainables.pack as pack
import trainables.hopfield as thopfield
import trainables.hopfield_capacity as tcapacity
from tracking import store
from tracking.cells import cell_results
from dham_core import clique_memory as cm
from dham_core.data import MNIST_STATS, load_dataset, load_flat
from dham_core.formulas import clique_density, memories_for_error, one_step_error_probability
from dham_core.hopfield_capacity import CapacityConfig, one_step_error, one_step_memories
from dham_core.hopfield_measures import (
    CONTRIBUTOR_BINS,
    bin_name,
    feature_prototype_metrics,
    memory_votes,
    strong_contributors,
)
from dham_core.hopfield_model import DenseAssociativeMemory
from dham_core.hopfield_train import HopfieldConfig, power_defaults, search_window
from sweeps import clique_capacity, hopfield_adversarial, hopfield_capacity, hopfield_power
from sweeps.runner import build_parser, main, planned_configs


@pytest.fixture
def reports(monkeypatch):
    """Run a trainable in-process: collect its (metrics, state) reports instead of Tune's, a
    pack's result as its cells (one entry each, as MLflow logs them)."""
    out = []

    def report(metrics, state=None):
        if state is not None:  # saved and loaded back as trainables.common does (weights_only)
            buffer = io.BytesIO()
            torch.save(state, buffer)
            buffer.seek(0)
            state = torch.load(buffer, weights_only=True)
        out.extend((cell, state) for cell in cell_results(dict(metrics)))

    for module in (thopfield, pack):  # packs report through pack.report_cells
        monkeypatch.setattr(module, "report", report)
    monkeypatch.setattr(thopfield, "load_state", lambda: None)
    return out


# ---------------------------------------------------------------------------------------
# Flat data in [−1, 1]
# ---------------------------------------------------------------------------------------


def test_load_flat_offline_digits_are_the_load_dataset_splits_rescaled():
    flat = load_flat("mnist_offline", seed=0)
    train, val, test, _, _ = load_dataset("mnist_offline", seed=0)
    assert flat.train_x.shape == (4000, 784) and flat.test_x.shape == (1000, 784)
    assert flat.train_x.dtype == torch.float32 and flat.train_y.dtype == torch.int64
    # independent route: undo load_dataset's normalisation back to 0..255, then x/127.5 − 1
    raw_test = torch.round((test.tensors[0] * MNIST_STATS[1][0] + MNIST_STATS[0][0]) * 255).view(-1, 784)
    torch.testing.assert_close(flat.test_x, raw_test / 127.5 - 1, atol=1e-5, rtol=0)
    assert torch.equal(flat.test_y, test.tensors[1])
    assert torch.equal(flat.train_y, torch.cat([train.tensors[1], val.tensors[1]]))
    assert flat.train_x.min() == -1 and flat.train_x.max() == 1
    held = load_flat("mnist_offline", seed=0, split="val")
    assert held.train_x.shape == (3500, 784) and torch.equal(held.test_y, val.tensors[1])


def _write_idx(path, array, compress):
    array = np.asarray(array)
    header = struct.pack(">I", 0x0800 | array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _write_mnist_like(folder, rng, compress, train=12, test=4):
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (train, 28, 28)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, train),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (test, 28, 28)),
              "t10k-labels-idx1-ubyte": np.arange(test)}
    for name, array in arrays.items():
        _write_idx(folder / (name + (".gz" if compress else "")), array, compress)
    return arrays


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_load_flat_reads_torchvision_mnist_and_fashion_idx_folders(tmp_path, name):
    rng = np.random.default_rng(3)
    if name == "mnist":  # torchvision's MNIST layout: <root>/MNIST/raw/ with the decompressed files
        arrays = _write_mnist_like(tmp_path / "MNIST" / "raw", rng, compress=False)
    else:  # the Debian package's layout: the four gzipped files in one folder
        arrays = _write_mnist_like(tmp_path, rng, compress=True)
    data = load_flat(name, root=tmp_path)
    expected = torch.tensor(arrays["t10k-images-idx3-ubyte"].reshape(4, 784), dtype=torch.float32) / 127.5 - 1
    torch.testing.assert_close(data.test_x, expected, atol=1e-6, rtol=0)
    assert data.train_x.shape == (12, 784) and data.test_y.tolist() == [0, 1, 2, 3]
    held = load_flat(name, root=tmp_path, split="val", val_size=3, seed=1)
    assert held.train_x.shape == (9, 784) and held.test_x.shape == (3, 784)
    all_train = torch.tensor(arrays["train-images-idx3-ubyte"].reshape(12, 784), dtype=torch.float32) / 127.5 - 1
    rows = {tuple(r.tolist()) for r in torch.cat([held.train_x, held.test_x])}
    assert rows == {tuple(r.tolist()) for r in all_train}  # a split of the training images


def test_load_flat_refuses_bad_names_and_explains_missing_mnist(tmp_path):
    with pytest.raises(ValueError, match="name must be one of"):
        load_flat("cifar10")
    with pytest.raises(ValueError, match="split must be one of"):
        load_flat("mnist_offline", split="train")
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_flat("mnist", root=tmp_path)


# ---------------------------------------------------------------------------------------
# Feature -> prototype measures
# ---------------------------------------------------------------------------------------


def naive_strong_contributors(model, v, ratio):
    """Per image, literally: F(ξ^μ·σ) in float64 (σ = image + predicted class code), count ≥ ratio·max."""
    counts = []
    xi = model.memories.detach().double()
    for image in v:
        pred = int(model(image[None]).argmax())
        x = -torch.ones(model.num_classes, dtype=torch.float64)
        x[pred] = 1
        sigma = torch.cat([image.double(), x])
        contributions = [max(float(xi[mu] @ sigma), 0.0) ** model.power for mu in range(xi.shape[0])]
        top = max(contributions)
        counts.append(sum(c >= ratio * top and c > 0 for c in contributions) if top > 0 else 0)
    return counts


@pytest.mark.parametrize("power,temperature", [(3, 20.0), (30, 500.0)])
def test_strong_contributors_equal_the_naive_count(power, temperature):
    g = torch.Generator().manual_seed(power)
    model = DenseAssociativeMemory(60, 4, 25, power, temperature, generator=g, dtype=torch.float64)
    with torch.no_grad():  # a few near-duplicate memories so that counts above 1 occur
        model.memories[5:10] = model.memories[0] + 0.01 * torch.randn(5, 64, generator=g, dtype=torch.float64)
    v = torch.rand(30, 60, generator=g, dtype=torch.float64) * 2 - 1
    v[:10] = model.memories.detach()[0, :60].sign()
    counts = strong_contributors(model, v, 0.9, batch_size=7)
    assert counts.tolist() == naive_strong_contributors(model, v, 0.9)
    assert counts.max() > 1 and counts.min() >= 1


def test_memory_votes_and_histogram_fractions():
    memories = torch.full((4, 6 + 3), -0.5)
    memories[0, 6:] = torch.tensor([1.0, -1.0, -1.0])  # votes for one class
    memories[1, 6:] = torch.tensor([1.0, 0.995, -1.0])  # two
    memories[2, 6:] = torch.tensor([0.98, 0.5, 0.0])  # none (below the cutoff)
    memories[3, 6:] = 1.0  # all three
    assert memory_votes(memories, 3, 0.99).tolist() == [1, 2, 0, 3]
    model = DenseAssociativeMemory(6, 3, 4, 3, 5.0)
    with torch.no_grad():
        model.memories.copy_(memories)
    metrics = feature_prototype_metrics(model, torch.rand(20, 6) * 2 - 1)
    assert metrics["single_class_frac"] == metrics["votes_frac_1"] == 0.25
    assert [metrics[f"votes_frac_{k}"] for k in range(4)] == [0.25, 0.25, 0.25, 0.25]
    bins = [metrics[f"contrib_frac_{bin_name(lo, hi)}"] for lo, hi in CONTRIBUTOR_BINS]
    assert math.isclose(sum(bins), 1.0, abs_tol=1e-6)


# ---------------------------------------------------------------------------------------
# Trainables, in-process
# ---------------------------------------------------------------------------------------


def test_classifier_config_takes_the_powers_defaults_unless_given():
    cfg = HopfieldConfig(power=2).resolved()
    assert (cfg.m, cfg.t_init, cfg.t_final) == (3, 325.0, 65.0)
    cfg = HopfieldConfig(power=30).resolved()
    assert cfg.m == 30 and cfg.t_init == cfg.t_final == 600.0
    cfg = HopfieldConfig(power=20, t_const=555.0, m=7).resolved()
    assert (cfg.m, cfg.t_init, cfg.t_final) == (7, 555.0, 555.0)
    assert power_defaults(25)["m"] == 30  # nearest tabulated n in log n (20 and 30: 30)
    assert set(search_window(3)) == {"t_init", "t_final", "m", "lr", "momentum"}
    assert search_window(30)["t_const"] == (500.0, 700.0, "float")


SMALL_CLASSIFIER = {"num_memories": 30, "epochs": 12, "ramp_epochs": 6, "batch_size": 50, "lr": 0.04,
                    "train_limit": 600, "eval_limit": 200, "device": "cpu", "power": 20, "error_threshold": 0.8}


def test_classifier_trainable_reports_each_epoch_and_resumes_exactly(reports, monkeypatch):
    thopfield.train_hopfield_classifier(dict(SMALL_CLASSIFIER))
    metrics = [m for m, _ in reports]
    assert [m["epoch"] for m in metrics] == list(range(1, 13))
    assert {"train_error", "eval_error", "test_error", "temperature", "lr", "loss", "best_eval_error"} <= set(metrics[0])
    assert metrics[0]["temperature"] == metrics[-1]["temperature"] == 540.0  # n = 20: constant T (paper)
    assert all(m["best_eval_error"] == min(x["eval_error"] for x in metrics[:i + 1]) for i, m in enumerate(metrics))
    first_below = next(m["epoch"] for m in metrics if m["eval_error"] < 0.8)
    assert metrics[-1]["epochs_to_threshold"] == first_below and metrics[-1]["reached_threshold"] == 1.0
    assert "epochs_to_threshold" not in metrics[first_below - 2]
    assert metrics[-1]["eval_error"] < 0.8 < metrics[0]["eval_error"]  # it learns
    assert "single_class_frac" in metrics[-1] and "single_class_frac" not in metrics[0]
    state = reports[5][1]
    assert state["model"]["memories"].shape == (30, 794) and state["epoch"] == 6
    # a retry restored from the epoch-6 checkpoint continues where the first attempt was
    straight = [dict(m) for m in metrics]
    reports.clear()
    monkeypatch.setattr(thopfield, "load_state", lambda: state)
    thopfield.train_hopfield_classifier(dict(SMALL_CLASSIFIER))
    drop = ("epoch_seconds",)
    assert [{k: v for k, v in m.items() if k not in drop} for m, _ in reports] == \
           [{k: v for k, v in m.items() if k not in drop} for m in straight[6:]]


def test_capacity_one_step_pack_reports_every_cell_as_the_core_measures_it(reports):
    config = {"experiment": "one_step", "one_step_powers": [2, 3], "one_step_points": 3, "one_step_sets": 4,
              "num_probes": 30, "seed": 1}
    tcapacity.hopfield_capacity_pack(config)
    cells = [m for m, _ in reports]
    cfg = CapacityConfig(**config)
    assert len(cells) == 2 * 2 * 3 and [c["cells_done"] for c in cells] == list(range(1, 13))
    assert cfg.seeds() == [4, 5, 6, 7]  # trial seed 1: the second block of 4 memory sets
    for power in (2, 3):
        ks = one_step_memories(cfg, power)
        # the K range spans the formula's P_err from 3e-4 to 0.1 (K rounded to integers)
        formula = [one_step_error_probability(100, k + d, power) for k in (ks[0], ks[-1]) for d in (-0.5, 0.5)]
        assert formula[0] <= 3e-4 <= formula[1] and formula[2] <= 0.1 <= formula[3]
        assert len(ks) == 3 and ks == sorted(ks)
        curve = one_step_error(100, ks, power, [False, True], [4, 5, 6, 7], 30)
        for row, (_, rect) in enumerate(curve.configs):
            got = [c for c in cells if c["n"] == power and c["rect"] == float(rect)]
            assert [c["K"] for c in got] == ks
            assert [c["errors"] for c in got] == curve.errors[row].tolist()
            assert [c["bits"] for c in got] == curve.trials[row].tolist()
    assert "worst_log2_ratio" in cells[-1] and "worst_log2_ratio" not in cells[0]


def test_xor_pack_plain_n2_fails_and_rectified_n3_solves(reports):
    tcapacity.hopfield_capacity_pack({"experiment": "xor", "xor_powers": [1, 2, 3]})
    solved = {(c["n"], c["rect"]): c["solved"] for c, _ in reports}
    assert solved == {(1, 0.0): 0.0, (1, 1.0): 0.0, (2, 0.0): 0.0, (2, 1.0): 1.0, (3, 0.0): 1.0, (3, 1.0): 1.0}
    plain_n2 = next(c for c, _ in reports if c["n"] == 2 and c["rect"] == 0.0)
    assert plain_n2["correct"] == 4  # z never moves from its start: right only when it started right


def test_memories_for_error_inverts_the_formula():
    for power, p in ((2, 1e-3), (3, 0.05), (4, 3e-4)):
        k = memories_for_error(100, power, p)
        assert one_step_error_probability(100, k, power) == pytest.approx(p, rel=1e-6)


def test_clique_pack_measures_each_checkpoint_with_the_same_erasures(reports):
    config = {"neurons_per_cluster": 32, "messages": [100, 300], "iterations": [1, 4], "num_tests": 150, "seed": 2}
    tclique.clique_capacity_pack(config)
    cells = [m for m, _ in reports]
    assert [(c["M"], c["iters"]) for c in cells] == [(100, 1), (100, 4), (300, 1), (300, 4)]
    # independent re-run: the same messages (seeded stream), stored in one go
    gen = torch.Generator().manual_seed(2)
    first = cm.random_messages(100, 8, 32, gen)
    memory = cm.CliqueMemory(8, 32)
    memory.store(first)
    sample = first[torch.randperm(100, generator=gen)[:150]]
    assert cells[0]["density"] == memory.density()
    assert cells[0]["density_formula"] == pytest.approx(float(clique_density(100, 32)))
    for col, iters in enumerate((1, 4)):
        rate = cm.erasure_error_rate(memory, sample, 4, iters, generator=torch.Generator().manual_seed(2 * 1_000_003 + 100))
        assert cells[col]["error_rate"] == rate
    assert cells[3]["error_rate"] <= cells[2]["error_rate"]
    assert cells[0]["tests"] == 100 and cells[2]["tests"] == 150  # at most the messages stored


# ---------------------------------------------------------------------------------------
# Analysis functions
# ---------------------------------------------------------------------------------------


BAD = [
    (hopfield_power, ["--set", "t_const=0"], "t_const must be a finite number > 0"),
    (hopfield_power, ["--set", "t_final=-5"], "t_final"),
    (hopfield_power, ["--set", "num_memories=0"], "num_memories must be an integer >= 1"),
    (hopfield_power, ["--set", "m=0"], "m must be an integer >= 1"),
    (hopfield_power, ["--set", "dataset=imagenet"], "dataset must be one of"),
    (hopfield_power, ["--set", "eval_split=train"], "eval_split must be one of"),
    (hopfield_power, ["--set", "epochs=-1"], "epochs must be an integer >= 0"),
    (hopfield_power, ["--set", "colour=red"], "unknown config key(s) colour"),
    (hopfield_capacity, ["--set", "one_step_powers=[0.5]"], "one_step_powers must be a non-empty list of integer powers >= 1"),
    (hopfield_capacity, ["--set", "half_recall_powers=[0, 3]"], "half_recall_powers"),
    (hopfield_capacity, ["--set", "one_step_memories=[0, 10]"], "one_step_memories must be null or a non-empty list of integers K >= 1"),
    (hopfield_capacity, ["--set", "random_start_memories=0"], "random_start_memories must be an integer K >= 1"),
    (hopfield_capacity, ["--set", "half_recall_neurons=[1]"], "half_recall_neurons"),
    (hopfield_capacity, ["--set", "one_step_range=[0.1, 0.01]"], "one_step_range"),
    (clique_capacity, ["--set", "clusters=1"], "clusters must be an integer >= 2"),
    (clique_capacity, ["--set", "neurons_per_cluster=1"], "neurons_per_cluster must be an integer >= 2"),
    (clique_capacity, ["--set", "erased=8"], "erased must be an integer in [0, clusters - 1 = 7] (erasing every"),
    (clique_capacity, ["--set", "messages=[0, 100]"], "messages must be a non-empty list"),
    (clique_capacity, ["--set", "iterations=[0]"], "iterations must be a non-empty list of integers >= 1"),
    (hopfield_adversarial, ["--set", "powers=[0.5, 8]"], "powers must be two powers >= 1"),
    (hopfield_adversarial, ["--set", "attack_step_size=0"], "attack_step_size must be a number > 0"),
    (hopfield_adversarial, ["--set", "attack_images=0"], "attack_images must be an integer >= 1"),
    (hopfield_adversarial, ["--set", "num_memories=0"], "num_memories must be an integer >= 1"),
]


@pytest.mark.parametrize("module,argv,message", BAD, ids=[f"{m.SWEEP.name}-{a[-1]}" for m, a, _ in BAD])
def test_bad_config_is_refused_before_launch(module, argv, message, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("DHAM_STORAGE_PATH", str(tmp_path / "ray"))
    monkeypatch.setenv("DHAM_OPTUNA_STORAGE", str(tmp_path / "optuna.journal"))
    monkeypatch.setenv("DHAM_RESULTS_DIR", str(tmp_path / "results"))
    with pytest.raises(SystemExit) as exc:
        main(module.SWEEP, argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "ray").exists()  # before MLflow and Ray


def test_power_tpe_searches_one_power_inside_its_window(capsys):
    with pytest.raises(SystemExit) as exc:
        hopfield_power.sweep_for(["--search", "tpe"])
    assert exc.value.code == 2 and "--set power=N" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        hopfield_power.sweep_for(["--search", "tpe", "--set", "power=0.5"])
    assert exc.value.code == 2 and "power must be a number >= 1 (got power=0.5)" in capsys.readouterr().err
    assert hopfield_power.sweep_for(["--preset", "cpu"]) is hopfield_power.SWEEP
    argv = ["--search", "tpe", "--set", "power=3", "--preset", "cpu"]
    sweep = hopfield_power.sweep_for(argv)
    assert set(sweep.space) == {"t_init", "t_final", "m", "lr", "momentum"}
    assert sweep.space["t_final"].low == 30.0 and sweep.space["m"].high == 4
    fixed, points = planned_configs(sweep, build_parser(sweep).parse_args(argv))  # validates every corner
    assert points == [] and fixed["power"] == 3 and fixed["eval_split"] == "val"
    assert set(hopfield_power.sweep_for(["--search", "tpe", "--set", "power=30"]).space) == {"t_const", "m", "lr",
                                                                                      "momentum"}


def test_refused_sweep_exits_2_from_the_command_line(sweep_env, tmp_path):
    proc = run_script(["sweeps/clique_capacity.py", "--set", "erased=8"], sweep_env, check=False)
    assert proc.returncode == 2 and "erased must be an integer in [0, clusters - 1 = 7]" in proc.stderr
    assert not (tmp_path / "ray").exists()


# ---------------------------------------------------------------------------------------
# Each sweep end to end: parent/child layout in MLflow and the printed report
# ---------------------------------------------------------------------------------------

E2E = ["--num-cpus", "2", "--max-concurrent", "2"]


def _layout(env, sweep, trials):
    client = store.client(env["MLFLOW_TRACKING_URI"])
    parent = store.find_parent_run(client, sweep)
    assert parent.info.status == "FINISHED"
    children = store.child_runs(client, parent)
    assert len(children) == trials and all(r.info.status == "FINISHED" for r in children)
    experiment = client.get_experiment_by_name(sweep)
    everything = client.search_runs([experiment.experiment_id])
    assert sum(r.data.tags.get(store.TAG_ROLE) == "parent" for r in everything) == 1
    artifacts = [a.path for a in client.list_artifacts(parent.info.run_id, "tables")]
    return client, parent, children, artifacts


def test_dam_power_sweep_end_to_end(sweep_env):
    proc = run_script(["sweeps/hopfield_power.py", "--preset", "smoke", *E2E, "--set", "num_memories=20",
                       "--set", "epochs=2", "--set", "ramp_epochs=1", "--set", "train_limit=300",
                       "--set", "eval_limit=200"], sweep_env)
    assert "8 trials finished, 0 failed" in proc.stdout
    assert "MNIST error vs the power n" in proc.stdout and "| 30 |" in proc.stdout and "≈1.6" in proc.stdout
    assert "179–312" in proc.stdout  # the paper's epochs-to-2% beside ours
    client, _, children, artifacts = _layout(sweep_env, "hopfield_power", 8)
    assert sorted(float(r.data.params["power"]) for r in children) == [2, 3, 4, 6, 8, 12, 20, 30]
    hist = store.metric_history(client, children[0].info.run_id, "eval_error")
    assert list(hist["step"]) == [1, 2]
    assert "single_contributor_frac" in children[0].data.metrics
    assert any(a.endswith("-curves.png") for a in artifacts) and any(a.endswith("-histograms.png")
                                                                     for a in artifacts)
    assert any(a.endswith(".md") for a in artifacts)
    # each trial's last checkpoint is an MLflow artifact, so the memories are drawn from MLflow
    assert [a.path for a in client.list_artifacts(children[0].info.run_id, "checkpoint")] == ["checkpoint/state.pt"]
    assert any(a.endswith("-memories.png") for a in artifacts)
    assert "Memories drawn for n = 2, 3, 20, 30" in proc.stdout


def test_dam_capacity_sweep_end_to_end(sweep_env):
    proc = run_script(["sweeps/hopfield_capacity.py", "--preset", "smoke", *E2E, "--set", "one_step_sets=8",
                       "--set", "random_starts=20", "--set", "random_start_memories=200"], sweep_env)
    assert "4 trials finished, 0 failed" in proc.stdout
    for heading in ("(a) Per-bit one-step error vs K", "(b) K at which half", "(c) Random starts", "(d) XOR"):
        assert heading in proc.stdout
    client, parent, _, artifacts = _layout(sweep_env, "hopfield_capacity", 4)
    cells = store.trial_histories(client, parent)
    one = cells[cells["experiment"] == "one_step"]
    assert len(one) == 2 * 2 * 4 and list(one["step"]) == list(range(1, 17))  # one row per cell
    assert {"N", "K", "n", "rect", "errors", "bits", "formula"} <= set(one.columns)
    assert all(any(a.endswith(f"-{name}.png") for a in artifacts) for name in ("one_step", "half_recall",
                                                                               "random_starts"))


def test_clique_capacity_sweep_end_to_end(sweep_env):
    proc = run_script(["sweeps/clique_capacity.py", "--preset", "smoke", *E2E, "--set", "messages=[500, 1500]",
                       "--set", "num_tests=100"], sweep_env)
    assert "2 trials finished, 0 failed" in proc.stdout
    assert "clique network retrieval error" in proc.stdout and "| sum_of_max | 4 | 1,500 |" in proc.stdout
    _, _, children, artifacts = _layout(sweep_env, "clique_capacity", 2)
    assert sorted(r.data.params["rule"] for r in children) == ["sum_of_max", "sum_of_sum"]
    assert any(a.endswith("-clique.png") for a in artifacts)


def test_dam_adversarial_sweep_end_to_end(sweep_env):
    proc = run_script(["sweeps/hopfield_adversarial.py", "--preset", "smoke", *E2E, "--set", "attack_images=20",
                       "--set", "attack_steps=20"], sweep_env)
    assert "1 trials finished, 0 failed" in proc.stdout
    assert "| n2 |" in proc.stdout and "| n8 |" in proc.stdout  # the 2×2 table, slides beside
    _, _, children, _ = _layout(sweep_env, "hopfield_adversarial", 1)
    metrics = children[0].data.metrics
    assert {"err_genn2_clsn2", "err_genn2_clsn8", "err_genn8_clsn2", "err_genn8_clsn8"} <= set(metrics)
    assert metrics["err_genn2_clsn2"] == metrics["fooled_n2"]  # the diagonal is the attack's own success
