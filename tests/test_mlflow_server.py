"""Sweeps against an ``mlflow server`` (SQL backend) on 127.0.0.1: up, down at launch, lost
mid-sweep."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tracking import store
from conftest import REPO, run_script

MLFLOW = str(Path(sys.executable).parent / "mlflow")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A lean MLflow tracking server: one worker, no job execution (MLflow 3.17's default start
    runs many processes)."""

    def __init__(self, tmp_path: Path, port: int):
        self.tmp, self.port = tmp_path, port
        self.uri = f"http://127.0.0.1:{port}"
        self.proc = None

    def start(self):
        env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        self.proc = subprocess.Popen(
            [MLFLOW, "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{self.tmp / 'server.db'}",
             "--artifacts-destination", str(self.tmp / "artifacts")],
            env=env, stdout=open(self.tmp / "server.log", "a"), stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if requests.get(self.uri + "/health", timeout=2).ok:
                    return
            except requests.RequestException:
                time.sleep(0.5)
        raise RuntimeError("mlflow server did not start: " + (self.tmp / "server.log").read_text())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path, _free_port())
    srv.start()
    yield srv
    srv.stop()


def test_sweep_against_server_and_server_lost_mid_sweep(server, sweep_env, tmp_path):
    env = dict(sweep_env, MLFLOW_TRACKING_URI=server.uri,
               MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="5")
    cmd = [sys.executable, "sweeps/noop.py", "--preset", "slow", "--max-concurrent", "2"]
    sweep = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    client = store.client(server.uri)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            parent = store.find_parent_run(client, "noop")
            if any(r.info.status == "FINISHED" for r in store.child_runs(client, parent)):
                break
        except LookupError:
            pass
        time.sleep(0.5)
    server.stop()  # lost mid-sweep ...
    time.sleep(6)
    server.start()  # ... and back
    out, _ = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, out[-4000:]
    assert "delivery failed" in out  # the outage was seen ...
    assert "undelivered" not in out  # ... and nothing was lost
    parent = store.find_parent_run(client, "noop")
    runs = store.child_runs(client, parent)
    assert parent.info.status == "FINISHED"
    assert len(runs) == 6 and all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "score")]
        assert steps == [1, 2, 3]
    names = [a.path for a in client.list_artifacts(parent.info.run_id, "tables")]
    assert any(n.endswith(".md") for n in names)


def test_server_down_at_launch_fails_fast(sweep_env, tmp_path):
    env = dict(sweep_env, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{_free_port()}")
    started = time.time()
    proc = run_script(["sweeps/noop.py", "--preset", "smoke"], env, check=False)
    assert proc.returncode == 2
    assert "is not reachable" in proc.stderr and "MLFLOW_TRACKING_URI" in proc.stderr
    assert time.time() - started < 60
    assert not (tmp_path / "ray").exists()  # no Ray job, no trial
