"""Resuming a sweep whose driver was killed: find the launch, restore it, tidy its runs.

Each launch records on its MLflow parent run a hash of its plan (``sweep.plan``: script,
search, preset, seeds, fixed config, grid points), the driver that runs it (``sweep.driver``,
``host:pid:start``) and the folder of its Ray Tune state (``sweep.tune_dir``). A rerun with
the same plan (``--resume auto``, the default) looks for a parent run of that plan still marked
RUNNING whose driver is gone (:func:`find_unfinished`); when Ray Tune saved a restorable state
for it, the runner restores the Tuner there, keeps the same Optuna study and the same parent
run, and the tracking callback re-attaches to the trials' child runs by Tune trial id and
re-sends, from Tune's persisted results, whatever the killed driver had not yet delivered
(:func:`reconcile_tracking`). Child
runs of trials that the killed driver had started after Tune's last save are deleted
(:func:`drop_orphans`): Tune re-runs that work as new trials.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket

from tracking import store
from tracking.callback import MLflowTrialCallback
from tracking.reconcile import persisted_events


def plan_hash(sweep, args, fixed: dict, points: list[dict]) -> str:
    """Identifies a sweep's plan: a rerun with the same plan may resume an unfinished launch."""
    plan = {"sweep": sweep.name, "search": args.search, "preset": args.preset, "fixed": fixed,
            "points": points, "num_samples": args.num_samples, "seeds": args.seeds}
    return hashlib.sha256(json.dumps(plan, sort_keys=True, default=str).encode()).hexdigest()[:16]


def process_start(pid: int) -> str:
    """When process ``pid`` started, in clock ticks since boot (``/proc/PID/stat``, field 22):
    with the pid it names one process, even after the pid is reused. ``""`` where there is no
    ``/proc`` (not Linux) or no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # fields after "(comm)" start at field 3


def driver_tag() -> str:
    """This process as the ``sweep.driver`` tag records it: ``host:pid:start``, the start
    from :func:`process_start`."""
    return f"{socket.gethostname()}:{os.getpid()}:{process_start(os.getpid())}"


def driver_alive(tag: str | None) -> bool:
    """Is the driver recorded as ``host:pid:start`` (or, before that field, ``host:pid``)
    still running on this host? A live process with that pid but another start time took a
    dead driver's pid: the driver is gone."""
    parts = (tag or "").split(":")
    if len(parts) not in (2, 3) or not parts[1].isdigit():
        return False
    host, pid = parts[0], int(parts[1])
    if host != socket.gethostname():
        return True  # another machine's driver: assume it lives, never steal its sweep
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    return len(parts) == 2 or not parts[2] or process_start(pid) == parts[2]


def find_unfinished(client, experiment_id: str, plan: str, storage_path: str):
    """(parent run, Tune state path) of the latest launch of this plan whose driver died
    before it finished, if Tune can restore it; else (None, None). A dead launch that left no
    restorable state is marked FAILED with the reason."""
    from ray import tune

    runs = client.search_runs(
        [experiment_id],
        filter_string=(f"tags.`{store.TAG_ROLE}` = '{store.ROLE_PARENT}' and "
                       f"tags.`{store.TAG_PLAN}` = '{plan}' and attributes.status = 'RUNNING'"),
        order_by=["attributes.start_time DESC"])
    for run in runs:
        if driver_alive(run.data.tags.get(store.TAG_DRIVER)):
            continue
        tune_dir = run.data.tags.get(store.TAG_TUNE_DIR)
        path = os.path.join(storage_path, tune_dir or "")
        reason = "driver died before Ray Tune saved a restorable state"
        if tune_dir and tune.Tuner.can_restore(path):
            unreadable = unreadable_tune_state(path)
            if unreadable is None:
                return run, path
            reason = (f"driver died while Ray Tune was writing its experiment state, which is "
                      f"now unreadable ({unreadable}); the sweep starts afresh")
        print(f"[sweep] not resuming MLflow parent run {run.info.run_id}: {reason}")
        client.set_tag(run.info.run_id, store.TAG_STATUS_REASON, reason)
        client.set_terminated(run.info.run_id, status="FAILED")
    return None, None


def unreadable_tune_state(path: str) -> str | None:
    """Why the experiment state Ray Tune saved at ``path`` cannot be read, or None if it can.

    Ray Tune 2.60 rewrites ``experiment_state-*.json`` in place (``open(..., "w")``, then
    ``json.dump``), so a driver killed during that write leaves a truncated file that
    ``Tuner.can_restore`` accepts (it only looks for ``tuner.pkl``) and the restore then fails
    on; reading the state the way a restore does tells the two apart."""
    from ray.tune import ExperimentAnalysis

    try:
        ExperimentAnalysis(path)
    except Exception as exc:  # noqa: BLE001 - any failure to read means not restorable
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def drop_orphans(client, parent_id: str, trial_ids: set) -> list[str]:
    """Delete (soft, recoverable in the MLflow UI) child runs of trials that the killed driver
    had started after Ray Tune's last saved state: Tune re-ran that work as new trials. Each
    is first closed as KILLED with the reason in ``sweep.failure_reason``. Returns their ids."""
    deleted = []
    for run in client.search_runs(
            [client.get_run(parent_id).info.experiment_id],
            filter_string=f"tags.`{store.TAG_PARENT}` = '{parent_id}'", max_results=10000):
        if run.data.tags.get(store.TAG_TRIAL_ID) not in trial_ids:
            client.set_tag(run.info.run_id, store.TAG_STATUS_REASON,
                           "orphaned: started after the last saved state of a killed driver; "
                           "its work was re-run as a new trial")
            client.set_terminated(run.info.run_id, status="KILLED")
            client.delete_run(run.info.run_id)
            print(f"[sweep] deleted orphaned child run {run.info.run_id} "
                  f"(trial {run.data.tags.get(store.TAG_TRIAL_ID)})")
            deleted.append(run.info.run_id)
    return deleted


def reconcile_tracking(callback: MLflowTrialCallback, tune_path: str) -> int:
    """Queue on the restored callback what Ray Tune persisted of each restored trial, so the
    events the killed driver still had queued reach MLflow (none twice:
    :mod:`tracking.reconcile`); returns how many events were queued."""
    events = persisted_events(tune_path, callback.experiment_id, callback.parent_run_id,
                              callback.log_checkpoint, callback.max_t, callback.time_attr)
    for event in events:
        callback.put(event)
    return len(events)


def restored_callback(tuner) -> MLflowTrialCallback:
    """The MLflow callback inside a restored Tuner: Tune restores callbacks from its state."""
    callbacks = tuner._local_tuner._run_config.callbacks or []  # no public accessor in Ray 2.60
    return next(cb for cb in callbacks if isinstance(cb, MLflowTrialCallback))


def restored_trial_ids(result_grid) -> set[str]:
    """Every trial of a restored sweep, errored ones included."""
    return {t.trial_id for t in result_grid._experiment_analysis.trials}  # no public accessor
