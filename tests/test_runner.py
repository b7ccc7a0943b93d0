"""The shared runner: grid enumeration, validation before launch, Ray Tune x Optuna, MLflow layout."""
import optuna
import pytest
from optuna.distributions import FloatDistribution

from tracking import store
from conftest import run_script
from sweeps import noop
from trainables.noop import noop_objective
from sweeps.plan import grid_points
from sweeps.runner import Preset, Sweep, build_parser, planned_configs
from sweeps.search import optuna_storage


def _args(sweep, *argv):
    return build_parser(sweep).parse_args(list(argv))


def test_grid_points_every_cell_once_per_seed():
    points = grid_points(noop.SWEEP, noop.SWEEP.presets["smoke"], seeds=3)
    assert len(points) == 2 * 3 * 3
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)
    assert {p["seed"] for p in points} == {0, 1, 2}


def test_grid_value_outside_space_is_refused():
    sweep = Sweep(name="t", table="trials", trainable=None, space={"x": FloatDistribution(0, 1)},
                  grid={"x": [0.5, 2.0]}, presets={"smoke": Preset({})}, metric="score",
                  mode="max", validate=lambda c: None)
    with pytest.raises(ValueError, match="x=2.0"):
        grid_points(sweep, sweep.presets["smoke"], 1)


@pytest.mark.parametrize("argv, field", [
    (["--search", "random"], "--search must be one of grid, tpe"),
    (["--preset", "huge"], "--preset must be one of smoke, slow, bench"),
    (["--seeds", "0"], "--seeds"),
    (["--search", "tpe", "--num-samples", "0"], "--num-samples"),
    (["--gpus-per-trial", "-1"], "--gpus-per-trial"),
    (["--cpus-per-trial", "0"], "--cpus-per-trial"),
    (["--max-concurrent", "0"], "--max-concurrent"),
    (["--set", "epochs"], "KEY=VALUE"),
    (["--set", "epochs=0"], "epochs must be >= 1"),
])
def test_bad_arguments_are_refused_before_launch(argv, field):
    with pytest.raises(ValueError, match=field):
        planned_configs(noop.SWEEP, _args(noop.SWEEP, *argv))


def test_bad_input_creates_no_mlflow_run(sweep_env, tmp_path):
    proc = run_script(["sweeps/noop.py", "--preset", "nope"], sweep_env, check=False)
    assert proc.returncode == 2
    assert "--preset must be one of smoke, slow, bench (got 'nope')" in proc.stderr
    assert not (tmp_path / "mlflow.db").exists() or not store.client(
        sweep_env["MLFLOW_TRACKING_URI"]).get_experiment_by_name("noop")
    assert not (tmp_path / "ray").exists()


def test_grid_sweep_end_to_end_parent_child_layout(sweep_env, tmp_path):
    proc = run_script(["sweeps/noop.py", "--preset", "smoke", "--seeds", "2"], sweep_env)
    assert "12 trials finished, 0 failed" in proc.stdout
    client = store.client(sweep_env["MLFLOW_TRACKING_URI"])
    parent = store.find_parent_run(client, "noop")
    assert parent.info.status == "FINISHED"
    assert parent.data.tags[store.TAG_SEARCH] == "grid"
    assert len(parent.data.tags[store.TAG_GIT_COMMIT]) >= 7
    trials = store.trials_frame(client, parent)
    assert len(trials) == 12 and set(trials["status"]) == {"FINISHED"}
    # every (x, y, seed) cell exactly once: no duplicates, none missing
    cells = set(zip(trials["x"], trials["y"], trials["seed"]))
    assert cells == {(x, y, s) for x in (0.0, 1.0) for y in (0.0, 0.5, 1.0) for s in (0, 1)}
    # per-epoch metrics with step = epoch, and the value the trainable computes
    hist = store.metric_history(client, trials["run_id"][0], "score")
    assert list(hist["step"]) == [1, 2, 3]
    row = trials.iloc[0]
    assert row["score"] == pytest.approx(noop_objective(row["x"], row["y"], 3))
    # the last checkpoint of each trial is an artifact of its run, loadable with weights_only
    import torch

    path = client.download_artifacts(trials["run_id"][0], "checkpoint/state.pt", str(tmp_path))
    assert torch.load(path, weights_only=True) == {"epoch": 3}
    # exactly one parent in the experiment; all children point at it
    experiment = client.get_experiment_by_name("noop")
    everything = client.search_runs([experiment.experiment_id])
    assert sum(r.data.tags.get(store.TAG_ROLE) == "parent" for r in everything) == 1
    assert all(r.data.tags.get(store.TAG_PARENT) == parent.info.run_id
               for r in everything if r.info.run_id != parent.info.run_id)
    # the summary was logged to the parent run
    artifacts = [a.path for a in client.list_artifacts(parent.info.run_id, "tables")]
    assert any(a.endswith(".md") for a in artifacts) and any(a.endswith(".parquet")
                                                             for a in artifacts)

    # TPE warm-started from that grid: the new study holds the 12 grid trials plus its own
    proc = run_script(["sweeps/noop.py", "--search", "tpe", "--num-samples", "4",
                       "--warm-start", "--no-table"], sweep_env)
    assert "warm start: 12 finished trials" in proc.stdout
    storage = optuna_storage(sweep_env["DHAM_OPTUNA_STORAGE"])
    tpe = [s for s in optuna.get_all_study_summaries(storage) if ".tpe." in s.study_name]
    assert len(tpe) == 1 and tpe[0].n_trials == 16
    tpe_parent = store.find_parent_run(client, "noop")
    assert tpe_parent.data.tags[store.TAG_SEARCH] == "tpe"
    assert len(store.trials_frame(client, tpe_parent)) == 4


def test_credentials_are_redacted_from_logged_params():
    from sweeps.launch import redact

    assert redact("postgresql://bob:s3cret@db:5432/optuna") == "postgresql://bob:***@db:5432/optuna"
    assert redact("https://user:tok@mlflow.example/x") == "https://user:***@mlflow.example/x"
    assert redact("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    assert redact("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
