"""Tracking events and their delivery to MLflow: what an event is, what a failure means.

An *event* is one JSON-ready dict, the same in the driver's queue, in the spill file
(``mlflow_undelivered.jsonl``, one event per line) and on replay (:mod:`tracking.replay`)::

    {"kind": "start" | "result" | "retry" | "complete" | "error" | "parent_end",
     "trial_id": "<tune trial id>" (None for the parent), "run_id": "<child run>" or None,
     "experiment_id": "...", "parent_run_id": "...", "dedupe": false,
     "payload": {"name": "<trial name>", "params": {key: str}, "tags": {key: str},
                 "metrics": [[key, value, timestamp_ms, step], ...],
                 "checkpoint": "<uri>" or None, "status": "RUNNING" | "FINISHED" | "FAILED"},
     "error": "<why it was not delivered>"}          # spill file only

:class:`Delivery` writes one event part by part (the trial's run with its params, tags,
metrics in batches within MLflow's limits, the checkpoint, the status) and drops each part
from the event once MLflow has it, so an event retried or spilled halfway holds only what is
still missing. A failure is *transient* (:func:`is_transient`: connection errors, time-outs,
HTTP 408/429/5xx) and raised for the caller to retry, or *permanent* (MLflow rejects the part
for good: a 4xx such as INVALID_PARAMETER_VALUE, a failed artifact copy) and handed to
``on_rejected`` while the event's other parts go on.
"""
from __future__ import annotations

import math
import numbers
import time
from typing import Any, Callable

import requests
from mlflow.entities import Metric, Param, RunTag
from mlflow.environment_variables import (MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR,
                                          MLFLOW_HTTP_REQUEST_BACKOFF_JITTER,
                                          MLFLOW_HTTP_REQUEST_MAX_RETRIES,
                                          MLFLOW_HTTP_REQUEST_TIMEOUT)
from mlflow.exceptions import MlflowException
from mlflow.utils.validation import MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH
from urllib3.util.retry import Retry

from tracking import store
from tracking.checkpoints import CHECKPOINT_DIR

# Keys Tune adds to every result; they are bookkeeping, not experiment metrics.
TUNE_AUTO_KEYS = {
    "training_iteration", "timestamp", "date", "hostname", "node_ip", "pid", "done",
    "time_this_iter_s", "time_since_restore", "iterations_since_restore", "trial_id",
    "experiment_tag", "should_checkpoint", "checkpoint_dir_name", "timesteps_total",
    "episodes_total", "timesteps_since_restore", "experiment_id", "config", "time_total_s",
}
# MLflow error codes that map to a 5xx status but mean "this request will never succeed".
PERMANENT_5XX = {"INVALID_STATE", "NOT_IMPLEMENTED", "DATA_LOSS"}


class Abandoned(Exception):
    """The caller gave up on this event (the end-of-sweep drain took it over)."""


def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def params_of(config: dict) -> dict[str, str]:
    """A trial config as MLflow params: flattened with dots, values as (truncated) strings."""
    return {k: str(v)[:6000] for k, v in flatten(config or {}).items()}


def numeric_metrics(result: dict) -> dict[str, float]:
    return {k: float(v) for k, v in result.items()
            if k not in TUNE_AUTO_KEYS and isinstance(v, numbers.Real)
            and not isinstance(v, bool) and math.isfinite(float(v))}


