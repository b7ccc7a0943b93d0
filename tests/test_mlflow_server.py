"""Sweeps against an ``mlflow server`` (SQL backend) on 127.0.0.1: up, down at launch, lost
mid-sweep."""
import json
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
        with open(self.tmp / "server.log", "a") as log:  # the server keeps its own handle
            self.proc = subprocess.Popen(
                [MLFLOW, "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
                 "--backend-store-uri", f"sqlite:///{self.tmp / 'server.db'}",
                 "--artifacts-destination", str(self.tmp / "artifacts")],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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


class Proxy:
    """An HTTP proxy in front of the server that can, on cue, drop every connection
    (``mode = "drop"``) or answer 400 INVALID_PARAMETER_VALUE to metric batches holding
    ``score`` (``mode = "reject_score"``)."""

    def __init__(self, upstream: str):
        import http.server
        import threading

        proxy = self
        self.mode = "pass"

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.mode == "drop" and self.path != "/health":
                    self.close_connection = True
                    return  # no answer: the client sees the connection closed
                if (proxy.mode == "reject_score" and self.path.endswith("/runs/log-batch")
                        and any(m["key"] == "score"
                                for m in json.loads(body or b"{}").get("metrics", []))):
                    out = json.dumps({"error_code": "INVALID_PARAMETER_VALUE",
                                      "message": "rejected on cue"}).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection")}
                resp = requests.request(self.command, upstream + self.path, data=body,
                                        headers=headers, timeout=60)
                self.send_response(resp.status_code)
                for key in ("Content-Type",):
                    if key in resp.headers:
                        self.send_header(key, resp.headers[key])
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy(server):
    p = Proxy(server.uri)
    yield p
    p.close()


FAST_CLIENT = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "3",
               "DHAM_TRACKING_DRAIN_S": "5"}


def _replay(spill: Path, uri: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "tracking.replay", str(spill),
                           "--tracking-uri", uri], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _histories(client, parent, key="score"):
    """{trial id: [(step, timestamp), ...]} of every child run."""
    return {r.data.tags[store.TAG_TRIAL_ID]: [(m.step, m.timestamp) for m in
                                              client.get_metric_history(r.info.run_id, key)]
            for r in store.child_runs(client, parent)}


def _note(line: str) -> None:
    print(f"[fault counts] {line}")


def test_rejected_metric_batches_block_nothing_and_replay_later(proxy, server, sweep_env, tmp_path):
    proxy.mode = "reject_score"
    env = dict(sweep_env, MLFLOW_TRACKING_URI=proxy.uri, **FAST_CLIENT)
    proc = run_script(["sweeps/noop.py", "--preset", "smoke", "--no-table"], env)
    client = store.client(server.uri)
    parent = store.find_parent_run(client, "noop")
    runs = store.child_runs(client, parent)
    # nothing blocked: every trial's run, params and final status arrived despite the rejections
    assert len(runs) == 6 and all(r.info.status == "FINISHED" for r in runs)
    assert all(r.data.tags[store.TAG_UNDELIVERED].startswith("3 rejected") for r in runs)
    assert parent.info.status == "FINISHED"
    spill = next(Path(sweep_env["DHAM_STORAGE_PATH"]).glob("*/mlflow_undelivered.jsonl"))
    lines = [json.loads(x) for x in spill.read_text().splitlines()]
    assert len(lines) == 18 and {e["kind"] for e in lines} == {"result"}
    assert "18 tracking events are not in MLflow (18 rejected, 0 undelivered)" in proc.stdout
    assert all(h == [] for h in _histories(client, parent).values())
    proxy.mode = "pass"
    for _ in range(2):
        _replay(spill, proxy.uri)
        hist = _histories(client, parent)
        assert sorted(len(set(h)) for h in hist.values()) == [3] * 6
        assert all(sorted(s for s, _ in h) == [1, 2, 3] for h in hist.values())  # no duplicate
    _note("rejected metric batches: planned 6 trials x 3 results = 18; rejected and spilled 18; "
          f"runs finished during the sweep {len(runs)}; after replay (twice) delivered "
          f"{sum(len(h) for h in hist.values())}, lost 0, duplicated 0")


def test_server_down_at_the_end_spills_and_replay_finishes_the_parent(proxy, server, sweep_env):
    env = dict(sweep_env, MLFLOW_TRACKING_URI=proxy.uri, **FAST_CLIENT)
    sweep = subprocess.Popen([sys.executable, "sweeps/noop.py", "--preset", "slow",
                              "--max-concurrent", "2"], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = store.client(server.uri)
    deadline = time.time() + 300
    while time.time() < deadline and sweep.poll() is None:
        try:
            if store.child_runs(client, store.find_parent_run(client, "noop")):
                break
        except LookupError:
            pass
        time.sleep(0.2)
    proxy.mode = "drop"  # gone from the first trial's run on, until after the sweep
    out, _ = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, out[-4000:]
    assert "Traceback" not in out and "python -m tracking.replay" in out
    parent = store.find_parent_run(client, "noop")
    assert parent.info.status == "RUNNING"  # the end could not reach the server ...
    spill = next(Path(sweep_env["DHAM_STORAGE_PATH"]).glob("*/mlflow_undelivered.jsonl"))
    lines = [json.loads(x) for x in spill.read_text().splitlines()]
    assert lines[-1]["kind"] == "parent_end" and lines[-1]["payload"]["status"] == "FINISHED"
    assert f"{len(lines)} tracking events are not in MLflow (0 rejected, {len(lines)} undelivered)" in out
    delivered_before = sum(len(h) for h in _histories(client, parent).values())
    proxy.mode = "pass"
    for _ in range(2):
        _replay(spill, proxy.uri)
        parent = store.find_parent_run(client, "noop")
        runs = store.child_runs(client, parent)
        hist = _histories(client, parent)
        assert parent.info.status == "FINISHED"  # ... replay finished it
        assert [m.value for m in client.get_metric_history(parent.info.run_id, "trials_failed")] == [0]
        assert len(runs) == 6 and all(r.info.status == "FINISHED" for r in runs)
        assert all(sorted(s for s, _ in h) == [1, 2, 3] for h in hist.values())
    _note(f"server down at the end: planned 6 trials x 3 results = 18; delivered live "
          f"{delivered_before}; spilled {len(lines)} events (parent end included); after replay "
          f"(twice) delivered {sum(len(h) for h in hist.values())}, lost 0, duplicated 0; "
          f"parent {parent.info.status}")
