"""Sweeps that survive a killed driver and failing trials (fault injection via ``_fault``)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from mlflow.entities import ViewType
from optuna.trial import TrialState

from tracking import store
from conftest import REPO, run_script, wait_for_readable_tune_state
from sweeps.search import GRID_CELL, optuna_storage


def _children(env):
    client = store.client(env["MLFLOW_TRACKING_URI"])
    try:
        parent = store.find_parent_run(client, "noop")
    except LookupError:
        return None, []
    return parent, store.child_runs(client, parent)


def test_killed_driver_resumes_without_lost_or_duplicated_trials(sweep_env, tmp_path):
    cmd = ["sweeps/noop.py", "--preset", "slow", "--max-concurrent", "2"]
    # create the SQLite store's tables now: MLflow's schema migration is not safe to run from
    # two processes at once (this test polls the store while the sweep starts)
    store.client(sweep_env["MLFLOW_TRACKING_URI"]).search_experiments()
    with open(tmp_path / "first.log", "w") as log:  # the child keeps its own handle
        first = subprocess.Popen([sys.executable, *cmd], cwd=REPO, env=sweep_env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 300
        finished = 0
        while time.time() < deadline and first.poll() is None:
            _, runs = _children(sweep_env)
            finished = sum(r.info.status == "FINISHED" for r in runs)
            if finished >= 2:
                break
            time.sleep(0.5)
        assert first.poll() is None, "the sweep ended before it could be killed"
        assert finished >= 2
    finally:
        if first.poll() is None:
            wait_for_readable_tune_state(Path(sweep_env["DHAM_STORAGE_PATH"]))
            os.killpg(first.pid, signal.SIGKILL)  # the driver and the local Ray it started
        first.wait()
    parent_before, runs_before = _children(sweep_env)
    assert parent_before.info.status == "RUNNING"
    assert len(runs_before) < 6  # the kill really interrupted the sweep
    # whether the killed driver left an orphan depends on when Tune last saved: plant one, so
    # that orphan deletion is exercised on every run
    client = store.client(sweep_env["MLFLOW_TRACKING_URI"])
    planted = client.create_run(parent_before.info.experiment_id, tags={
        store.TAG_PARENT: parent_before.info.run_id, store.TAG_ROLE: store.ROLE_TRIAL,
        store.TAG_TRIAL_ID: "planted_0001"}).info.run_id

    proc = run_script(cmd, sweep_env)  # no flag: the unfinished sweep is detected
    assert f"resuming unfinished sweep: MLflow parent run {parent_before.info.run_id}" in proc.stdout
    parent, runs = _children(sweep_env)
    assert parent.info.run_id == parent_before.info.run_id
    assert parent.info.status == "FINISHED"
    trial_ids = [r.data.tags[store.TAG_TRIAL_ID] for r in runs]
    assert len(runs) == 6 and len(set(trial_ids)) == 6  # planned 6, none duplicated
    assert all(r.info.status == "FINISHED" for r in runs)  # none lost
    cells = {(float(r.data.params["x"]), float(r.data.params["y"])) for r in runs}
    assert cells == {(x, y) for x in (0.0, 1.0) for y in (0.0, 0.5, 1.0)}
    experiment = client.get_experiment_by_name("noop")
    assert len(client.search_runs([experiment.experiment_id])) == 7  # 1 parent + 6 children
    # deleted: exactly the runs of trials Tune does not hold, each closed with the reason
    orphans = {r.info.run_id for r in runs_before if r.data.tags[store.TAG_TRIAL_ID]
               not in trial_ids} | {planted}
    deleted = client.search_runs([experiment.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert {r.info.run_id for r in deleted} == orphans
    assert all(r.info.status == "KILLED" and "orphaned" in r.data.tags[store.TAG_STATUS_REASON]
               for r in deleted)
    assert f"deleted orphaned child run {planted}" in proc.stdout
    # the Optuna study: nothing left waiting or running, every grid cell finished
    storage = optuna_storage(sweep_env["DHAM_OPTUNA_STORAGE"])
    study = optuna.load_study(study_name=parent.data.params["optuna_study"], storage=storage)
    states = {t.state for t in study.trials}
    assert not states & {TrialState.WAITING, TrialState.RUNNING}, states
    done = {t.user_attrs[GRID_CELL]: (t.params["x"], t.params["y"]) for t in study.trials
            if t.state == TrialState.COMPLETE}
    assert sorted(done) == list(range(6)) and set(done.values()) == cells


def test_failing_and_nan_trials_are_recorded_and_the_sweep_goes_on(sweep_env):
    raise_fault = json.dumps({"raise_at_epoch": 2, "persistent": True})
    # y pinned: the 2 cells x in {0, 1}, one round on 2 CPUs (every failed trial costs a new
    # actor, so 6 cells would only repeat the same check at 3x the time)
    proc = run_script(["sweeps/noop.py", "--preset", "smoke", "--set", f"_fault={raise_fault}",
                       "--set", "y=0.0", "--no-table"], sweep_env)
    assert "0 trials finished, 2 failed" in proc.stdout
    parent, runs = _children(sweep_env)
    assert parent.info.status == "FINISHED"
    assert len(runs) == 2 and all(r.info.status == "FAILED" for r in runs)
    assert all("injected fault at epoch 2" in r.data.tags[store.TAG_STATUS_REASON] for r in runs)

    nan_fault = json.dumps({"nan_at_epoch": 2, "persistent": True})
    run_script(["sweeps/noop.py", "--preset", "smoke", "--set", f"_fault={nan_fault}",
                "--set", "y=0.0", "--no-table"], sweep_env)
    parent, runs = _children(sweep_env)
    assert len(runs) == 2 and all(r.info.status == "FAILED" for r in runs)
    assert all("non-finite train_loss=nan at epoch 2" in r.data.tags[store.TAG_STATUS_REASON]
               for r in runs)
    # the epoch before the fault was still logged
    client = store.client(sweep_env["MLFLOW_TRACKING_URI"])
    assert [m.step for m in client.get_metric_history(runs[0].info.run_id, "score")] == [1]


def test_transient_fault_is_retried_from_the_last_checkpoint(sweep_env):
    fault = json.dumps({"raise_at_epoch": 2})  # first attempt only
    proc = run_script(["sweeps/noop.py", "--preset", "smoke", "--set", f"_fault={fault}",
                       "--set", "y=0.0", "--max-failures", "1", "--no-table"], sweep_env)
    assert "2 trials finished, 0 failed" in proc.stdout
    parent, runs = _children(sweep_env)
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    assert all(r.data.tags.get("sweep.retries") == "1" for r in runs)
    client = store.client(sweep_env["MLFLOW_TRACKING_URI"])
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "score")]
    assert steps == [1, 2, 3]  # resumed at epoch 2 from the epoch-1 checkpoint, nothing redone
