"""Launching a planned sweep: the checks before launch, Ray, the MLflow parent run, the Tuner.

The checks that need no Ray run first, from :func:`sweeps.runner.main`, and only read:
:func:`check_tracking` (the MLflow store opens), :func:`check_local_gpus` and
:func:`check_local_cpus` (a local Ray can place one trial), :func:`check_warm_start` (a grid
study to start from exists) and :func:`find_resumable` (the unfinished launch to resume, if
any; ``--resume`` insists on one). Then :func:`run` takes the fixed config and grid points
from :mod:`sweeps.plan` and

1. starts a local Ray (no ``RAY_ADDRESS``) or joins the cluster (``RAY_ADDRESS``, as under
   ``ray job submit``) and checks that some node has the CPUs and GPUs a trial asks for;
2. resumes the unfinished launch found before (:mod:`sweeps.resume`) or opens a new MLflow
   parent run (tags from :mod:`tracking.store`, every flag and fixed value as a param);
3. builds the Tuner: the searcher from :mod:`sweeps.search` with its study in the persistent
   Optuna storage, ASHA for a single-metric TPE search, the MLflow callback
   (:mod:`tracking.callback`) that makes one child run per trial, Tune's failure retries and
   checkpoints, and a progress line instead of Tune's status table (:mod:`sweeps.progress`);
4. runs it, closes the parent run, logs ``trials_failed`` and ``sweep_seconds`` to it and
   prints the sweep's report (:func:`analysis.report.report`).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tracking import store
from tracking.callback import MLflowTrialCallback, undelivered_path
from trainables.isolation import fresh_state
from sweeps.plan import Sweep
from sweeps.progress import ProgressLine
from sweeps.resume import (driver_tag, drop_orphans, find_unfinished, plan_hash,
                           reconcile_tracking, restored_callback, restored_trial_ids)
from sweeps.search import grid_studies, make_searcher, optuna_storage

REPO_ROOT = Path(__file__).resolve().parent.parent


def redact(text: str) -> str:
    """Hide credentials in URLs (``scheme://user:secret@host`` -> ``scheme://user:***@host``).

    A password may hold ``/`` and ``@`` unescaped (``postgresql://u:p/a@ss@host/db``), which
    ``urllib.parse`` would split at the first ``/`` or ``@``; the host follows the *last* ``@``,
    so everything between the user's ``:`` and that ``@`` is masked (a URL whose path holds an
    ``@`` is masked up to it: more than the password, never less)."""
    return re.sub(r"\b([A-Za-z][A-Za-z0-9+.-]*://)([^:@/\s]*):\S*@", r"\1\2:***@", text)


def check_tracking(uri: str) -> None:
    """Fail fast, before any Ray job or run exists, when the MLflow store is unreachable."""
    if uri.startswith(("http://", "https://")):
        import requests

        try:
            requests.get(uri.rstrip("/") + "/health", timeout=5).raise_for_status()
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"MLFLOW_TRACKING_URI={redact(uri)} is not reachable ({exc}); start the "
                             "server or point MLFLOW_TRACKING_URI at a reachable store") from exc
    else:
        try:
            store.client(uri).search_experiments(max_results=1)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"MLFLOW_TRACKING_URI={redact(uri)} cannot be opened ({exc})") from exc


def check_local_gpus(gpus_per_trial: float) -> None:
    """Local Ray (no ``RAY_ADDRESS``) gets this machine's GPUs: check before starting it."""
    if gpus_per_trial <= 0 or os.environ.get("RAY_ADDRESS"):
        return
    import torch

    if torch.cuda.device_count() < gpus_per_trial:
        raise ValueError(f"--gpus-per-trial {gpus_per_trial} exceeds the GPUs of this machine "
                         f"({torch.cuda.device_count()}); use 0 for CPU trials")


def check_local_cpus(cpus_per_trial: float, num_cpus: int | None) -> None:
    """Local Ray gets ``--num-cpus`` CPUs (default: this machine's): a trial asking for more
    would wait forever, so refuse it before starting Ray."""
    if os.environ.get("RAY_ADDRESS"):
        return
    available = num_cpus if num_cpus is not None else (os.cpu_count() or 1)
    if cpus_per_trial > available:
        source = f"--num-cpus {num_cpus}" if num_cpus is not None else "this machine's CPUs"
        raise ValueError(f"--cpus-per-trial {cpus_per_trial:g} exceeds the {available} CPUs "
                         f"local Ray gets ({source}); use at most {available}")


def check_cluster_resources(cpus_per_trial: float, gpus_per_trial: float) -> None:
    """Refuse a per-trial CPU or GPU request that no live node of the cluster can satisfy."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    for flag, key, asked in (("--cpus-per-trial", "CPU", cpus_per_trial),
                             ("--gpus-per-trial", "GPU", gpus_per_trial)):
        largest = max((n.get(key, 0) for n in nodes), default=0)
        if asked > largest:
            raise ValueError(f"{flag} {asked:g} exceeds the {key}s of every node of the Ray "
                             f"cluster (largest node has {largest:g})")
    if not any(n.get("CPU", 0) >= cpus_per_trial and n.get("GPU", 0) >= gpus_per_trial
               for n in nodes):
        raise ValueError(f"--cpus-per-trial {cpus_per_trial:g} with --gpus-per-trial "
                         f"{gpus_per_trial:g}: no node of the Ray cluster has both")


def check_warm_start(sweep: Sweep, args) -> None:
    """``--warm-start`` needs a grid study of this sweep and preset to start from; only
    reads the Optuna storage (a journal file that does not exist holds no study)."""
    if not args.warm_start:
        return
    spec = args.optuna_storage
    if ("://" in spec or Path(spec).is_file()) and grid_studies(sweep, args.preset,
                                                                optuna_storage(spec)):
        return
    raise ValueError(f"--warm-start needs a grid study of sweep {sweep.name!r}, preset "
                     f"{args.preset!r} in --optuna-storage {redact(spec)} and found none; run "
                     f"--search grid --preset {args.preset} first, or drop --warm-start")


def find_resumable(sweep: Sweep, args, fixed: dict, points: list[dict], tracking_uri: str):
    """(parent run, Tune state path) of the unfinished launch of this plan to resume, or
    (None, None) (:func:`sweeps.resume.find_unfinished`; nothing is created). ``--resume``
    (``always``) with nothing to resume raises ``ValueError``."""
    if args.resume == "never":
        return None, None
    client = store.client(tracking_uri)
    experiment = client.get_experiment_by_name(sweep.name)
    found = (None, None) if experiment is None else find_unfinished(
        client, experiment.experiment_id, plan_hash(sweep, args, fixed, points),
        args.storage_path)
    if found[0] is None and args.resume == "always":
        raise ValueError("--resume: no unfinished sweep with this plan (same script, search, "
                         "preset, seeds and config) whose driver died; use --resume auto or "
                         "--resume never to start afresh")
    return found


def git_commit() -> str:
    """``GIT_COMMIT`` if set, else ``git rev-parse HEAD`` (``-dirty`` with local changes)."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"  # e.g. a `ray job submit` working dir, which carries no .git


def init_ray(num_cpus: int | None = None) -> None:
    """Join the cluster at ``RAY_ADDRESS``, or start a local Ray with ``num_cpus`` CPUs."""
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
    else:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                 dashboard_host="127.0.0.1")


