"""Driver-side MLflow tracking: one parent run per sweep, one nested child run per trial.

Ray's own ``MLflowLoggerCallback`` makes flat runs, and ``setup_mlflow`` opens runs inside the
workers with no parent run; neither gives the layout of ``tracking.store``. This Tune
callback runs in the driver, so trainables stay free of MLflow and every metric travels one
path: ``tune.report`` -> this callback -> MLflow.

The Tune hooks only queue events (:mod:`tracking.delivery`); one worker thread writes them in
order. A transient failure (server restarting, network blip, HTTP 429/5xx) is retried with
back-off; a part MLflow rejects for good is recorded in the spill file and counted on its run
(tag ``sweep.undelivered``) and never holds up the events behind it. :meth:`close` ends the
sweep's tracking: it queues the parent run's end, waits for the queue (bounded), then for the
event in flight at most the MLflow client's own retry budget, stops the thread and writes
whatever is left to the spill file (:func:`undelivered_path`) with an exact count.
``python -m tracking.replay FILE`` delivers that file later.

A trial that completes before the scheduler's ``max_t`` (ASHA stopped it at a rung) gets the
tags ``sweep.stopped_early = "true"`` and ``sweep.stopped_at = "<last>/<max_t>"``
(:func:`stopped_early_tags`).
"""
from __future__ import annotations

import json
import os
import queue
import threading
import time
from pathlib import Path

from ray.tune import Callback

from tracking import store
from tracking.cells import result_points
from tracking.delivery import (Abandoned, Delivery, checkpoint_uri, is_transient, params_of,
                               request_budget_s, trial_event)

DRAIN_ENV = "DHAM_TRACKING_DRAIN_S"  # how long close() waits for the queue (default 60 s)


