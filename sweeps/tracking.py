"""Driver-side MLflow tracking: one parent run per sweep, one nested child run per trial.

Ray's own ``MLflowLoggerCallback`` makes flat runs and ``setup_mlflow`` runs inside the workers
with no parent (ENV-NOTES), so neither gives the layout of ``analysis.store``. This Tune
callback runs in the driver, so trainables stay free of MLflow and every metric travels one
path: ``tune.report`` -> this callback -> MLflow.

Child runs are keyed by the Tune trial id and looked up before they are created, so a resumed
sweep re-attaches to its runs instead of duplicating them. Every MLflow call that fails (server
restarting, network blip) is kept in an in-memory queue, in order, and retried at the next event
and at the end of the sweep; whatever is still undelivered then is written to
``<storage>/mlflow_undelivered.jsonl`` and reported loudly, never dropped silently.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from ray.tune import Callback

from analysis import store

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
    """Logs every Tune trial as a nested child run of ``parent_run_id``."""

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str,
                 undelivered_path: str | os.PathLike):
        self.client = store.client(tracking_uri)
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.undelivered_path = Path(undelivered_path)
        self._run_ids: dict[str, str] = {}
        self._pending: deque[tuple[str, tuple, dict]] = deque()

    # -- delivery with retry ------------------------------------------------------------
    def _call(self, method: str, *args, **kwargs):
        """Call ``client.method`` now if nothing is queued before it, else queue it."""
        self._flush()
        if self._pending:
            self._pending.append((method, args, kwargs))
            return None
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any transport error: keep the call for later
            print(f"[mlflow] {method} failed ({type(exc).__name__}: {exc}); queued for retry")
            self._pending.append((method, args, kwargs))
            return None

    def _flush(self):
        while self._pending:
            method, args, kwargs = self._pending[0]
            try:
                getattr(self.client, method)(*args, **kwargs)
            except Exception:  # noqa: BLE001
                return
            self._pending.popleft()

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- child runs ------------------------------------------------------------------------
    def _run_id(self, trial) -> str:
        if trial.trial_id in self._run_ids:
            return self._run_ids[trial.trial_id]
        existing = self.client.search_runs(
            [self.experiment_id],
            filter_string=(f"tags.`{store.TAG_PARENT}` = '{self.parent_run_id}' and "
                           f"tags.`{store.TAG_TRIAL_ID}` = '{trial.trial_id}'"),
            max_results=1)
        if existing:
            run_id = existing[0].info.run_id
        else:
            run = self.client.create_run(
                self.experiment_id, run_name=str(trial),
                tags={store.TAG_PARENT: self.parent_run_id, store.TAG_ROLE: store.ROLE_TRIAL,
                      store.TAG_TRIAL_ID: trial.trial_id})
            run_id = run.info.run_id
            params = [Param(k, str(v)[:6000]) for k, v in flatten(trial.config).items()]
            for i in range(0, len(params), 100):
                self._call("log_batch", run_id, params=params[i:i + 100])
        self._run_ids[trial.trial_id] = run_id
        return run_id

    def _ensure_run(self, trial) -> str | None:
        try:
            return self._run_id(trial)
        except Exception as exc:  # noqa: BLE001 - server down: the next event tries again
            print(f"[mlflow] could not open the run of trial {trial.trial_id}: {exc}")
            return None

    # -- Tune hooks ------------------------------------------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info):
        if (run_id := self._ensure_run(trial)) is not None:
            self._call("update_run", run_id, status="RUNNING")

    def on_trial_result(self, iteration, trials, trial, result, **info):
        run_id = self._ensure_run(trial)
        if run_id is None:
            return
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in numeric_metrics(result).items()]
        self._call("log_batch", run_id, metrics=metrics)

    def on_trial_recover(self, iteration, trials, trial, **info):
        if (run_id := self._ensure_run(trial)) is not None:
            self._call("set_tag", run_id, "sweep.retries", str(trial.run_metadata.num_failures))

    def on_trial_complete(self, iteration, trials, trial, **info):
        if (run_id := self._ensure_run(trial)) is not None:
            self._call("set_terminated", run_id, status="FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        run_id = self._ensure_run(trial)
        if run_id is None:
            return
        reason = _error_text(trial)
        self._call("log_batch", run_id, tags=[RunTag(store.TAG_STATUS_REASON, reason[-5000:])])
        self._call("set_terminated", run_id, status="FAILED")

    def on_experiment_end(self, trials, **info):
        self.drain()

    def drain(self, attempts: int = 10, wait_s: float = 3.0) -> int:
        """Retry queued calls for a while; write what is left to disk. Returns calls left."""
        for _ in range(attempts):
            self._flush()
            if not self._pending:
                return 0
            time.sleep(wait_s)
        self.undelivered_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.undelivered_path, "a") as fh:
            for method, args, kwargs in self._pending:
                fh.write(json.dumps({"method": method, "args": [repr(a) for a in args],
                                     "kwargs": {k: repr(v) for k, v in kwargs.items()}}) + "\n")
        print(f"[mlflow] ERROR: {len(self._pending)} tracking calls could not be delivered; "
              f"written to {self.undelivered_path}")
        return len(self._pending)


def _error_text(trial) -> str:
    path = getattr(trial, "error_file", None) or ""
    if path and os.path.exists(path):
        with open(path) as fh:
            return fh.read()
    return str(getattr(trial, "error_msg", None) or "trial failed (no error file)")
