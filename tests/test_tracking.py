"""The MLflow schema's readers (tracking.store) and the tracking path (tracking.callback,
tracking.delivery, tracking.replay, tracking.reconcile) against a real local SQLite store, with
failures injected by wrapping the client."""
import json
import subprocess
import sys
import threading

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.protos import databricks_pb2 as pb

from conftest import REPO
from tracking import store
from tracking.callback import MLflowTrialCallback, undelivered_path
from tracking.delivery import Delivery, is_transient, request_budget_s


def _parent_with_child(client, params: dict, metrics: dict[str, list[float]]):
    experiment_id = store.ensure_experiment(client, "cells")
    parent = client.create_run(experiment_id, tags={store.TAG_ROLE: store.ROLE_PARENT})
    child = client.create_run(experiment_id, tags={store.TAG_PARENT: parent.info.run_id,
                                                   store.TAG_ROLE: store.ROLE_TRIAL})
    for key, value in params.items():
        client.log_param(child.info.run_id, key, value)
    for key, values in metrics.items():
        for step, value in enumerate(values):
            client.log_metric(child.info.run_id, key, value, step=step)
    client.set_terminated(child.info.run_id, "FINISHED")
    return client.get_run(parent.info.run_id)


def test_trial_histories_keeps_the_cell_metric_and_the_param_beside_it(tmp_path):
    client = store.client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    parent = _parent_with_child(client, {"a": "[3, 5, 8]", "D": "1024"},
                                {"a": [3.0, 5.0, 8.0], "accuracy": [1.0, 0.9, 0.5]})
    frame = store.trial_histories(client, parent)
    assert list(frame["step"]) == [0, 1, 2]
    assert list(frame["a"]) == [3, 5, 8]  # the cell's coordinate, per step
    assert list(frame["param.a"]) == ["[3, 5, 8]"] * 3  # the trial's param, kept
    assert list(frame["D"]) == [1024] * 3 and "param.D" not in frame  # no clash, no rename
    assert list(frame["accuracy"]) == [1.0, 0.9, 0.5]
    assert set(frame["status"]) == {"FINISHED"}


# -- the tracking path ---------------------------------------------------------------------------
class Trial:
    """What the callback reads of a Tune trial."""

    def __init__(self, trial_id, x):
        self.trial_id, self.config = trial_id, {"x": x, "opt": {"lr": 0.1}}
        self.checkpoint, self.error_file, self.error_msg = None, None, "boom"
        self.last_result = {}

    def __str__(self):
        return f"train_{self.trial_id}"


class Wrapped:
    """A real client whose calls go through ``hook(name, args, kwargs)`` first (it may raise)."""

    def __init__(self, client, hook):
        self._client, self._hook = client, hook

    def __getattr__(self, name):
        real = getattr(self._client, name)

        def call(*args, **kwargs):
            self._hook(name, args, kwargs)
            return real(*args, **kwargs)
        return call


def _down(*_):
    raise requests.ConnectionError("connection refused")


def _setup(tmp_path, hook=None):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = store.client(uri)
    experiment_id = store.ensure_experiment(client, "noop")
    parent = client.create_run(experiment_id, tags={store.TAG_ROLE: store.ROLE_PARENT}).info.run_id
    cb = MLflowTrialCallback(uri, experiment_id, parent, tmp_path / "spill.jsonl", retry_s=0.01,
                             max_retry_s=0.05)
    if hook:
        cb.client = cb._delivery.client = Wrapped(cb.client, hook)
    return client, experiment_id, parent, cb


def _result(epoch, score, stamp=1_700_000_000):
    return {"epoch": epoch, "score": score, "training_iteration": epoch, "timestamp": stamp + epoch}


def _runs(client, parent):
    runs = store.child_runs(client, client.get_run(parent))
    return {r.data.tags[store.TAG_TRIAL_ID]: r for r in runs}


def _points(client, run_id, key="score"):
    return [(m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key)]


