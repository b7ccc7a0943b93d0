"""Reconciling MLflow with Ray Tune's persisted results after a killed driver
(:mod:`tracking.reconcile`, :func:`sweeps.resume.reconcile_tracking`).

The unit tests start from a real Tune experiment folder and a real SQLite MLflow store, made
once by a small no-op sweep, then take out of the store what a killed driver would have lost
(metric points, a whole child run, a trial's end) and reconcile. The oracle is the store as
the live callback wrote it before anything was taken out, and Tune's ``result.json`` files
read here with plain ``json``. The end-to-end test kills a driver while its MLflow server is
down and reruns the command."""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, run_script, wait_for_readable_tune_state
from servers import MlflowServer
from tracking import store
from tracking.callback import MLflowTrialCallback
from sweeps.resume import reconcile_tracking


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    """A finished no-op grid (6 trials x 3 epochs): its folder, holding ``mlflow.db`` and
    ``ray/<tune dir>``."""
    base = tmp_path_factory.mktemp("sweep")
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{base / 'mlflow.db'}",
               DHAM_STORAGE_PATH=str(base / "ray"), DHAM_OPTUNA_STORAGE=str(base / "optuna.journal"),
               DHAM_RESULTS_DIR=str(base / "results"), RAY_USAGE_STATS_ENABLED="0",
               MLFLOW_DISABLE_TELEMETRY="true")
    env.pop("RAY_ADDRESS", None)
    run_script(["sweeps/noop.py", "--preset", "smoke", "--no-table"], env)
    return base


class Copy:
    """A private copy of the finished sweep: its store, parent run and Tune folder."""

    def __init__(self, source: Path, dest: Path):
        shutil.copytree(source, dest)
        self.db = dest / "mlflow.db"
        self.uri = f"sqlite:///{self.db}"
        self.client = store.client(self.uri)
        self.parent = store.find_parent_run(self.client, "noop")
        self.tune_path = str(dest / "ray" / self.parent.data.tags[store.TAG_TUNE_DIR])
        self.spill = dest / "spill.jsonl"

    def runs(self) -> dict:
        return {r.data.tags[store.TAG_TRIAL_ID]: r
                for r in store.child_runs(self.client, self.client.get_run(self.parent.info.run_id))}

    def histories(self) -> dict:
        """{trial id: {key: sorted [(step, timestamp, value)]}}: every point, duplicates kept."""
        return {tid: {key: sorted((m.step, m.timestamp, m.value)
                                  for m in self.client.get_metric_history(run.info.run_id, key))
                      for key in run.data.metrics}
                for tid, run in self.runs().items()}

    def sql(self, query: str, *args) -> None:
        with sqlite3.connect(self.db) as db:
            db.execute(query, args)

    def reconcile(self) -> int:
        """What a resumed launch does: queue Tune's persisted results on the (restored)
        callback, then close it; returns the events queued."""
        cb = MLflowTrialCallback(self.uri, self.parent.info.experiment_id,
                                 self.parent.info.run_id, self.spill)
        queued = reconcile_tracking(cb, self.tune_path)
        assert cb.close(timeout_s=120) == 0
        return queued