def _new_launch(sweep: Sweep, args, fixed: dict, points: list[dict], client, experiment_id,
                plan: str, num_samples: int, trainable, tracking_uri: str):
    """A fresh launch: (parent run id, Tuner, MLflow callback)."""
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback
    from ray.tune.schedulers import ASHAScheduler

    parent_id = client.create_run(
        experiment_id, run_name=f"{sweep.name}-{args.search}-{args.preset}",
        tags={store.TAG_ROLE: store.ROLE_PARENT, store.TAG_SWEEP: sweep.name,
              store.TAG_TABLE: sweep.table, store.TAG_SEARCH: args.search,
              store.TAG_PRESET: args.preset, store.TAG_GIT_COMMIT: git_commit(),
              store.TAG_PLAN: plan, store.TAG_DRIVER: driver_tag(),
              "mlflow.source.name": f"sweeps/{sweep.name}.py"}).info.run_id
    tune_dir = f"{sweep.name}-{parent_id[:8]}"
    client.set_tag(parent_id, store.TAG_TUNE_DIR, tune_dir)
    study_name = f"{sweep.name}.{args.preset}.{args.search}.{parent_id[:8]}"
    params = {**vars(args), "num_trials": num_samples, "optuna_study": study_name,
              **{f"fixed.{k}": v for k, v in fixed.items()}}
    for key, value in params.items():
        client.log_param(parent_id, key, redact(str(value))[:6000])
    print(f"[sweep] {sweep.name}: {args.search} search, preset {args.preset}, "
          f"{num_samples} trials; MLflow parent run {parent_id} at {redact(tracking_uri)}")
    scheduler = max_t = None
    if args.search == "tpe" and isinstance(sweep.metric, str) and sweep.max_t_key:
        max_t = int(fixed[sweep.max_t_key])
        scheduler = ASHAScheduler(metric=sweep.metric, mode=sweep.mode, time_attr=sweep.time_attr,
                                  max_t=max_t, grace_period=1, reduction_factor=3)
    callback = MLflowTrialCallback(tracking_uri, experiment_id, parent_id,
                                   undelivered_path(args.storage_path, tune_dir),
                                   log_checkpoint=args.log_checkpoints == "yes", max_t=max_t,
                                   time_attr=sweep.time_attr, new_parent=True)
    tuner = tune.Tuner(
        trainable,
        param_space=fixed,
        tune_config=tune.TuneConfig(
            search_alg=make_searcher(sweep, args, points, study_name), scheduler=scheduler,
            num_samples=num_samples, max_concurrent_trials=args.max_concurrent,
            reuse_actors=True),
        run_config=tune.RunConfig(
            name=tune_dir, storage_path=args.storage_path,
            callbacks=[callback, JsonLoggerCallback()],
            failure_config=tune.FailureConfig(max_failures=args.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1), verbose=1,
            progress_reporter=ProgressLine(sweep.metric, sweep.mode)))
    return parent_id, tuner, callback