def _spill(tmp_path):
    path = tmp_path / "spill.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("exc, transient", [
    (requests.ConnectionError("refused"), True),
    (requests.Timeout("read timed out"), True),
    (MlflowException("API request to http://h/api failed with exception refused"), True),
    (MlflowException("busy", error_code=pb.TEMPORARILY_UNAVAILABLE), True),
    (MlflowException("slow down", error_code=pb.REQUEST_LIMIT_EXCEEDED), True),
    (MlflowException("too many metrics", error_code=pb.INVALID_PARAMETER_VALUE), False),
    (MlflowException("param changed", error_code=pb.INVALID_PARAMETER_VALUE), False),
    (MlflowException("exists", error_code=pb.RESOURCE_ALREADY_EXISTS), False),
    (MlflowException("no such run", error_code=pb.RESOURCE_DOES_NOT_EXIST), False),
    (requests.HTTPError("503", response=type("R", (), {"status_code": 503})()), True),
    (requests.HTTPError("429", response=type("R", (), {"status_code": 429})()), True),
    (requests.HTTPError("413", response=type("R", (), {"status_code": 413})()), False),
    (PermissionError("artifact dir not writable"), False),
    (OSError("no space left on device"), False),
])
def test_transient_and_permanent_errors_are_told_apart(exc, transient):
    assert is_transient(exc) is transient


def test_drain_budget_is_the_clients_worst_case(monkeypatch):
    for name in ("MAX_RETRIES", "BACKOFF_FACTOR", "BACKOFF_JITTER", "TIMEOUT"):
        monkeypatch.delenv(f"MLFLOW_HTTP_REQUEST_{name}", raising=False)
    # defaults 7 retries, factor 2, jitter 1, 120 s: 8 attempts x (connect + read) = 1920 s,
    # sleeps before attempts 3..8: 2*2+1, 2*4+1, 2*8+1, 2*16+1, 2*32+1, min(120, 2*64+1)
    assert request_budget_s() == 8 * 240 + (5 + 9 + 17 + 33 + 65 + 120)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    assert request_budget_s() == 3 * 6 + 2


def test_a_rejected_event_is_recorded_and_blocks_no_other(tmp_path):
    real = store.client(f"sqlite:///{tmp_path / 'mlflow.db'}")

    def reject_bad_metrics(name, args, kwargs):
        if name == "log_batch" and kwargs.get("metrics"):
            if real.get_run(args[0]).data.tags.get(store.TAG_TRIAL_ID) == "bad":
                raise MlflowException("metric batch over the limit",
                                      error_code=pb.INVALID_PARAMETER_VALUE)

    client, _, parent, cb = _setup(tmp_path, reject_bad_metrics)
    bad, good = Trial("bad", 0.0), Trial("good", 1.0)
    cb.on_trial_start(0, [], bad)
    cb.on_trial_start(0, [], good)
    cb.on_trial_result(0, [], bad, _result(1, 0.5))
    for epoch in (1, 2):
        cb.on_trial_result(0, [], good, _result(epoch, 0.1 * epoch))
    cb.on_trial_complete(0, [], bad)
    cb.on_trial_complete(0, [], good)
    assert cb.close("FINISHED", {"trials_failed": 0}, timeout_s=30) == 1
    runs = _runs(client, parent)
    assert [p[0] for p in _points(client, runs["good"].info.run_id)] == [1, 2]
    assert runs["good"].info.status == runs["bad"].info.status == "FINISHED"
    assert runs["bad"].data.params == {"x": "0.0", "opt.lr": "0.1"}
    assert runs["bad"].data.tags[store.TAG_UNDELIVERED].startswith("1 rejected")
    assert store.TAG_UNDELIVERED not in runs["good"].data.tags
    assert client.get_run(parent).info.status == "FINISHED"
    [line] = _spill(tmp_path)
    assert (line["kind"], line["trial_id"]) == ("result", "bad")
    assert line["payload"]["metrics"] == [["epoch", 1.0, 1_700_000_001_000, 1],
                                          ["score", 0.5, 1_700_000_001_000, 1]]
    assert "INVALID_PARAMETER_VALUE" in line["error"] or "over the limit" in line["error"]


