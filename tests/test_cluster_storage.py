"""The production storage path for real: the MLflow server on PostgreSQL with its artifacts in
S3, the Optuna study in PostgreSQL, Ray Tune's storage in S3, a two-node Ray cluster.

PostgreSQL 15 runs from a temp dir (``tests/servers.py``); S3 is moto's server mode, a stand-in
with S3's API that runs offline. The sweep (the no-op grid, 6 trials of 3 one-second epochs) is
killed after some trials finished, resumed by rerunning the same command, and its report table
must equal, cell for cell, the same sweep run on the embedded defaults (SQLite MLflow, journal
Optuna, local Ray storage, local Ray).
"""
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

from tracking import store
from conftest import REPO, run_script
from servers import MlflowServer, Postgres, RayCluster, S3StandIn

BUCKET = "sweeps"
SWEEP = ["sweeps/noop.py", "--preset", "slow"]
GRID = {(x, y) for x in (0.0, 1.0) for y in (0.0, 0.5, 1.0)}


@pytest.fixture
def stack(tmp_path, sweep_env):
    """PostgreSQL (databases ``mlflow`` and ``optuna``), the S3 stand-in with one bucket, an
    MLflow server on both, and a two-node Ray cluster whose nodes can reach the bucket."""
    started = []
    try:
        pg = Postgres()
        started.append(pg)
        try:
            pg.start()
        except FileNotFoundError as exc:  # a clear failure, never a silent skip
            pytest.fail(str(exc))
        for database in ("mlflow", "optuna"):
            pg.create_database(database)
        s3 = S3StandIn(tmp_path / "s3.log").start()
        started.append(s3)
        s3.client().create_bucket(Bucket=BUCKET)
        server = MlflowServer(pg.url("mlflow"), f"s3://{BUCKET}/mlflow", tmp_path / "mlflow.log",
                              env={**s3.env, "MLFLOW_S3_ENDPOINT_URL": s3.endpoint})
        started.append(server.start())
        cluster = RayCluster(dict(sweep_env, **s3.env))
        started.append(cluster)
        cluster.start()
        yield pg, s3, server, cluster
    finally:
        for service in reversed(started):
            service.stop()


def _report_rows(stdout: str) -> list[tuple]:
    """The trials table the runner printed last, as sorted rows of cells, without the Ray Tune
    trial id (a random name, different in every run)."""
    lines = stdout[stdout.rindex("### noop:"):].splitlines()[2:]
    lines = lines[:lines.index("")] if "" in lines else lines
    header, *rows = (line.split() for line in lines)
    keep = [i for i, name in enumerate(header) if name != "trial_id"]
    assert len(rows) == 6 and all(len(row) == len(header) for row in rows), stdout[-3000:]
    return [tuple(header[i] for i in keep)] + sorted(tuple(row[i] for i in keep) for row in rows)


def _children_by_status(client) -> dict[str, int]:
    try:
        runs = store.child_runs(client, store.find_parent_run(client, "noop"))
    except LookupError:
        return {}
    return {status: sum(r.info.status == status for r in runs) for status in
            ("RUNNING", "FINISHED")}


