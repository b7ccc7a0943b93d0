"""Cluster mode on one machine: `ray job submit` to a head node on 127.0.0.1, and a worker node
lost mid-sweep (its trials are rescheduled and every result reaches MLflow)."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tracking import store
from conftest import REPO
from servers import free_port, kill_matching, node_ports

VENV_BIN = Path(sys.executable).parent
PACKAGES = ("dham_core", "trainables", "sweeps", "tracking", "analysis")
RAY = str(VENV_BIN / "ray")


def _cluster_env() -> dict:
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0",
               PATH=f"{VENV_BIN}:{os.environ['PATH']}",  # `python` in jobs = this venv's
               # the GCS declares a killed node dead after 3 missed 1-s health checks instead of
               # Ray's default 5 missed 3-s ones: the lost-worker test waits ~10 s less
               RAY_health_check_period_ms="1000", RAY_health_check_failure_threshold="3")
    env.pop("RAY_ADDRESS", None)
    return env


@pytest.fixture(scope="module")
def head():
    """A head node with 1 CPU and its own short temp dir (Unix socket paths are limited)."""
    temp = tempfile.mkdtemp(prefix="rh", dir="/tmp")
    port, dash = free_port(), free_port()
    env = _cluster_env()
    subprocess.run([RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                    "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
                    "--num-cpus", "1", "--temp-dir", temp, "--disable-usage-stats", *node_ports()],
                   env=env, check=True, capture_output=True, timeout=180)
    yield {"gcs": f"127.0.0.1:{port}", "dashboard": f"http://127.0.0.1:{dash}", "env": env,
           "temp": temp}
    kill_matching(temp)
    shutil.rmtree(temp, ignore_errors=True)


def _submit(head: dict, args: list[str], cwd, timeout: int) -> subprocess.CompletedProcess:
    """``ray job submit`` to the head; retried while the head's job agent is still starting
    (Ray refuses with "No available agent" for a while after ``ray start`` on a loaded
    machine; a refused submission created no job, so the retry cannot run it twice)."""
    deadline = time.monotonic() + 120
    while True:
        proc = subprocess.run([RAY, "job", "submit", "--address", head["dashboard"], *args],
                              cwd=cwd, env=head["env"], capture_output=True, text=True,
                              timeout=timeout)
        if "No available agent" not in proc.stderr or time.monotonic() > deadline:
            return proc
        time.sleep(3)


def test_ray_job_submit_same_result_same_store(head, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    runtime_env = {"env_vars": {"MLFLOW_TRACKING_URI": uri, "GIT_COMMIT": "test-commit",
                                "DHAM_STORAGE_PATH": str(tmp_path / "ray"),
                                "DHAM_RESULTS_DIR": str(tmp_path / "results"),
                                "DHAM_OPTUNA_STORAGE": str(tmp_path / "optuna.journal")}}
    proc = _submit(head, ["--working-dir", ".", "--runtime-env-json", json.dumps(runtime_env),
                          "--", "python", "sweeps/noop.py", "--preset", "smoke"],
                   cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "6 trials finished, 0 failed" in proc.stdout
    assert "noop: 6 trials (no paper table)" in proc.stdout
    client = store.client(uri)
    parent = store.find_parent_run(client, "noop")
    assert parent.data.tags[store.TAG_GIT_COMMIT] == "test-commit"
    # artifacts land beside the store, not in the job's temporary copy of the working dir
    assert client.get_experiment_by_name("noop").artifact_location.startswith(
        (tmp_path / "mlruns").as_uri())
    assert any(a.path.endswith(".md") for a in client.list_artifacts(parent.info.run_id, "tables"))
    runs = store.child_runs(client, parent)
    assert len(runs) == 6 and all(r.info.status == "FINISHED" for r in runs)


def test_job_driver_imports_the_working_dir_copy(head, tmp_path):
    """Under ``ray job submit --working-dir``, a script imports the project's packages from
    Ray's copy of the working dir (Ray puts it first on the driver's PYTHONPATH), not from the
    editable install of this checkout. The probe script sits in a subfolder, as sweep scripts
    do, so the import cannot come from the script's own folder or the current directory."""
    copy = tmp_path / "working_dir"
    for package in PACKAGES:
        shutil.copytree(REPO / package, copy / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "probe").mkdir()
    (copy / "probe" / "where.py").write_text(
        "import sweeps.runner, tracking.store\n"
        "print('imported from', sweeps.runner.__file__)\n"
        "print('imported from', tracking.store.__file__)\n")
    proc = _submit(head, ["--working-dir", str(copy), "--", "python", "probe/where.py"],
                   cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    paths = re.findall(r"imported from (\S+)", proc.stdout)
    assert len(paths) == 2, proc.stdout[-4000:]
    for path in paths:
        assert not path.startswith(str(REPO)), path  # not the editable install
        # Ray's unpacked copy of the working dir, under the head node's temp dir
        assert path.startswith(head["temp"]) and "working_dir" in path, path


def test_lost_worker_node_trials_rescheduled(head, sweep_env, tmp_path):
    worker_temp = tempfile.mkdtemp(prefix="rw", dir="/tmp")
    env = head["env"]
    subprocess.run([RAY, "start", "--address", head["gcs"], "--node-ip-address", "127.0.0.1",
                    "--num-cpus", "2", "--temp-dir", worker_temp, "--disable-usage-stats",
                    *node_ports()],
                   env=env, check=True, capture_output=True, timeout=180)
    try:
        sweep = subprocess.Popen(
            [sys.executable, "sweeps/noop.py", "--preset", "slow", "--max-failures", "3",
             "--set", "seconds_per_epoch=3", "--set", "x=1.0",  # 3 cells: one per CPU
             "--no-table"], cwd=REPO, env=dict(sweep_env, **{k: env[k] for k in
                                                             ("RAY_AUTH_MODE", "PATH")},
                                               RAY_ADDRESS=head["gcs"]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        client = store.client(sweep_env["MLFLOW_TRACKING_URI"])
        client.search_experiments()
        deadline = time.time() + 300
        running = 0
        while time.time() < deadline and sweep.poll() is None:
            try:
                parent = store.find_parent_run(client, "noop")
                running = sum(r.info.status == "RUNNING" for r in store.child_runs(client, parent))
            except LookupError:
                pass
            if running >= 3:  # 1 CPU on the head, 2 on the worker: the worker is busy
                break
            time.sleep(0.5)
        if running < 3:
            sweep.kill()
            pytest.fail("trials never ran on both nodes:\n" + sweep.communicate()[0][-4000:])
        assert kill_matching(worker_temp) > 0  # the worker node dies, trials and all
        out, _ = sweep.communicate(timeout=600)
    finally:
        kill_matching(worker_temp)
        shutil.rmtree(worker_temp, ignore_errors=True)
    assert sweep.returncode == 0, out[-4000:]
    assert "3 trials finished, 0 failed" in out
    parent = store.find_parent_run(client, "noop")
    runs = store.child_runs(client, parent)
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    assert sum(bool(r.data.tags.get("sweep.retries")) for r in runs) >= 2  # the worker's two
    for run in runs:
        assert [m.step for m in client.get_metric_history(run.info.run_id, "score")][-1] == 3