def test_run_and_params_are_one_unit(tmp_path):
    failed = []

    def params_fail_once(name, args, kwargs):
        if name == "log_batch" and kwargs.get("params") and not failed:
            failed.append(1)
            raise requests.ConnectionError("reset by peer")

    client, experiment_id, parent, cb = _setup(tmp_path, params_fail_once)
    cb.on_trial_start(0, [], Trial("t1", 2.0))
    assert cb.close(timeout_s=30) == 0 and failed
    [run] = _runs(client, parent).values()
    assert run.data.params == {"x": "2.0", "opt.lr": "0.1"}
    # a run created by a driver that died before its params: a new process finds it and logs them
    orphan = client.create_run(experiment_id, tags={
        store.TAG_PARENT: parent, store.TAG_ROLE: store.ROLE_TRIAL, store.TAG_TRIAL_ID: "t2"})
    cb2 = MLflowTrialCallback(cb.tracking_uri, experiment_id, parent, tmp_path / "spill.jsonl")
    cb2.on_trial_result(0, [], Trial("t2", 3.0), _result(1, 0.3))
    assert cb2.close(timeout_s=30) == 0
    runs = _runs(client, parent)
    assert len(runs) == 2 and runs["t2"].info.run_id == orphan.info.run_id
    assert runs["t2"].data.params == {"x": "3.0", "opt.lr": "0.1"}
    assert [p[0] for p in _points(client, orphan.info.run_id)] == [1]


def test_close_with_nothing_in_flight_counts_zero_and_leaves_no_thread(tmp_path):
    client, _, parent, cb = _setup(tmp_path)
    assert cb.close(timeout_s=30) == 0  # nothing was ever queued
    cb.on_trial_start(0, [], Trial("t1", 0.0))
    assert cb.close("FINISHED", timeout_s=30) == 0
    assert not _spill(tmp_path)
    assert not cb._worker.is_alive()
    assert not [t for t in threading.enumerate() if t.name == "mlflow-tracking"]
    assert client.get_run(parent).info.status == "FINISHED"


def _spill_with_store_down(tmp_path):
    client, _, parent, cb = _setup(tmp_path, _down)
    trial = Trial("t1", 1.0)
    cb.on_trial_start(0, [], trial)
    cb.on_trial_result(0, [], trial, _result(1, 0.25))
    cb.on_trial_complete(0, [], trial)
    left = cb.close("FINISHED", {"trials_failed": 0, "sweep_seconds": 12.0}, timeout_s=0.3)
    return client, parent, cb, left


def test_store_down_at_the_end_spills_every_event_exactly_once(tmp_path):
    client, parent, cb, left = _spill_with_store_down(tmp_path)
    lines = _spill(tmp_path)
    assert left == len(lines) == 4  # 3 trial events + the parent's end; the in-flight one too
    assert [e["kind"] for e in lines] == ["start", "result", "complete", "parent_end"]
    assert lines[-1]["payload"]["status"] == "FINISHED" and lines[-1]["trial_id"] is None
    assert all("connection refused" in e["error"] for e in lines)
    assert not cb._worker.is_alive()
    assert client.get_run(parent).info.status == "RUNNING"  # nothing reached the store


