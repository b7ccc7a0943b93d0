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
    # a log (not a terminal) gets progress lines, not Ray Tune's status table (sweeps/progress.py)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[progress]")]
    assert lines and lines[-1].startswith("[progress] 12/12 done (0 failed), 0 running"), lines
    assert "best score" in lines[-1] and "best score —" not in lines[-1]
    for table_mark in ("== Status ==", "Number of trials", "Trial status"):
        assert table_mark not in proc.stdout + proc.stderr
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
    study = optuna.load_study(study_name=tpe[0].study_name, storage=storage)
    # the grid's cells with the scores MLflow holds for them, and what the trainable computes
    copied = {(t.params["x"], t.params["y"], t.params["seed"]): t.value
              for t in study.trials[:12]}
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials[:12])
    assert copied == pytest.approx({(r.x, r.y, r.seed): r.score for r in trials.itertuples()})
    assert copied == pytest.approx({(x, y, s): noop_objective(x, y, 3) for x, y, s in cells})
    tpe_parent = store.find_parent_run(client, "noop")
    assert tpe_parent.data.tags[store.TAG_SEARCH] == "tpe"
    tpe_trials = store.trials_frame(client, tpe_parent)
    assert len(tpe_trials) == 4
    assert tpe_trials["seed"].nunique() == 4  # each TPE trial its own seed


def test_credentials_are_redacted_from_logged_params():
    from sweeps.launch import redact

    assert redact("postgresql://bob:s3cret@db:5432/optuna") == "postgresql://bob:***@db:5432/optuna"
    assert redact("https://user:tok@mlflow.example/x") == "https://user:***@mlflow.example/x"
    assert redact("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    assert redact("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert redact("https://user@host/x") == "https://user@host/x"  # no password
    # passwords holding "/" and "@" unescaped, alone and inside a longer text
    assert redact("postgresql://u:p/a@ss@host/db") == "postgresql://u:***@host/db"
    assert redact("mysql://me:p@ss@db/x") == "mysql://me:***@db/x"
    text = redact("from postgresql://u:p/a@ss@host/db to https://v:q@r/s@h2/x done")
    assert text == "from postgresql://u:***@host/db to https://v:***@h2/x done"
    assert not any(secret in text for secret in ("p/a", "ss@", "q@r", "r/s"))


@pytest.mark.parametrize("ray_address, initialized, fails, shut_down", [
    (None, False, False, True),    # a local Ray this launch started
    (None, False, True, True),     # ... also when the launch fails
    ("ray://head:10001", False, False, False),  # a cluster it joined stays as it is
    (None, True, False, False),    # a caller's Ray (sweeps/scaling.py runs several launches)
])
def test_run_shuts_down_only_the_local_ray_it_started(monkeypatch, tmp_path, ray_address,
                                                      initialized, fails, shut_down):
    import ray

    from sweeps import launch

    state, calls = {"up": initialized}, []
    monkeypatch.setattr(ray, "is_initialized", lambda: state["up"])
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))
    monkeypatch.setattr(launch, "init_ray", lambda num_cpus=None: state.update(up=True))
    monkeypatch.setattr(launch, "check_cluster_resources", lambda cpus, gpus: None)

    def fake_launch(*a):
        if fails:
            raise RuntimeError("fit failed")
        return "parent"

    monkeypatch.setattr(launch, "_launch", fake_launch)
    monkeypatch.setenv("DHAM_RESULTS_DIR", str(tmp_path))
    if ray_address:
        monkeypatch.setenv("RAY_ADDRESS", ray_address)
    else:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    args = _args(noop.SWEEP)
    if fails:
        with pytest.raises(RuntimeError, match="fit failed"):
            launch.run(noop.SWEEP, args, {}, [], "sqlite:///x.db")
    else:
        assert launch.run(noop.SWEEP, args, {}, [], "sqlite:///x.db") == "parent"
    assert calls == (["shutdown"] if shut_down else [])


def test_asha_stops_a_losing_trial_early_and_mlflow_records_it(sweep_env):
    """One trial at a time (deterministic): at epoch 1 (ASHA's first rung, grace period 1,
    reduction factor 3) a trial scoring below the top third of those before it is stopped."""
    proc = run_script(["sweeps/noop.py", "--search", "tpe", "--num-samples", "5",
                       "--max-concurrent", "1", "--log-checkpoints", "no", "--no-table"],
                      sweep_env)
    assert "5 trials finished, 0 failed" in proc.stdout
    client = store.client(sweep_env["MLFLOW_TRACKING_URI"])
    runs = sorted(store.child_runs(client, store.find_parent_run(client, "noop")),
                  key=lambda r: r.info.start_time)
    assert len(runs) == 5 and all(r.info.status == "FINISHED" for r in runs)
    history = [[m.value for m in sorted(client.get_metric_history(r.info.run_id, "score"),
                                        key=lambda m: m.step)] for r in runs]
    assert all(len(h) in (1, 3) for h in history)  # stopped at the rung, or ran all 3 epochs
    stopped = [i for i, h in enumerate(history) if len(h) == 1]
    assert stopped, "no trial was stopped early"
    assert len(history[0]) == 3  # nothing to compare the first one with
    for i in range(1, len(runs)):  # ASHA's rule, on the scores MLflow holds: stopped iff
        earlier = sorted(h[0] for h in history[:i])  # below the 2/3 quantile of those before
        pos = (len(earlier) - 1) * 2 / 3
        low = earlier[int(pos)]
        cutoff = low + (earlier[min(int(pos) + 1, len(earlier) - 1)] - low) * (pos - int(pos))
        assert (i in stopped) == (history[i][0] < cutoff), (i, history[i][0], cutoff)
    # the stopped trials, and only they, are recorded as stopped early (at epoch 1 of 3)
    # --log-checkpoints no: noop logs its checkpoints by default (the grid test checks them)
    assert not any(client.list_artifacts(r.info.run_id, "checkpoint") for r in runs)
    tagged = [i for i, r in enumerate(runs) if store.TAG_STOPPED_EARLY in r.data.tags]
    assert tagged == stopped
    assert all(runs[i].data.tags[store.TAG_STOPPED_EARLY] == "true"
               and runs[i].data.tags[store.TAG_STOPPED_AT] == "1/3" for i in stopped)
    assert not any(store.TAG_STOPPED_AT in r.data.tags for i, r in enumerate(runs)
                   if i not in stopped)