def run(sweep: Sweep, args, fixed: dict, points: list[dict], tracking_uri: str,
        resumable=(None, None)) -> str:
    """Launch the planned sweep, or resume ``resumable`` (from :func:`find_resumable`);
    return the MLflow parent run id."""
    import ray

    started_here = not ray.is_initialized()
    init_ray(args.num_cpus)
    try:
        check_cluster_resources(args.cpus_per_trial, args.gpus_per_trial)
    except ValueError as exc:
        if started_here:
            ray.shutdown()
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    store.results_dir().mkdir(parents=True, exist_ok=True)
    try:
        return _launch(sweep, args, fixed, points, tracking_uri, resumable)
    finally:
        if started_here and not os.environ.get("RAY_ADDRESS"):
            ray.shutdown()  # the local Ray this launch started; a caller's Ray or a cluster stays


def _launch(sweep: Sweep, args, fixed: dict, points: list[dict], tracking_uri: str,
            resumable) -> str:
    """:func:`run` once Ray is up: the parent run (new or resumed), the Tuner, its fit, the
    report; returns the MLflow parent run id."""
    from ray import tune

    preset = sweep.presets[args.preset]
    client = store.client(tracking_uri)
    experiment_id = store.ensure_experiment(client, sweep.name)
    num_samples = len(points) if args.search == "grid" else (args.num_samples or preset.num_samples)
    plan = plan_hash(sweep, args, fixed, points)
    resources = {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial}
    # reused actors (reuse_actors=True) start every trial from a fresh process's state
    trainable = tune.with_resources(fresh_state(sweep.trainable), resources)
    # Tune's default loggers also write progress.csv (and TensorBoard files) per result; only
    # result.json is read back (tracking.reconcile): keep its logger alone, on a new launch
    # (JsonLoggerCallback in _new_launch) and on a resumed one (saved with the Tuner).
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

    parent, tune_path = resumable
    if parent is not None:
        parent_id = parent.info.run_id
        client.set_tag(parent_id, store.TAG_DRIVER, driver_tag())
        print(f"[sweep] resuming unfinished sweep: MLflow parent run {parent_id}, Ray Tune "
              f"state {tune_path}")
        tuner = tune.Tuner.restore(tune_path, trainable=trainable, resume_unfinished=True,
                                   resume_errored=False, restart_errored=False)
        callback = restored_callback(tuner)
        reconcile_tracking(callback, tune_path)
    else:
        parent_id, tuner, callback = _new_launch(sweep, args, fixed, points, client,
                                                 experiment_id, plan, num_samples, trainable,
                                                 tracking_uri)

    if args.search == "grid":
        # Tune lets a searcher keep only one trial pending (it would suggest blind otherwise);
        # a grid's points are all known, so let trials queue up to fill free slots at once.
        os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", "16")
    started = time.time()
    status = "FAILED"
    grid = None
    try:
        grid = tuner.fit()
        status = "FINISHED"
    finally:
        # the parent's end goes through the callback's queue: a store still down at the end
        # gives no traceback; it is spilled with the rest for `python -m tracking.replay`
        final = {"sweep_seconds": time.time() - started}
        if grid is not None:
            final["trials_failed"] = len(grid.errors)
        left = callback.close(status, final)
    if parent is not None:
        drop_orphans(client, parent_id, restored_trial_ids(grid))
    errors = len(grid.errors)
    print(f"[sweep] done in {time.time() - started:.0f} s: {len(grid) - errors} trials finished, "
          f"{errors} failed" + (f", {left} MLflow events not in MLflow (see above)" if left else ""))
    if callback.spilled:  # the store was unreachable at the end
        print(f"[sweep] report skipped: MLflow does not hold every event yet; after the replay, "
              f"run: python -m analysis.report {sweep.name} --run-id {parent_id}")
    elif not args.no_table:
        from analysis.report import report  # the one way from sweeps into analysis

        report(sweep.name, run_id=parent_id, tracking_uri=tracking_uri)
    return parent_id