def test_replay_delivers_the_spill_file_idempotently(tmp_path):
    client, parent, _, _ = _spill_with_store_down(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for _ in range(2):  # twice: the second adds nothing
        proc = subprocess.run([sys.executable, "-m", "tracking.replay", str(tmp_path / "spill.jsonl"),
                               "--tracking-uri", uri], cwd=REPO, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "4 events read, 4 delivered or already in MLflow, 0 not delivered" in proc.stdout
        runs = _runs(client, parent)
        assert list(runs) == ["t1"]
        run = runs["t1"]
        assert run.info.status == "FINISHED" and run.data.params["opt.lr"] == "0.1"
        assert _points(client, run.info.run_id) == [(1, 1_700_000_001_000, 0.25)]
        finished = client.get_run(parent)
        assert finished.info.status == "FINISHED"
        assert [m.value for m in client.get_metric_history(parent, "sweep_seconds")] == [12.0]


def test_the_event_in_flight_is_counted_when_the_client_outlasts_its_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")
    release, entered = threading.Event(), threading.Event()

    def hang_on_create(name, args, kwargs):
        if name == "create_run":
            entered.set()
            release.wait(60)  # a request that outlives the client's own budget

    client, _, parent, cb = _setup(tmp_path, hang_on_create)
    trial = Trial("t1", 1.0)
    cb.on_trial_start(0, [], trial)
    entered.wait(60)
    cb.on_trial_result(0, [], trial, _result(1, 0.5))
    assert cb.close(timeout_s=0.1) == 2  # the queued result and the start in flight
    assert [e["kind"] for e in _spill(tmp_path)] == ["start", "result"]  # in order
    release.set()
    cb._worker.join(60)
    assert not cb._worker.is_alive()  # it stopped before its next request
    runs = _runs(client, parent)
    assert not any(store.TAG_UNDELIVERED in r.data.tags for r in runs.values())


def test_replay_reports_what_mlflow_still_refuses(tmp_path):
    _spill_with_store_down(tmp_path)
    lines = _spill(tmp_path)
    lines[1]["payload"]["metrics"][0][0] = "k" * 300  # a metric key over MLflow's 250 limit
    (tmp_path / "bad.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    proc = subprocess.run([sys.executable, "-m", "tracking.replay", str(tmp_path / "bad.jsonl"),
                           "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "4 events read, 3 delivered or already in MLflow, 1 not delivered" in proc.stdout
    assert "result of trial t1" in proc.stderr


def test_delivery_skips_metric_points_already_in_mlflow(tmp_path):
    client, experiment_id, parent, _ = _setup(tmp_path)
    rejected = []
    delivery = Delivery(client, lambda e, exc: rejected.append(exc))
    points = [["score", 0.1, 1000, 1], ["score", 0.2, 2000, 2], ["loss", 0.9, 1000, 1]]
    for _ in range(2):
        delivery.deliver({"kind": "result", "trial_id": "t", "run_id": None, "dedupe": True,
                          "experiment_id": experiment_id, "parent_run_id": parent,
                          "payload": {"name": "t", "params": {"x": "1"},
                                      "metrics": [list(p) for p in points]}})
    run = _runs(client, parent)["t"]
    assert _points(client, run.info.run_id) == [(1, 1000, 0.1), (2, 2000, 0.2)]
    assert _points(client, run.info.run_id, "loss") == [(1, 1000, 0.9)]
    assert not rejected


def test_a_trial_stopped_before_max_t_is_tagged_and_one_that_ran_to_it_is_not(tmp_path):
    client, experiment_id, parent, _ = _setup(tmp_path)
    cb = MLflowTrialCallback(f"sqlite:///{tmp_path / 'mlflow.db'}", experiment_id, parent,
                             tmp_path / "spill.jsonl", max_t=3)
    plain = MLflowTrialCallback(cb.tracking_uri, experiment_id, parent, tmp_path / "spill.jsonl")
    for callback, trial_id, epochs in ((cb, "stopped", 1), (cb, "full", 3),
                                       (plain, "no_scheduler", 1)):
        trial = Trial(trial_id, 0.0)
        for epoch in range(1, epochs + 1):
            trial.last_result = _result(epoch, 0.1 * epoch)
            callback.on_trial_result(0, [], trial, trial.last_result)
        callback.on_trial_complete(0, [], trial)
    assert cb.close(timeout_s=30) == plain.close(timeout_s=30) == 0
    runs = _runs(client, parent)
    tags = {t: {k: v for k, v in r.data.tags.items() if k.startswith("sweep.stopped")}
            for t, r in runs.items()}
    assert tags == {"stopped": {store.TAG_STOPPED_EARLY: "true", store.TAG_STOPPED_AT: "1/3"},
                    "full": {}, "no_scheduler": {}}
    assert all(r.info.status == "FINISHED" for r in runs.values())
    # Tune pickles the callback with its experiment state: max_t survives the round trip
    import pickle
    assert pickle.loads(pickle.dumps(cb)).max_t == 3


@pytest.mark.parametrize("storage, expected", [
    ("/mnt/nfs/ray", "/mnt/nfs/ray/noop-abcd1234/mlflow_undelivered.jsonl"),
    ("results/ray", "results/ray/noop-abcd1234/mlflow_undelivered.jsonl"),
    ("s3://bucket/ray", "{results}/noop-abcd1234/mlflow_undelivered.jsonl"),
    ("gs://bucket/a/b", "{results}/noop-abcd1234/mlflow_undelivered.jsonl"),
])
def test_the_spill_file_is_always_a_local_path(storage, expected, tmp_path, monkeypatch):
    monkeypatch.setenv("DHAM_RESULTS_DIR", str(tmp_path / "res"))
    path = undelivered_path(storage, "noop-abcd1234")
    assert str(path) == expected.format(results=tmp_path / "res")
    assert "://" not in str(path)
