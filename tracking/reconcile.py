"""Re-send what a killed driver still had queued for MLflow, from Ray Tune's own records.

A killed driver loses its in-memory tracking queue, but Ray Tune persisted every result each
trial reported (``result.json`` in the trial's folder) and, in the experiment state the resumed
sweep restores, each trial's status and last checkpoint. :func:`persisted_events` turns those
into tracking events (:mod:`tracking.delivery`) marked ``dedupe``: their metric points carry
the timestamps Tune stamped, the same ones the live callback sent, so points MLflow already
has (same key, step and timestamp) are skipped and only the lost ones arrive.

Which results are re-sent: all of them for a trial that had ended (TERMINATED or ERROR: Tune
will not run it again), with its final status; for an unfinished trial only those up to its
restored checkpoint, because Tune re-runs and re-reports everything after it.
"""
from __future__ import annotations

import json
from pathlib import Path

from tracking import store
from tracking.callback import error_text, stopped_early_tags
from tracking.cells import result_points
from tracking.delivery import checkpoint_uri, params_of, trial_event


def persisted_events(tune_path: str, experiment_id: str, parent_run_id: str,
                     log_checkpoint: bool = False, max_t: int | None = None,
                     time_attr: str = "training_iteration") -> list[dict]:
    """Tracking events for the trials of the Tune experiment at ``tune_path`` (a sweep about
    to be restored there), from Tune's newest saved state; with ``log_checkpoint`` an ended
    trial's last checkpoint is (re-)logged as its artifact, and a trial that ended before the
    scheduler's ``max_t`` is tagged as stopped early, as the live callback does."""
    from ray.tune import ExperimentAnalysis
    from ray.tune.experiment import Trial

    events = []
    for trial in ExperimentAnalysis(tune_path).trials:
        results = _results(trial)
        ended = trial.status in (Trial.TERMINATED, Trial.ERROR)
        if not ended:
            saved = trial.latest_checkpoint_result
            last = saved.metrics.get("training_iteration", 0) if saved else 0
            results = [r for r in results if r.get("training_iteration", 0) <= last]
        common = dict(name=str(trial), params=params_of(trial.config))
        metrics = [point for result in results for point in result_points(result)]
        if metrics:
            events.append(trial_event("result", trial.trial_id, experiment_id, parent_run_id,
                                      metrics=metrics, **common))
        if trial.status == Trial.TERMINATED:
            events.append(trial_event("complete", trial.trial_id, experiment_id, parent_run_id,
                                      status="FINISHED", **common,
                                      tags=stopped_early_tags(results[-1] if results else None,
                                                              max_t, time_attr),
                                      checkpoint=(checkpoint_uri(trial.checkpoint)
                                                  if log_checkpoint else None)))
        elif trial.status == Trial.ERROR:
            events.append(trial_event(
                "error", trial.trial_id, experiment_id, parent_run_id, status="FAILED",
                tags={store.TAG_STATUS_REASON: error_text(trial)[-5000:]}, **common))
    for event in events:
        event["dedupe"] = True
    return events


def _results(trial) -> list[dict]:
    """Every result the trial reported, in order, from its ``result.json``."""
    fs = trial.storage.storage_filesystem
    path = Path(trial.storage.trial_fs_path, "result.json").as_posix()
    if fs.get_file_info(path).type.name == "NotFound":
        return []
    with fs.open_input_stream(path) as fh:
        return [json.loads(line) for line in fh.readall().decode().splitlines() if line.strip()]
