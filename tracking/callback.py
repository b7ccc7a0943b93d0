"""Driver-side MLflow tracking: one parent run per sweep, one nested child run per trial.

Ray's own ``MLflowLoggerCallback`` makes flat runs, and ``setup_mlflow`` opens runs inside the
workers with no parent run; neither gives the layout of ``tracking.store``. This Tune
callback runs in the driver, so trainables stay free of MLflow and every metric travels one
path: ``tune.report`` -> this callback -> MLflow.

Child runs are keyed by the Tune trial id and looked up before they are created, so a resumed
sweep re-attaches to its runs instead of duplicating them. Every MLflow write that fails (server
restarting, network blip) is retried, in order, until it succeeds; whatever is still undelivered
when the sweep ends (after ``drain``'s time-out) is written to
``<storage>/mlflow_undelivered.jsonl`` and reported loudly, never dropped silently.
"""
from __future__ import annotations

import json
import math
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from ray.tune import Callback

from tracking import store

# Keys Tune adds to every result; they are bookkeeping, not experiment metrics.
TUNE_AUTO_KEYS = {
    "training_iteration", "timestamp", "date", "hostname", "node_ip", "pid", "done",
    "time_this_iter_s", "time_since_restore", "iterations_since_restore", "trial_id",
    "experiment_tag", "should_checkpoint", "checkpoint_dir_name", "timesteps_total",
    "episodes_total", "timesteps_since_restore", "experiment_id",
}


def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def numeric_metrics(result: dict) -> dict[str, float]:
    return {k: float(v) for k, v in result.items()
            if k not in TUNE_AUTO_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(float(v))}