class MLflowTrialCallback(Callback):
    """Logs every Tune trial as a nested child run of ``parent_run_id``.

    The Tune hooks only put events on a queue; one background thread delivers them to MLflow
    in order, so tracking never stalls the driver's event loop, which also schedules the
    trials (docs/platform.md, "Per-trial overhead")."""

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str,
                 undelivered_path: str | os.PathLike, retry_s: float = 2.0,
                 max_retry_s: float = 30.0, log_checkpoint: bool = False,
                 max_t: int | None = None, time_attr: str = "training_iteration",
                 new_parent: bool = False):
        self.tracking_uri = tracking_uri
        # a parent run made just now holds no child runs: create them without a search first
        # (not saved with Tune's state: a restored callback looks its trials' runs up)
        self.new_parent = new_parent
        self.log_checkpoint = log_checkpoint
        self.max_t = max_t  # the scheduler's max_t (None: no scheduler stops trials early)
        self.time_attr = time_attr
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.undelivered_path = Path(undelivered_path)
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self._init_runtime()

    def _init_runtime(self):
        self.client = store.client(self.tracking_uri)
        self._events: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._final = threading.Event()  # close() gave up waiting: spill instead of retrying
        self._claimed = False  # close() took the event in flight over from the worker
        self._current: dict | None = None
        self._params: dict[str, dict] = {}
        self._rejected_on: dict[str, int] = {}
        self._worker: threading.Thread | None = None
        self._last_error = ""
        self.failures = self.rejected = self.spilled = 0
        self._delivery = Delivery(self.client, self._on_rejected, lambda: self._claimed,
                                  look_up=not self.new_parent)

    # Tune pickles its callbacks with the experiment state: keep the settings, not the thread.
    _SETTINGS = ("tracking_uri", "log_checkpoint", "experiment_id", "parent_run_id",
                 "undelivered_path", "retry_s", "max_retry_s", "max_t", "time_attr")

    def __getstate__(self):
        return {k: self.__dict__[k] for k in self._SETTINGS}

    def __setstate__(self, state):
        self.__dict__.update({"max_t": None, "time_attr": "training_iteration", **state,
                              "new_parent": False})
        self._init_runtime()

    # -- Tune hooks (driver thread: enqueue only) ---------------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info):
        self._put("start", trial, status="RUNNING")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._put("result", trial, metrics=result_points(result))

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._put("retry", trial, tags={store.TAG_RETRIES: str(trial.run_metadata.num_failures)})

    def on_trial_complete(self, iteration, trials, trial, **info):
        uri = checkpoint_uri(trial.checkpoint) if self.log_checkpoint else None
        self._put("complete", trial, checkpoint=uri, status="FINISHED",
                  tags=stopped_early_tags(trial.last_result, self.max_t, self.time_attr))

    def on_trial_error(self, iteration, trials, trial, **info):
        self._put("error", trial, tags={store.TAG_STATUS_REASON: error_text(trial)[-5000:]},
                  status="FAILED")

    def _put(self, kind: str, trial, **payload):
        if trial.trial_id not in self._params:
            self._params[trial.trial_id] = params_of(dict(trial.config))
        self.put(trial_event(kind, trial.trial_id, self.experiment_id, self.parent_run_id,
                             name=str(trial), params=self._params[trial.trial_id], **payload))

    def put(self, event: dict) -> None:
        """Queue one event (:mod:`tracking.delivery` format) for the worker thread."""
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="mlflow-tracking",
                                            daemon=True)  # close() joins it
            self._worker.start()
        self._events.put(event)

    # -- delivery (worker thread) -------------------------------------------------------------
    def _work(self):
        while True:
            event = self._events.get()
            try:
                if event is None:
                    return
                with self._lock:
                    if self._final.is_set():
                        self._spill([event])
                        continue
                    self._current = event
                self._deliver_with_retries(event)
                with self._lock:
                    self._current = None
            finally:
                self._events.task_done()

    def _deliver_with_retries(self, event: dict):
        failures = 0
        while True:
            try:
                self._delivery.deliver(event)
                return
            except Abandoned:
                return
            except Exception as exc:  # noqa: BLE001 - Delivery raises transient errors only
                failures += 1
                self.failures += 1
                self._last_error = f"{type(exc).__name__}: {exc}"[:2000]
                delay = min(self.max_retry_s, self.retry_s * 2 ** (failures - 1))
                if failures == 1 or failures % 10 == 0:
                    print(f"[mlflow] delivery failed ({self._last_error[:300]}); retrying "
                          f"with back-off (next in {delay:g} s), events kept in order")
            if self._final.wait(delay):
                with self._lock:
                    if self._current is event:
                        self._spill([event])
                        self._current = None
                return

    def _on_rejected(self, event: dict, exc: BaseException):
        """A part MLflow refused for good: into the spill file, counted on its run."""
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        print(f"[mlflow] MLflow rejected part of a {event['kind']} event of trial "
              f"{event['trial_id']} ({reason[:300]}); kept in {self.undelivered_path}")
        with self._lock:
            self.rejected += 1
            self._write([event], reason)
        run_id = event.get("run_id") or event["parent_run_id"]
        self._rejected_on[run_id] = self._rejected_on.get(run_id, 0) + 1
        try:
            self.client.set_tag(run_id, store.TAG_UNDELIVERED,
                                f"{self._rejected_on[run_id]} rejected by MLflow, kept in "
                                f"{self.undelivered_path}; last: {reason}"[:5000])
        except Exception as tag_exc:  # noqa: BLE001 - the spill file has it either way
            if not is_transient(tag_exc):
                print(f"[mlflow] could not tag run {run_id} ({tag_exc})")

    # -- end of the sweep ---------------------------------------------------------------------
    def close(self, parent_status: str | None = None, parent_metrics: dict | None = None,
              timeout_s: float | None = None) -> int:
        """End the sweep's tracking; return how many events MLflow does not hold (0 = none).

        Queues the parent run's end (``parent_status``, ``parent_metrics``), waits up to
        ``timeout_s`` (default ``$DHAM_TRACKING_DRAIN_S`` or 60 s) for the queue to empty, then
        spills what is still queued and gives the event in flight the MLflow client's own
        retry budget (:func:`tracking.delivery.request_budget_s`) before spilling it too. The
        worker thread is stopped and joined. Idempotent: a second call returns the count."""
        if parent_status or parent_metrics:
            metrics = [[k, float(v), _now_ms(), 0] for k, v in (parent_metrics or {}).items()]
            self.put(trial_event("parent_end", None, self.experiment_id, self.parent_run_id,
                                 metrics=metrics, status=parent_status))
        if self._worker is None:
            return self.rejected + self.spilled
        if timeout_s is None:
            timeout_s = float(os.environ.get(DRAIN_ENV, 60))
        _wait_empty(self._events, timeout_s)
        with self._lock:
            self._final.set()
            left = []
            while True:
                try:
                    left.append(self._events.get_nowait())
                except queue.Empty:
                    break
                self._events.task_done()
        self._events.put(None)
        budget = request_budget_s()
        if self._worker.is_alive() and self._current is not None:
            print(f"[mlflow] waiting up to {budget:g} s for the event in flight (the MLflow "
                  "client's retry budget)")
        self._worker.join(budget + 1)
        with self._lock:  # the event in flight first: the spill file keeps the events' order
            self._claimed = True
            if self._current is not None:
                self._spill([self._current])
                self._current = None
            self._spill([e for e in left if e is not None])
        self._worker.join(budget + 1)  # Delivery stops before its next request
        undelivered = self.rejected + self.spilled
        if undelivered:
            print(f"[mlflow] ERROR: {undelivered} tracking events are not in MLflow "
                  f"({self.rejected} rejected, {self.spilled} undelivered); kept in "
                  f"{self.undelivered_path}; deliver them with: python -m tracking.replay "
                  f"{self.undelivered_path}")
        return undelivered

    def _spill(self, events: list[dict]):
        """Write events the worker could not deliver (caller holds the lock)."""
        self.spilled += len(events)
        self._write(events, self._last_error or "not delivered before the sweep ended")

    def _write(self, events: list[dict], error: str):
        if not events:
            return
        self.undelivered_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.undelivered_path, "a") as fh:
            for event in events:
                fh.write(json.dumps({**event, "error": error}) + "\n")


