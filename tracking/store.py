"""The MLflow layout every sweep writes and every analysis reads.

One MLflow *experiment* per sweep script (``temperature``, ``ell``, ...). Inside it, one
*parent run* per launch of the sweep, and one *nested child run* per Ray Tune trial::

    experiment "temperature"
      parent run   tags: sweep.role=parent, sweep.table=decisivenets.table3, sweep.search=grid, ...
        child run  tags: sweep.role=trial, sweep.trial_id=<tune trial id>, mlflow.parentRunId=<parent>
                   params: the trial's full config; metrics: per epoch (step = epoch) and final

A metric's step is the trainable's ``epoch`` when it reports one (else Tune's iteration);
pack trainables report one result per evaluated cell, so there the step is the cell index.
This module is the one place that knows the tag names; the runner, its tracking callback
(:mod:`tracking.callback`) and the reports (:mod:`analysis`) import them from here.
docs/platform.md, "The MLflow layout", describes every tag.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient

TAG_ROLE = "sweep.role"
ROLE_PARENT = "parent"
ROLE_TRIAL = "trial"
TAG_SWEEP = "sweep.name"
TAG_TABLE = "sweep.table"
TAG_SEARCH = "sweep.search"
TAG_PRESET = "sweep.preset"
TAG_TRIAL_ID = "sweep.trial_id"
TAG_STATUS_REASON = "sweep.failure_reason"
TAG_PARENT = "mlflow.parentRunId"
TAG_GIT_COMMIT = "mlflow.source.git.commit"
TAG_RETRIES = "sweep.retries"
TAG_UNDELIVERED = "sweep.undelivered"  # tracking events MLflow rejected (tracking.callback)
TAG_STOPPED_EARLY = "sweep.stopped_early"  # "true": the scheduler (ASHA) stopped the trial
TAG_STOPPED_AT = "sweep.stopped_at"  # "<last>/<max_t>" of the scheduler's time attribute
# Resume bookkeeping on the parent run (sweeps/resume.py)
TAG_PLAN = "sweep.plan"
TAG_DRIVER = "sweep.driver"
TAG_TUNE_DIR = "sweep.tune_dir"

REPO_ROOT = Path(__file__).resolve().parent.parent


def results_dir() -> Path:
    """Where tables, plots, Ray results and Optuna studies go: ``DHAM_RESULTS_DIR`` or
    ``<repo>/results`` (git-ignored)."""
    return Path(os.environ.get("DHAM_RESULTS_DIR") or REPO_ROOT / "results")


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a SQLite store in the repo root (git-ignored)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{REPO_ROOT / 'mlflow.db'}"


def ensure_experiment(mlflow_client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created if needed.

    With a SQLite store, artifacts go next to the database (``<db dir>/mlruns``) rather than
    MLflow's default ``./mlruns`` of the current directory, which under ``ray job submit`` is
    a temporary copy of the working dir."""
    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    uri = mlflow_client.tracking_uri
    location = None
    if uri.startswith("sqlite:///"):
        location = (Path(uri[len("sqlite:///"):]).parent / "mlruns" / name).as_uri()
    return mlflow_client.create_experiment(name, artifact_location=location)


def client(tracking_uri: str | None = None) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri or default_tracking_uri())


def find_parent_run(mlflow_client: MlflowClient, sweep: str, run_id: str | None = None):
    """The named parent run, or the latest parent run of experiment ``sweep``."""
    if run_id:
        return mlflow_client.get_run(run_id)
    experiment = mlflow_client.get_experiment_by_name(sweep)
    if experiment is None:
        raise LookupError(f"no MLflow experiment named {sweep!r} at {mlflow_client.tracking_uri}; "
                          f"run `python sweeps/{sweep}.py` first")
    runs = mlflow_client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{TAG_ROLE}` = '{ROLE_PARENT}'",
        order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        raise LookupError(f"experiment {sweep!r} holds no sweep parent run")
    return runs[0]


def child_runs(mlflow_client: MlflowClient, parent) -> list:
    """Every trial run nested under ``parent`` (all pages)."""
    runs, token = [], None
    while True:
        page = mlflow_client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.`{TAG_PARENT}` = '{parent.info.run_id}'",
            max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _parse(value: str):
    """MLflow stores params as strings; give numbers back as numbers."""
    for cast in (int, float):
        try:
            return cast(value)
        except (TypeError, ValueError):
            pass
    return {"True": True, "False": False, "None": None}.get(value, value)


def trials_frame(mlflow_client: MlflowClient, parent) -> pd.DataFrame:
    """One row per child run: run id, status, params (parsed), last value of every metric."""
    rows = []
    for run in child_runs(mlflow_client, parent):
        row = {"run_id": run.info.run_id, "status": run.info.status,
               "trial_id": run.data.tags.get(TAG_TRIAL_ID)}
        row.update({k: _parse(v) for k, v in run.data.params.items()})
        row.update(run.data.metrics)
        rows.append(row)
    return pd.DataFrame(rows)


def metric_history(mlflow_client: MlflowClient, run_id: str, key: str) -> pd.DataFrame:
    hist = mlflow_client.get_metric_history(run_id, key)
    return pd.DataFrame({"step": [m.step for m in hist], key: [m.value for m in hist]})


def trial_histories(mlflow_client: MlflowClient, parent, keys: list[str] | None = None
                    ) -> pd.DataFrame:
    """One row per (child run, step): the run's params plus every metric logged at that step.

    Pack trainables report one Tune result per evaluated cell (step = cell index) with the
    cell's coordinates among the metrics, so this frame has one row per cell. A coordinate can
    share its name with a param of the trial (a resonator pack's metric ``a`` = 3, 5, 8 per
    cell beside the param ``a = "[3, 5, 8]"``): the column keeps the metric, the cell's own
    value, and the param moves to ``param.<name>``."""
    rows = []
    for run in child_runs(mlflow_client, parent):
        metric_keys = keys or list(run.data.metrics)
        params = {(f"param.{k}" if k in metric_keys else k): _parse(v)
                  for k, v in run.data.params.items()}
        by_step: dict[int, dict] = {}
        for key in metric_keys:
            for m in mlflow_client.get_metric_history(run.info.run_id, key):
                by_step.setdefault(m.step, {})[key] = m.value
        for step, metrics in sorted(by_step.items()):
            rows.append({"run_id": run.info.run_id, "status": run.info.status, "step": step,
                         **params, **metrics})
    return pd.DataFrame(rows)