def result_metrics(result: dict) -> list[list]:
    """One Tune result as metric points ``[key, value, timestamp_ms, step]``.

    The step is the result's ``epoch`` (else Tune's iteration); the timestamp is the one Tune
    stamped on the result (whole seconds), so the same result read back from Tune's
    ``result.json`` gives the same points (:mod:`tracking.reconcile` relies on this)."""
    step = int(result.get("epoch", result.get("training_iteration", 0)))
    stamp = int(result["timestamp"]) * 1000 if "timestamp" in result else int(time.time() * 1000)
    return [[k, v, stamp, step] for k, v in numeric_metrics(result).items()]


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the store was unreachable or overloaded, not the event refused."""
    if isinstance(exc, MlflowException):
        status = exc.get_http_status_code()
        return status in (408, 429) or (status >= 500 and exc.error_code not in PERMANENT_5XX)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status is not None:
        return status in (408, 429) or status >= 500
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError,
                            TimeoutError))


def request_budget_s() -> float:
    """The longest one MLflow HTTP request can take with the client's own retries, from
    ``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, ``..._BACKOFF_FACTOR``, ``..._BACKOFF_JITTER`` and
    ``..._TIMEOUT``: every attempt waits out its connect and its read time-out, and urllib3
    sleeps ``factor * 2**(n-1) + jitter`` (at most ``Retry.DEFAULT_BACKOFF_MAX``) before
    attempt n + 1 for n >= 2. (A server's ``Retry-After`` header can ask for longer.)"""
    retries = MLFLOW_HTTP_REQUEST_MAX_RETRIES.get()
    factor = MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR.get()
    jitter = MLFLOW_HTTP_REQUEST_BACKOFF_JITTER.get()
    sleeps = sum(min(Retry.DEFAULT_BACKOFF_MAX, factor * 2 ** (n - 1) + jitter)
                 for n in range(2, retries + 1))
    return (retries + 1) * 2 * MLFLOW_HTTP_REQUEST_TIMEOUT.get() + sleeps


def checkpoint_uri(checkpoint) -> str | None:
    """Where a Tune checkpoint lives, as a path or ``scheme://path`` a later process can open."""
    if checkpoint is None:
        return None
    kind = checkpoint.filesystem.type_name
    return checkpoint.path if kind == "local" else f"{kind}://{checkpoint.path}"


def trial_event(kind: str, trial_id: str | None, experiment_id: str, parent_run_id: str,
                **payload) -> dict:
    return {"kind": kind, "trial_id": trial_id, "run_id": None, "experiment_id": experiment_id,
            "parent_run_id": parent_run_id, "dedupe": False, "payload": payload}


class Delivery:
    """Writes events to one MLflow store; remembers each trial's run within this process.

    A trial's run and its params are one unit: the run is looked up by its ``sweep.trial_id``
    tag under the parent (created only when missing; with ``look_up=False``, for a parent run
    this process has just created, only after a create that failed), and its params are logged (again, if
    need be: the same value twice is accepted) before anything else of that trial in this
    process, so a run created just before a failure still gets its params on the retry."""

    def __init__(self, client, on_rejected: Callable[[dict, BaseException], None],
                 abort: Callable[[], bool] = lambda: False, look_up: bool = True):
        self.client = client
        self.on_rejected = on_rejected
        self.abort = abort
        # look_up=False: the parent run is new, made by this process, so a trial's run exists
        # only if this process created it; it is searched for only after a create that failed
        # (the run may exist though the answer was lost)
        self.look_up = look_up
        self._runs: dict[tuple, str] = {}
        self._with_params: set[str] = set()
        self._maybe_created: set[tuple] = set()

    def deliver(self, event: dict) -> None:
        """Write what ``event`` still holds; raise only a transient error (or Abandoned)."""
        try:
            run_id = (event["parent_run_id"] if event["trial_id"] is None
                      else self._trial_run(event))
        except Abandoned:
            raise
        except Exception as exc:  # noqa: BLE001
            if is_transient(exc):
                raise
            self._reject(event, dict(event["payload"]), exc)
            event["payload"] = {}
            return
        event["run_id"] = run_id
        payload = event["payload"]
        if payload.get("tags"):
            tags = [RunTag(k, v) for k, v in payload["tags"].items()]
            self._part(event, {"tags": payload["tags"]},
                       lambda: self.client.log_batch(run_id, tags=tags))
            payload.pop("tags")
        metrics = payload.get("metrics") or []
        if event.get("dedupe"):
            metrics[:] = self._missing(run_id, metrics)
        while metrics:
            chunk = metrics[:MAX_METRICS_PER_BATCH]
            batch = [Metric(k, v, ts, step) for k, v, ts, step in chunk]
            self._part(event, {"metrics": chunk},
                       lambda: self.client.log_batch(run_id, metrics=batch))
            del metrics[:len(chunk)]
        if payload.get("checkpoint"):
            self._part(event, {"checkpoint": payload["checkpoint"]},
                       lambda: self._log_checkpoint(run_id, payload["checkpoint"]))
            payload.pop("checkpoint")
        status = payload.get("status")
        if status:
            self._part(event, {"status": status}, lambda: (
                self.client.update_run(run_id, status=status) if status == "RUNNING"
                else self.client.set_terminated(run_id, status=status)))
            payload.pop("status")

    def _trial_run(self, event: dict) -> str:
        trial_id, payload = event["trial_id"], event["payload"]
        key = (event["parent_run_id"], trial_id)
        look_up = self.look_up or key in self._maybe_created
        run_id = self._runs.get(key) or (look_up and self._find(event))
        if not run_id:
            run_id = self._create(event)
            if payload.get("status") == "RUNNING":
                payload.pop("status")  # a new run is RUNNING already: one call less
        self._runs[key] = run_id
        if run_id not in self._with_params:
            items = sorted((payload.get("params") or {}).items())
            for i in range(0, len(items), MAX_PARAMS_TAGS_PER_BATCH):
                chunk = dict(items[i:i + MAX_PARAMS_TAGS_PER_BATCH])
                batch = [Param(k, v) for k, v in chunk.items()]
                self._part(event, {"params": chunk},
                           lambda: self.client.log_batch(run_id, params=batch), run_id)
            self._with_params.add(run_id)
        return run_id

    def _find(self, event: dict) -> str | None:
        self._check()
        runs = self.client.search_runs(
            [event["experiment_id"]],
            filter_string=(f"tags.`{store.TAG_PARENT}` = '{event['parent_run_id']}' and "
                           f"tags.`{store.TAG_TRIAL_ID}` = '{event['trial_id']}'"),
            max_results=1)
        return runs[0].info.run_id if runs else None

    def _create(self, event: dict) -> str:
        self._check()
        self._maybe_created.add((event["parent_run_id"], event["trial_id"]))
        return self.client.create_run(
            event["experiment_id"], run_name=event["payload"].get("name"),
            tags={store.TAG_PARENT: event["parent_run_id"], store.TAG_ROLE: store.ROLE_TRIAL,
                  store.TAG_TRIAL_ID: event["trial_id"]}).info.run_id

    def _missing(self, run_id: str, metrics: list[list]) -> list[list]:
        """The points not in MLflow yet, keyed by (key, step, timestamp): replaying or
        reconciling twice adds nothing."""
        seen: dict[str, set] = {}
        out = []
        for point in metrics:
            key, _, stamp, step = point
            if key not in seen:
                self._check()
                seen[key] = {(m.step, m.timestamp)
                             for m in self.client.get_metric_history(run_id, key)}
            if (step, stamp) not in seen[key]:
                seen[key].add((step, stamp))
                out.append(point)
        return out

    def _log_checkpoint(self, run_id: str, uri: str) -> None:
        from ray.tune import Checkpoint

        # as_directory() copies a remote (s3://, gs://) checkpoint to a temp dir first
        with Checkpoint(uri).as_directory() as path:
            self.client.log_artifacts(run_id, path, CHECKPOINT_DIR)

    def _part(self, event: dict, part: dict, call: Callable[[], Any],
              run_id: str | None = None) -> None:
        self._check()
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - sorted below
            if is_transient(exc):
                raise
            self._reject(event, part, exc, run_id)

    def _reject(self, event: dict, part: dict, exc: BaseException,
                run_id: str | None = None) -> None:
        keep = {k: event["payload"][k] for k in ("name", "params") if k in event["payload"]}
        self.on_rejected({**event, "run_id": run_id or event.get("run_id"),
                          "payload": {**keep, **part}}, exc)

    def _check(self) -> None:
        if self.abort():
            raise Abandoned