def undelivered_path(storage_path: str, tune_dir: str) -> Path:
    """The spill file of a launch: ``<storage_path>/<tune_dir>/mlflow_undelivered.jsonl``
    for a local (or mounted) storage path; ``<results dir>/<tune_dir>/...`` when the storage
    path is a URI (``s3://``, ``gs://``, ...), since the file is written with plain file I/O
    on the driver and must be local to it."""
    base = store.results_dir() if "://" in str(storage_path) else Path(storage_path)
    return base / tune_dir / "mlflow_undelivered.jsonl"


def stopped_early_tags(last_result: dict | None, max_t: int | None,
                       time_attr: str = "training_iteration") -> dict[str, str]:
    """The tags of a trial that completed with ``time_attr`` below ``max_t`` (the scheduler
    stopped it); none when there is no ``max_t`` or the trial ran to it."""
    last = (last_result or {}).get(time_attr)
    if max_t is None or last is None or last >= max_t:
        return {}
    return {store.TAG_STOPPED_EARLY: "true", store.TAG_STOPPED_AT: f"{last:g}/{max_t:g}"}


def _wait_empty(events: queue.Queue, timeout_s: float) -> None:
    """Wait until every queued event was taken and finished, or ``timeout_s`` passed."""
    with events.all_tasks_done:
        events.all_tasks_done.wait_for(lambda: events.unfinished_tasks == 0, timeout_s)


def _now_ms() -> int:
    return int(time.time() * 1000)


def error_text(trial) -> str:
    path = getattr(trial, "error_file", None) or ""
    if path and os.path.exists(path):
        with open(path) as fh:
            return fh.read()
    return str(getattr(trial, "error_msg", None) or "trial failed (no error file)")
