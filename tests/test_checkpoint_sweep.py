"""End to end: a training sweep's checkpoints in MLflow are what an evaluation sweep evaluates.

The shared ``trained_dham_sweep`` (a tiny ell smoke training) logs each trial's final state to
MLflow; a minimal evaluation sweep (``checkpoints_from``) resolves them, with the Ray results
folder deleted first, and its trials report a fingerprint of the weights they downloaded,
checked against the copies Ray Tune had saved. A source with no checkpoints exits 2 having
created nothing.
"""
import shutil
import sys

import pytest
import ray
import ray.cloudpickle
import torch

from dham_core.train import model_from_state
from sweeps.plan import Preset, Sweep
from sweeps.runner import main
from tracking import store
from trainables.checkpoints import load_source_state
from trainables.common import report

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/


def fingerprint(state_dict: dict) -> tuple[float, float]:
    """(sum, sum of squares) of every floating-point weight, in float64."""
    weights = [t.double() for t in state_dict.values() if t.is_floating_point()]
    return float(sum(w.sum() for w in weights)), float(sum((w * w).sum() for w in weights))


def evaluate(config: dict) -> None:
    """The minimal evaluation: rebuild the source model, report its weights' fingerprint."""
    model, cfg = model_from_state(load_source_state(config), expect={"arch": "resnet18"})
    total, squares = fingerprint(model.state_dict())
    report({"epoch": 1, "weight_sum": total, "weight_sq": squares, "source_ell": cfg.ell})


EVAL = Sweep(name="evaluate_checkpoints", table="trials", trainable=evaluate, space={}, grid={},
             presets={"smoke": Preset({"source_sweep": "ell"}, searches=("grid",))},
             metric="weight_sq", mode="max", validate=lambda config: None, max_t_key=None,
             checkpoints_from="source_sweep")


@pytest.fixture
def eval_env(trained_dham_sweep, trained_dham_dir, tmp_path, monkeypatch):
    uri, _ = trained_dham_sweep
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("DHAM_STORAGE_PATH", str(tmp_path / "ray"))
    monkeypatch.setenv("DHAM_OPTUNA_STORAGE", str(tmp_path / "optuna.journal"))
    monkeypatch.setenv("DHAM_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return uri, tmp_path


def test_a_source_without_checkpoints_exits_2_and_creates_nothing(eval_env, capsys):
    uri, tmp_path = eval_env
    client = store.client(uri)
    before = sorted(e.name for e in client.search_experiments())
    with pytest.raises(SystemExit) as exit_info:
        main(EVAL, ["--set", "source_sweep=temperature", "--num-cpus", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "source_sweep='temperature': no MLflow experiment" in err and "ell" in err
    with pytest.raises(SystemExit):
        main(EVAL, ["--set", "source_sweep=ell", "--set", "source_run=0123abcd"])
    assert "source_run='0123abcd'" in capsys.readouterr().err
    assert sorted(e.name for e in client.search_experiments()) == before
    assert not ray.is_initialized() and sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_source_of_another_arch_or_dataset_exits_2_before_ray(eval_env, capsys):
    """The source trials' MLflow params are checked against what the evaluation sets, before
    launch: the ell smoke models are resnet18 on mnist_offline."""
    uri, tmp_path = eval_env
    client = store.client(uri)
    before = sorted(e.name for e in client.search_experiments())
    for key, value, have in (("arch", "resnet50", "resnet18"),
                             ("dataset", "cifar10", "mnist_offline")):
        with pytest.raises(SystemExit) as exit_info:
            main(EVAL, ["--set", "source_sweep=ell", "--set", f"{key}={value}"])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert (f"{key}={value!r} does not match the source's checkpoints: 4 of 4 have {key} "
                f"in [{have!r}]") in err, err
    assert sorted(e.name for e in client.search_experiments()) == before
    assert not ray.is_initialized() and sorted(p.name for p in tmp_path.iterdir()) == []


def test_evaluation_reads_the_trained_weights_from_mlflow_not_ray(eval_env, trained_dham_sweep,
                                                                 trained_dham_dir):
    uri, tmp_path = eval_env
    _, source_parent = trained_dham_sweep
    client = store.client(uri)
    trials = store.trials_frame(client, client.get_run(source_parent))
    assert sorted(trials["ell"]) == [1, 2, 4, 8] and set(trials["status"]) == {"FINISHED"}
    # the oracle: the final checkpoints Ray Tune saved, before its folder goes
    saved = {}  # ell (one trial each) -> fingerprint of the weights in Ray's checkpoint
    for path in (trained_dham_dir / "ray").rglob("state.pt"):
        state = torch.load(path, map_location="cpu", weights_only=True)
        saved[state["config"]["ell"]] = fingerprint(state["model"])
    assert sorted(saved) == [1, 2, 4, 8]
    shutil.rmtree(trained_dham_dir / "ray")
    parent = main(EVAL, ["--num-cpus", "2", "--no-table"])
    results = store.trials_frame(client, client.get_run(parent))
    assert len(results) == 4 and set(results["status"]) == {"FINISHED"}
    assert sorted(results["checkpoint_run"]) == sorted(trials["run_id"])
    ell_of = dict(zip(trials["run_id"], trials["ell"]))
    for _, row in results.iterrows():
        ell = ell_of[row["checkpoint_run"]]
        total, squares = saved[ell]
        assert row["source_ell"] == ell
        assert row["weight_sum"] == pytest.approx(total, rel=1e-12, abs=1e-9)
        assert row["weight_sq"] == pytest.approx(squares, rel=1e-12)
    assert len({row["weight_sq"] for _, row in results.iterrows()}) == 4  # four distinct models
    assert "MLFLOW_TRACKING_URI" not in results.columns  # the store's URI is no trial param
