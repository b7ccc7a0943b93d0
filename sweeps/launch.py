"""Launching a planned sweep: the checks before launch, Ray, the MLflow parent run, the Tuner.

:func:`run` takes the fixed config and grid points from :mod:`sweeps.plan` and

1. starts a local Ray (no ``RAY_ADDRESS``) or joins the cluster (``RAY_ADDRESS``, as under
   ``ray job submit``) and checks that some node has the GPUs a trial asks for;
2. resumes an unfinished launch of the same plan (:mod:`sweeps.resume`) or opens a new MLflow
   parent run (tags from :mod:`tracking.store`, every flag and fixed value as a param);
3. builds the Tuner: the searcher from :mod:`sweeps.search` with its study in the persistent
   Optuna storage, ASHA for a single-metric TPE search, the MLflow callback
   (:mod:`tracking.callback`) that makes one child run per trial, Tune's failure retries and
   checkpoints;
4. runs it, closes the parent run, logs ``trials_failed`` and ``sweep_seconds`` to it and
   prints the sweep's report (:func:`analysis.report.report`).

The checks that need no Ray (:func:`check_tracking`, :func:`check_local_gpus`) run before
:func:`run`, from :func:`sweeps.runner.main`.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tracking import store
from tracking.callback import MLflowTrialCallback
from sweeps.plan import Sweep
from sweeps.resume import (driver_tag, drop_orphans, find_unfinished, plan_hash,
                           restored_callback, restored_trial_ids)
from sweeps.search import make_searcher

REPO_ROOT = Path(__file__).resolve().parent.parent


def redact(text: str) -> str:
    """Hide credentials in URLs (``scheme://user:secret@host`` -> ``scheme://user:***@host``)."""
    return re.sub(r"(://[^:/@\s]+:)[^@/\s]+@", r"\1***@", text)


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


def check_cluster_gpus(gpus_per_trial: float) -> None:
    """Refuse a per-trial GPU request that no node of the cluster can satisfy."""
    if gpus_per_trial <= 0:
        return
    import ray

    per_node = [n["Resources"].get("GPU", 0) for n in ray.nodes() if n.get("Alive")]
    if max(per_node, default=0) < gpus_per_trial:
        raise ValueError(f"--gpus-per-trial {gpus_per_trial} exceeds the GPUs of every node "
                         f"(largest node has {max(per_node, default=0):g})")


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
    callback = MLflowTrialCallback(tracking_uri, experiment_id, parent_id,
                                   Path(args.storage_path) / tune_dir / "mlflow_undelivered.jsonl",
                                   log_checkpoint=sweep.log_checkpoint)
    scheduler = None
    if args.search == "tpe" and isinstance(sweep.metric, str) and sweep.max_t_key:
        scheduler = ASHAScheduler(metric=sweep.metric, mode=sweep.mode, time_attr=sweep.time_attr,
                                  max_t=int(fixed[sweep.max_t_key]), grace_period=1,
                                  reduction_factor=3)
    tuner = tune.Tuner(
        trainable,
        param_space=fixed,
        tune_config=tune.TuneConfig(
            search_alg=make_searcher(sweep, args, points, study_name), scheduler=scheduler,
            num_samples=num_samples, max_concurrent_trials=args.max_concurrent,
            reuse_actors=True),
        run_config=tune.RunConfig(
            name=tune_dir, storage_path=args.storage_path, callbacks=[callback],
            failure_config=tune.FailureConfig(max_failures=args.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1), verbose=1))
    return parent_id, tuner, callback


def run(sweep: Sweep, args, fixed: dict, points: list[dict], tracking_uri: str) -> str:
    """Launch (or resume) the planned sweep; return the MLflow parent run id."""
    from ray import tune

    store.results_dir().mkdir(parents=True, exist_ok=True)
    init_ray(args.num_cpus)
    try:
        check_cluster_gpus(args.gpus_per_trial)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc

    preset = sweep.presets[args.preset]
    client = store.client(tracking_uri)
    experiment_id = store.ensure_experiment(client, sweep.name)
    num_samples = len(points) if args.search == "grid" else (args.num_samples or preset.num_samples)
    plan = plan_hash(sweep, args, fixed, points)
    resources = {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial}
    trainable = tune.with_resources(sweep.trainable, resources)

    parent, tune_path = (None, None) if args.resume == "never" else find_unfinished(
        client, experiment_id, plan, args.storage_path)
    if parent is None and args.resume == "always":
        print("error: --resume: no unfinished sweep with this plan (same script, search, preset, "
              "seeds and config) to resume", file=sys.stderr)
        raise SystemExit(2)
    if parent is not None:
        parent_id = parent.info.run_id
        client.set_tag(parent_id, store.TAG_DRIVER, driver_tag())
        print(f"[sweep] resuming unfinished sweep: MLflow parent run {parent_id}, Ray Tune "
              f"state {tune_path}")
        tuner = tune.Tuner.restore(tune_path, trainable=trainable, resume_unfinished=True,
                                   resume_errored=False, restart_errored=False)
        callback = restored_callback(tuner)
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
    try:
        grid = tuner.fit()
        status = "FINISHED"
    finally:
        left = callback.drain()
        client.set_terminated(parent_id, status=status)
    if parent is not None:
        drop_orphans(client, parent_id, restored_trial_ids(grid))
    errors = len(grid.errors)
    client.log_metric(parent_id, "trials_failed", errors)
    client.log_metric(parent_id, "sweep_seconds", time.time() - started)
    print(f"[sweep] done in {time.time() - started:.0f} s: {len(grid) - errors} trials finished, "
          f"{errors} failed" + (f", {left} MLflow events undelivered" if left else ""))
    if not args.no_table:
        from analysis.report import report  # the one way from sweeps into analysis

        report(sweep.name, run_id=parent_id, tracking_uri=tracking_uri)
    return parent_id
