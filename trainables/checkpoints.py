"""What an evaluation trainable shares: the trained state of the source trial it evaluates.

An evaluation sweep (``Sweep.checkpoints_from``) gets one grid axis ``checkpoint_run``: the
MLflow child run of a source trial whose final checkpoint it evaluates. The runner resolves
those runs at launch and puts the tracking store's URI in ``MLFLOW_TRACKING_URI`` of the
driver before Ray starts, so the workers of a local Ray inherit it (on a cluster the job's
runtime environment carries it, as it does for the driver); the URI never enters a trial's
config, so no credential reaches MLflow params or logs. The state comes from MLflow, never
from the Ray results folder.
"""
from __future__ import annotations

import os
import tempfile

import torch

from trainables.common import CHECKPOINT_FILE

SOURCE_KEY = "checkpoint_run"
"""Config key of an evaluation trial: the source trial's MLflow child run id."""
TRACKING_ENV = "MLFLOW_TRACKING_URI"
SOURCE_ARTIFACT = f"checkpoint/{CHECKPOINT_FILE}"
"""The artifact the tracking callback logs (``tracking.checkpoints.CHECKPOINT_ARTIFACT``;
trainables do not import ``tracking``, a test checks that the two agree)."""


def load_source_state(config: dict) -> dict:
    """The source trial's final state (``torch.load(..., weights_only=True)`` on the CPU) of
    the run ``config["checkpoint_run"]``, downloaded from the tracking store in
    ``$MLFLOW_TRACKING_URI``."""
    run_id = config.get(SOURCE_KEY)
    if not isinstance(run_id, str) or not run_id:
        raise ValueError(f"{SOURCE_KEY} must be the MLflow run id of a source trial (the runner "
                         f"adds it for a sweep with checkpoints_from; got {run_id!r})")
    uri = os.environ.get(TRACKING_ENV)
    if not uri:
        raise RuntimeError(f"{TRACKING_ENV} is not set in this worker; the runner sets it "
                           "before starting a local Ray, a cluster job must carry it in its "
                           "runtime environment")
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory() as tmp:
        path = MlflowClient(tracking_uri=uri).download_artifacts(run_id, SOURCE_ARTIFACT, tmp)
        return torch.load(path, map_location="cpu", weights_only=True)