class MLflowTrialCallback(Callback):
    """Logs every Tune trial as a nested child run of ``parent_run_id``.

    The Tune hooks only put events on a queue; one background thread delivers them to MLflow
    in order, so tracking never stalls the driver's event loop, which also schedules the
    trials (docs/platform.md, "Per-trial overhead"). A failed delivery is retried, in order,
    until it succeeds or the sweep ends.
    """

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str,
                 undelivered_path: str | os.PathLike, retry_s: float = 2.0,
                 log_checkpoint: bool = False):
        self.tracking_uri = tracking_uri
        self.log_checkpoint = log_checkpoint
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.undelivered_path = Path(undelivered_path)
        self.retry_s = retry_s
        self._run_ids: dict[str, str] = {}
        self._start_worker()

    def _start_worker(self):
        self.client = store.client(self.tracking_uri)
        self._events: queue.Queue = queue.Queue()
        self._failures = 0
        self.undelivered = 0
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._deliver_forever, name="mlflow-tracking",
                                        daemon=True)
        self._worker.start()

    # Tune pickles its callbacks with the experiment state: keep the settings, not the thread.
    _RUNTIME = ("client", "_events", "_stop", "_worker", "_failures", "undelivered")

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in self._RUNTIME}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._start_worker()

    # -- delivery (background thread) --------------------------------------------------------
    def _deliver_forever(self):
        while True:
            event = self._events.get()
            if event is None:
                self._events.task_done()
                return
            while True:
                try:
                    self._deliver(*event)
                    break
                except Exception as exc:  # noqa: BLE001 - any transport error: retry in order
                    self._failures += 1
                    if self._failures == 1 or self._failures % 10 == 0:
                        print(f"[mlflow] delivery failed ({type(exc).__name__}: {exc}); "
                              f"retrying every {self.retry_s:g} s, events kept in order")
                    if self._stop.wait(self.retry_s):
                        self._events.task_done()
                        self._spill([event])
                        return
            self._events.task_done()

    def _deliver(self, kind: str, trial_id: str, payload: dict):
        run_id = self._run_id(trial_id, payload.get("config"), payload.get("name"))
        if kind == "start":
            self.client.update_run(run_id, status="RUNNING")
        elif kind == "result":
            self.client.log_batch(run_id, metrics=payload["metrics"])
        elif kind == "retry":
            self.client.set_tag(run_id, store.TAG_RETRIES, str(payload["retries"]))
        elif kind == "complete":
            if payload.get("checkpoint") is not None:
                # as_directory() copies a remote (s3://, gs://) checkpoint to a temp dir first
                with payload["checkpoint"].as_directory() as path:
                    self.client.log_artifacts(run_id, path, "checkpoint")
            self.client.set_terminated(run_id, status="FINISHED")
        elif kind == "error":
            self.client.set_tag(run_id, store.TAG_STATUS_REASON, payload["reason"][-5000:])
            self.client.set_terminated(run_id, status="FAILED")

    def _run_id(self, trial_id: str, config: dict | None, name: str | None) -> str:
        """The child run of ``trial_id``: found (resumed sweep) or created, never duplicated."""
        if trial_id in self._run_ids:
            return self._run_ids[trial_id]
        existing = self.client.search_runs(
            [self.experiment_id],
            filter_string=(f"tags.`{store.TAG_PARENT}` = '{self.parent_run_id}' and "
                           f"tags.`{store.TAG_TRIAL_ID}` = '{trial_id}'"),
            max_results=1)
        if existing:
            run_id = existing[0].info.run_id
        else:
            run_id = self.client.create_run(
                self.experiment_id, run_name=name,
                tags={store.TAG_PARENT: self.parent_run_id, store.TAG_ROLE: store.ROLE_TRIAL,
                      store.TAG_TRIAL_ID: trial_id}).info.run_id
            params = [Param(k, str(v)[:6000]) for k, v in flatten(config or {}).items()]
            for i in range(0, len(params), 100):
                self.client.log_batch(run_id, params=params[i:i + 100])
        self._run_ids[trial_id] = run_id
        return run_id

    def _put(self, kind: str, trial, **payload):
        payload.update(config=dict(trial.config), name=str(trial))
        self._events.put((kind, trial.trial_id, payload))

    # -- Tune hooks (driver thread: enqueue only) ---------------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info):
        self._put("start", trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        now = int(time.time() * 1000)
        self._put("result", trial,
                  metrics=[Metric(k, v, now, step) for k, v in numeric_metrics(result).items()])

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._put("retry", trial, retries=trial.run_metadata.num_failures)

    def on_trial_complete(self, iteration, trials, trial, **info):
        checkpoint = trial.checkpoint if self.log_checkpoint else None
        self._put("complete", trial, checkpoint=checkpoint)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._put("error", trial, reason=_error_text(trial))

    def on_experiment_end(self, trials, **info):
        self.drain()

    @property
    def pending(self) -> int:
        return self._events.unfinished_tasks

    def drain(self, timeout_s: float = 60.0) -> int:
        """Wait up to ``timeout_s`` for every event to arrive; spill the rest to disk.

        Returns the number of events that could not be delivered (0 = nothing lost)."""
        if self._stop.is_set():
            return self.undelivered
        deadline = time.time() + timeout_s
        while self._events.unfinished_tasks and time.time() < deadline:
            time.sleep(0.05)
        if not self._events.unfinished_tasks:
            return 0
        self._stop.set()
        left = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            if event is not None:
                left.append(event)
            self._events.task_done()
        self._worker.join(timeout=self.retry_s + 5)
        self._spill(left)
        self.undelivered = len(left) + 1  # +1: the event the worker was retrying
        return self.undelivered

    def _spill(self, events):
        if not events:
            return
        self.undelivered_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.undelivered_path, "a") as fh:
            for kind, trial_id, payload in events:
                fh.write(json.dumps({"kind": kind, "trial_id": trial_id,
                                     "payload": repr(payload)}) + "\n")
        print(f"[mlflow] ERROR: {len(events)} tracking events could not be delivered; "
              f"written to {self.undelivered_path}")


def _error_text(trial) -> str:
    path = getattr(trial, "error_file", None) or ""
    if path and os.path.exists(path):
        with open(path) as fh:
            return fh.read()
    return str(getattr(trial, "error_msg", None) or "trial failed (no error file)")
