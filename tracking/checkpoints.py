"""Trained models as MLflow artifacts: where a trial's final checkpoint sits, and which
checkpoints a finished sweep left.

A sweep with ``Sweep.log_checkpoint`` has the tracking callback (:mod:`tracking.callback`)
log each finished trial's last Tune checkpoint as the artifacts of its child run, under
:data:`CHECKPOINT_DIR`; the trainables save their state as ``state.pt`` there, so the trained
state of a trial is the artifact :data:`CHECKPOINT_ARTIFACT`. :func:`sweep_checkpoints` lists
the child runs of one launch (a named parent run, or the newest finished launch that left
checkpoints) that hold it: what an evaluation sweep (``Sweep.checkpoints_from``) runs over.
Evaluations read checkpoints from MLflow only, never from the Ray results folder.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlflow.tracking import MlflowClient

from tracking import store

CHECKPOINT_DIR = "checkpoint"
"""Artifact folder of a child run that holds its trial's final checkpoint."""
CHECKPOINT_ARTIFACT = f"{CHECKPOINT_DIR}/state.pt"
"""The trial's final state (``torch.save`` of the trainable's state dict; load it with
``torch.load(..., weights_only=True)``)."""


@dataclass(frozen=True)
class CheckpointRef:
    """One finished trial of the source sweep whose final checkpoint is in MLflow."""

    run_id: str
    """The trial's MLflow child run (its artifact :data:`CHECKPOINT_ARTIFACT`)."""
    params: dict[str, str]
    """The trial's config as MLflow params (strings)."""
    metrics: dict[str, float]
    """The last value of each of the trial's metrics."""


def has_checkpoint(client: MlflowClient, run_id: str) -> bool:
    """Does child run ``run_id`` hold :data:`CHECKPOINT_ARTIFACT`?"""
    return any(a.path == CHECKPOINT_ARTIFACT for a in client.list_artifacts(run_id, CHECKPOINT_DIR))


def _refs(client: MlflowClient, parent) -> list[CheckpointRef]:
    """The FINISHED child runs of ``parent`` that hold a checkpoint, oldest first."""
    runs = [r for r in store.child_runs(client, parent) if r.info.status == "FINISHED"]
    runs.sort(key=lambda r: (r.info.start_time or 0, r.info.run_id))
    return [CheckpointRef(r.info.run_id, dict(r.data.params), dict(r.data.metrics))
            for r in runs if has_checkpoint(client, r.info.run_id)]


def sweep_checkpoints(client: MlflowClient, sweep_name: str, parent_run_id: str | None = None
                      ) -> list[CheckpointRef]:
    """The checkpoints of one launch of sweep ``sweep_name``.

    ``parent_run_id``: that launch's parent run; None: the newest FINISHED parent run of the
    experiment that has child runs holding :data:`CHECKPOINT_ARTIFACT`. Raises ``ValueError``
    naming ``source_sweep`` (no such experiment, or no finished launch with checkpoints) or
    ``source_run`` (not a parent run of that sweep, or one without checkpoints)."""
    if not isinstance(sweep_name, str) or not sweep_name:
        raise ValueError(f"source_sweep must be the name of a sweep (an MLflow experiment) "
                         f"that logged checkpoints (got source_sweep={sweep_name!r})")
    experiment = client.get_experiment_by_name(sweep_name)
    if experiment is None:
        names = sorted(e.name for e in client.search_experiments() if e.name != "Default")
        raise ValueError(f"source_sweep={sweep_name!r}: no MLflow experiment of that name in "
                         "the tracking store (MLFLOW_TRACKING_URI); experiments there: "
                         f"{', '.join(names) or 'none'}")
    if parent_run_id:
        try:
            parent = client.get_run(parent_run_id)
        except Exception as exc:  # noqa: BLE001 - MLflow raises its own error for a bad id
            raise ValueError(f"source_run={parent_run_id!r}: no such MLflow run ({exc})"[:600]) \
                from exc
        tags = parent.data.tags
        if (parent.info.experiment_id != experiment.experiment_id
                or tags.get(store.TAG_ROLE) != store.ROLE_PARENT):
            raise ValueError(f"source_run={parent_run_id!r} is not a parent run of sweep "
                             f"{sweep_name!r}; give the parent run id of one of its launches "
                             "(or leave source_run out for the newest)")
        refs = _refs(client, parent)
        if not refs:
            raise ValueError(f"source_run={parent_run_id!r} (sweep {sweep_name!r}) has no "
                             f"finished trial with a checkpoint ({CHECKPOINT_ARTIFACT}); the "
                             "sweep must log checkpoints (Sweep.log_checkpoint)")
        return refs
    parents = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{store.TAG_ROLE}` = '{store.ROLE_PARENT}' "
                      "and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"])
    for parent in parents:
        refs = _refs(client, parent)
        if refs:
            return refs
    raise ValueError(f"source_sweep={sweep_name!r}: none of its {len(parents)} finished "
                     f"launch(es) left a checkpoint ({CHECKPOINT_ARTIFACT}); run the sweep to "
                     "the end first (it must log checkpoints: Sweep.log_checkpoint)")