def test_postgres_s3_sweep_survives_driver_kill_and_equals_embedded(stack, sweep_env, tmp_path):
    pg, s3, server, cluster = stack
    embedded = run_script(SWEEP, sweep_env)  # SQLite, journal file, local folder, local Ray

    optuna_url = pg.url("optuna")
    # --max-failures 1, as on any cluster (README): 2 of 6 runs under heavy machine load saw
    # one resumed trial fail once (reason not captured then; printed below now); a restore
    # that fails for good still fails the retry and this test.
    cmd = [sys.executable, *SWEEP, "--storage-path", f"s3://{BUCKET}/ray",
           "--optuna-storage", optuna_url, "--max-failures", "1"]
    env = dict(cluster.env, MLFLOW_TRACKING_URI=server.uri, RAY_ADDRESS=cluster.gcs,
               DHAM_RESULTS_DIR=str(tmp_path / "cluster-results"))
    client = store.client(server.uri)
    with open(tmp_path / "killed.log", "w") as log:
        driver = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        deadline, running, finished = time.time() + 300, 0, 0
        while time.time() < deadline and driver.poll() is None and finished < 2:
            counts = _children_by_status(client)
            running, finished = max(running, counts.get("RUNNING", 0)), counts.get("FINISHED", 0)
            time.sleep(0.5)
        log = (tmp_path / "killed.log").read_text()[-3000:]
        assert driver.poll() is None, "the sweep ended before it could be killed:\n" + log
        assert finished >= 2, log
        assert running == 2, log  # one CPU per node: two trials at once means both nodes ran one
    finally:
        try:
            os.killpg(driver.pid, signal.SIGKILL)  # the driver (the cluster lives on)
        except ProcessLookupError:  # it had ended (the asserts above say why)
            pass
        driver.wait()
    killed = store.find_parent_run(client, "noop")
    assert killed.info.status == "RUNNING"
    assert sum(r.info.status == "FINISHED" for r in store.child_runs(client, killed)) < 6

    resumed = run_script(cmd[1:], env)  # the same command again
    assert f"resuming unfinished sweep: MLflow parent run {killed.info.run_id}" in resumed.stdout
    print("embedded defaults:\n" + embedded.stdout[embedded.stdout.rindex("### noop:"):])
    print("PostgreSQL + S3 stand-in, two nodes, killed and resumed:\n"
          + resumed.stdout[resumed.stdout.rindex("### noop:"):])
    header, *rows = _report_rows(resumed.stdout)
    reasons = [f"{r.data.tags.get('sweep.trial_id')}: {r.data.tags.get(store.TAG_STATUS_REASON)}"
               for r in store.child_runs(client, killed) if r.info.status == "FAILED"]
    assert [header, *rows] == _report_rows(embedded.stdout), (
        f"failed trials: {reasons}\n" + resumed.stdout[-6000:])
    for row in (dict(zip(header, row)) for row in rows):  # the no-op score after 3 epochs
        x, y = float(row["x"]), float(row["y"])
        assert float(row["score"]) == pytest.approx((1 - 1 / 16) / (1 + (x - 1) ** 2 + y ** 2),
                                                    abs=1e-6)

    parent = client.get_run(killed.info.run_id)
    runs = store.child_runs(client, parent)
    assert parent.info.status == "FINISHED"
    assert len(runs) == 6 and all(r.info.status == "FINISHED" for r in runs)
    assert {(float(r.data.params["x"]), float(r.data.params["y"])) for r in runs} == GRID

    # MLflow's runs are rows of the PostgreSQL database, read here without MLflow
    rows = pg.query("mlflow", "SELECT status FROM runs WHERE lifecycle_stage = 'active' AND "
                    "experiment_id = %s", int(parent.info.experiment_id))
    assert sorted(status for (status,) in rows) == ["FINISHED"] * 7  # parent + 6 trials
    # ... their artifacts are objects in the bucket: a checkpoint per trial, the report tables
    artifacts = s3.keys(BUCKET, "mlflow/")
    for run in runs:
        assert any(f"/{run.info.run_id}/artifacts/checkpoint/" in key for key in artifacts)
    assert any(f"/{parent.info.run_id}/artifacts/tables/" in key and key.endswith(".parquet")
               for key in artifacts)
    # Ray Tune's experiment state and trial checkpoints are in the bucket too
    tune_keys = s3.keys(BUCKET, f"ray/{parent.data.tags[store.TAG_TUNE_DIR]}/")
    assert any("experiment_state" in key for key in tune_keys)
    assert any("/checkpoint_" in key for key in tune_keys)
    # the Optuna study lives in PostgreSQL and holds every grid cell, finished
    study = optuna.load_study(study_name=parent.data.params["optuna_study"], storage=optuna_url)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert {(t.params["x"], t.params["y"]) for t in done} == GRID