def _result_json(tune_path: str) -> dict:
    """{trial id: [result, ...]} from every trial folder's result.json."""
    out = {}
    for path in Path(tune_path).glob("*/result.json"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        out[rows[0]["trial_id"]] = rows
    return out


def test_lost_points_a_lost_run_and_a_lost_end_arrive_exactly_once(finished_sweep, tmp_path):
    sweep = Copy(finished_sweep, tmp_path / "copy")
    before = sweep.histories()
    runs = sweep.runs()
    assert len(before) == 6
    # the live callback's store agrees with Tune's result.json: epochs 1..3, same scores
    results = _result_json(sweep.tune_path)
    assert set(results) == set(before)
    for tid, rows in results.items():
        assert [(s, v) for s, _, v in before[tid]["score"]] == [(r["epoch"], r["score"])
                                                                for r in rows]
    lost_points, lost_run, lost_end = sorted(before)[:3]
    # the driver died with epochs 2 and 3 of one trial queued (all keys) ...
    sweep.sql("DELETE FROM metrics WHERE run_uuid = ? AND step >= 2",
              runs[lost_points].info.run_id)
    # ... with a trial's every event queued (its child run never created) ...
    sweep.client._tracking_client.store._hard_delete_run(runs[lost_run].info.run_id)
    # ... and with another one's end queued
    sweep.client.update_run(runs[lost_end].info.run_id, status="RUNNING")
    damaged = sweep.histories()
    assert lost_run not in damaged
    assert all(step == 1 for points in damaged[lost_points].values() for step, _, _ in points)

    assert sweep.reconcile() > 0
    after = sweep.histories()
    assert after == before  # every point back, none twice (same step, timestamp, value)
    runs_after = sweep.runs()
    assert len(runs_after) == 6 and all(r.info.status == "FINISHED" for r in runs_after.values())
    assert runs_after[lost_run].info.run_id != runs[lost_run].info.run_id  # made anew ...
    assert runs_after[lost_run].data.params == runs[lost_run].data.params  # ... with its params
    assert not sweep.spill.exists()

    sweep.reconcile()  # a second resume adds nothing
    assert sweep.histories() == before


def _mark_unfinished(tune_path: str, trial_id: str, checkpoint_epoch: int) -> None:
    """Rewrite Tune's newest experiment state as a driver killed mid-trial leaves it:
    ``trial_id`` RUNNING, its latest checkpoint taken at ``checkpoint_epoch``. The state is
    read and written with Ray's own (de)serializers, as ``TuneController.save_to_dir`` does."""
    from ray.train._internal.session import _TrainingResult
    from ray.tune.trainable.metadata import _TrainingRunMetadata
    from ray.tune.utils.serialization import TuneFunctionEncoder, _loads_with_cloudpickle

    path = max(Path(tune_path).glob("experiment_state-*.json"))
    state = _loads_with_cloudpickle(path.read_text())
    rows = _result_json(tune_path)[trial_id]
    for entry in state["trial_data"]:
        trial_state = json.loads(entry[0])
        if trial_state["trial_id"] != trial_id:
            continue
        trial_state["status"] = "RUNNING"
        metadata = _TrainingRunMetadata.from_json_state(entry[1])
        manager = metadata.checkpoint_manager
        checkpoint = manager.latest_checkpoint_result.checkpoint
        manager._latest_checkpoint_result = _TrainingResult(
            checkpoint, next(r for r in rows if r["epoch"] == checkpoint_epoch))
        metadata.checkpoint_manager = manager
        metadata.last_result = rows[-1]
        entry[0], entry[1] = json.dumps(trial_state, cls=TuneFunctionEncoder), \
            metadata.get_json_state()
        break
    else:
        raise AssertionError(f"no trial {trial_id} in {path}")
    path.write_text(json.dumps(state, cls=TuneFunctionEncoder))


def test_an_unfinished_trial_gets_only_its_results_up_to_the_restored_checkpoint(
        finished_sweep, tmp_path):
    sweep = Copy(finished_sweep, tmp_path / "copy")
    before = sweep.histories()
    runs = sweep.runs()
    unfinished = sorted(before)[0]
    _mark_unfinished(sweep.tune_path, unfinished, checkpoint_epoch=1)
    # everything of it was lost: the driver died with all its results queued
    sweep.sql("DELETE FROM metrics WHERE run_uuid = ?", runs[unfinished].info.run_id)
    sweep.client.update_run(runs[unfinished].info.run_id, status="RUNNING")

    sweep.reconcile()
    after = sweep.histories()
    # epoch 1 is back, as the live callback had sent it; epochs 2 and 3 are not sent:
    # restored from its epoch-1 checkpoint, Tune runs and reports them again
    assert after[unfinished] == {key: [p for p in points if p[0] == 1]
                                 for key, points in before[unfinished].items()}
    assert sweep.runs()[unfinished].info.status == "RUNNING"  # not ended by the reconcile
    assert {t: h for t, h in after.items() if t != unfinished} == \
        {t: h for t, h in before.items() if t != unfinished}


def test_killed_driver_with_its_server_down_loses_no_metric_and_duplicates_none(
        sweep_env, tmp_path):
    server = MlflowServer(f"sqlite:///{tmp_path / 'server.db'}", str(tmp_path / "artifacts"),
                          tmp_path / "server.log")
    env = dict(sweep_env, MLFLOW_TRACKING_URI=server.uri, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
               MLFLOW_HTTP_REQUEST_TIMEOUT="5")
    cmd = [sys.executable, "sweeps/noop.py", "--preset", "slow", "--max-concurrent", "2",
           "--no-table"]
    storage = Path(sweep_env["DHAM_STORAGE_PATH"])

    def persisted() -> int:  # results Tune saved in the storage path
        return sum(len(p.read_text().splitlines()) for p in storage.glob("*/*/result.json"))

    first = None
    try:
        server.start()
        client = store.client(server.uri)
        with open(tmp_path / "first.log", "w") as log:
            first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 300
        while time.time() < deadline and first.poll() is None:
            try:
                runs = store.child_runs(client, store.find_parent_run(client, "noop"))
                if sum(r.info.status == "FINISHED" for r in runs) >= 1:
                    break
            except LookupError:
                pass
            time.sleep(0.5)
        server.stop()  # the store goes away; the sweep goes on, its events queue up
        at_stop = persisted()
        while time.time() < deadline and first.poll() is None and persisted() < at_stop + 3:
            time.sleep(0.2)
        assert first.poll() is None, "the sweep ended before it could be killed"
        wait_for_readable_tune_state(storage)
        os.killpg(first.pid, signal.SIGKILL)  # the driver, its queue and its local Ray
        first.wait()
        server.start()
        parent = store.find_parent_run(client, "noop")
        assert parent.info.status == "RUNNING"
        planned = 6 * 3
        points_before = sum(len(client.get_metric_history(r.info.run_id, "score"))
                            for r in store.child_runs(client, parent))
        saved = persisted()
        assert saved > points_before  # Tune saved results MLflow never got

        proc = run_script(cmd[1:], env)
        assert f"resuming unfinished sweep: MLflow parent run {parent.info.run_id}" in proc.stdout
        runs = store.child_runs(client, parent)
        assert client.get_run(parent.info.run_id).info.status == "FINISHED"
        assert len(runs) == 6 and all(r.info.status == "FINISHED" for r in runs)
        assert len({r.data.tags[store.TAG_TRIAL_ID] for r in runs}) == 6
        steps = {r.data.tags[store.TAG_TRIAL_ID]:
                 {key: sorted(m.step for m in client.get_metric_history(r.info.run_id, key))
                  for key in r.data.metrics} for r in runs}
        assert all(set(keys) == {"score", "epoch", "train_loss"} for keys in steps.values()), steps
        # every trial x epoch exactly once, for every metric
        assert all(s == [1, 2, 3] for keys in steps.values() for s in keys.values()), steps
        print(f"\n[reconcile e2e] planned {planned} score points; in MLflow when the driver "
              f"was killed {points_before}; saved by Tune {saved}; after resume "
              f"{sum(len(k['score']) for k in steps.values())}, duplicated 0, lost 0")
    finally:
        if first is not None and first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
        server.stop()
