"""The one runner every sweep script shares: CLI, validation, Ray Tune x Optuna, MLflow, table.

A sweep script declares a :class:`Sweep` (search space, grid, presets, trainable, paper table)
and calls :func:`main`. The runner

1. parses the flags (``--search grid|tpe``, ``--preset``, ``--seeds``, ``--num-samples``,
   ``--gpus-per-trial``, ``--cpus-per-trial``, ``--max-concurrent``, ``--max-failures``, ...),
2. validates every configuration it will launch *before* starting Ray or touching MLflow,
3. starts a local Ray (no ``RAY_ADDRESS``) or joins the cluster (``RAY_ADDRESS``, as under
   ``ray job submit``),
4. opens the sweep's MLflow parent run; the trials become nested child runs
   (:mod:`tracking.callback`),
5. runs Ray Tune with Optuna as the searcher, keeping the study in persistent Optuna storage,
6. regenerates the sweep's paper table from MLflow (:mod:`analysis.tables`) and prints it.

Grid search. ``OptunaSearch`` refuses ``tune.grid_search`` and Optuna's ``GridSampler``
duplicates points under concurrency (ENV-NOTES). So the runner enumerates the grid itself and
hands every cell to Optuna as an *enqueued* trial (``points_to_evaluate``) with
``num_samples`` equal to the number of cells: each ``ask`` pops a different enqueued trial, so
every cell runs exactly once, in parallel, with no duplicates. The grid lives in the same
Optuna search space (the same distributions) as the TPE search, so a later ``--search tpe
--warm-start`` copies the grid's finished trials into its study and starts from them.
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # periodic status table, not a box per result
# Local experiment-state snapshots cost ~10 ms; the warning about their frequency is noise here.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")

import optuna  # noqa: E402
from optuna.distributions import BaseDistribution, CategoricalDistribution  # noqa: E402

from tracking import store  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
SEARCH_MODES = ("grid", "tpe")
RESUME_MODES = ("auto", "always", "never")
TAG_PLAN = "sweep.plan"
TAG_DRIVER = "sweep.driver"
TAG_TUNE_DIR = "sweep.tune_dir"


def redact(text: str) -> str:
    """Hide credentials in URLs (``scheme://user:secret@host`` -> ``scheme://user:***@host``)."""
    return re.sub(r"(://[^:/@\s]+:)[^@/\s]+@", r"\1***@", text)


@dataclass
class Preset:
    """A named set of fixed trial settings (``--preset``)."""

    config: dict
    """Fixed values merged into every trial's config (epochs, model size, dataset, ...)."""
    grid: dict[str, list] | None = None
    """Replaces the sweep's grid for this preset (e.g. fewer cells for smoke)."""
    space: dict[str, BaseDistribution] | None = None
    """Replaces the sweep's TPE space for this preset (other axes then come from ``config``)."""
    num_samples: int = 20
    """Default number of TPE trials."""
    description: str = ""


@dataclass
class Sweep:
    """A declarative experiment: what to vary, what to run, what table it feeds."""

    name: str
    """MLflow experiment name and the name ``python -m analysis.tables NAME`` takes."""
    table: str
    """Id of the paper table in :mod:`analysis.tables` this sweep regenerates."""
    trainable: Callable
    """Ray Tune function trainable from :mod:`trainables`."""
    space: dict[str, BaseDistribution]
    """Optuna distributions of the searched axes (TPE samples them; the grid lies inside)."""
    grid: dict[str, list]
    """Grid values per axis of ``space`` (``--search grid``)."""
    presets: dict[str, Preset]
    metric: str | list[str]
    """Metric(s) the searcher optimises; a list means a multi-objective (Pareto) search."""
    mode: str | list[str]
    validate: Callable[[dict], None]
    """Raises ``ValueError`` naming the field and the allowed values for a bad trial config."""
    default_preset: str = "smoke"
    time_attr: str = "training_iteration"
    """ASHA's time axis (one Tune iteration = one epoch for the training trainables)."""
    max_t_key: str | None = "epochs"
    """Config key holding the number of iterations a trial runs (ASHA's ``max_t``)."""
    log_checkpoint: bool = False
    """Log each finished trial's last checkpoint as an MLflow artifact (``checkpoint/``), for
    analyses that need the trained state (e.g. memories drawn as images)."""
    description: str = ""


def build_parser(sweep: Sweep) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python sweeps/{sweep.name}.py",
        description=f"{sweep.description} Feeds {sweep.table}.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--search", default="grid", help=f"one of {', '.join(SEARCH_MODES)}")
    p.add_argument("--preset", default=sweep.default_preset,
                   help=f"one of {', '.join(sweep.presets)}")
    p.add_argument("--seeds", type=int, default=1,
                   help="grid: runs per cell with seeds 0..N-1 (the paper averages 5)")
    p.add_argument("--num-samples", type=int, default=None,
                   help="TPE: number of trials (default: the preset's)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="fractional values share a GPU between trials")
    p.add_argument("--max-concurrent", type=int, default=None,
                   help="cap on trials running at once (default: as resources allow)")
    p.add_argument("--max-failures", type=int, default=0,
                   help="retries of a failed trial from its last checkpoint")
    p.add_argument("--resume", choices=RESUME_MODES, default="auto", nargs="?", const="always",
                   help="auto: continue an unfinished launch of the same plan if its driver died "
                        "(Ray Tune restore, same Optuna study, same MLflow parent run); "
                        "--resume: insist on it; --resume never: always start afresh")
    p.add_argument("--warm-start", action="store_true",
                   help="TPE: start from the finished trials of this sweep's latest grid study")
    p.add_argument("--storage-path", default=os.environ.get("DHAM_STORAGE_PATH",
                                                            str(store.results_dir() / "ray")),
                   help="Ray Tune results and checkpoints; on a multi-node cluster a shared "
                        "file system or s3:// path every node reaches")
    p.add_argument("--optuna-storage", default=os.environ.get(
        "DHAM_OPTUNA_STORAGE", str(store.results_dir() / "optuna.journal")),
                   help="where every Optuna study is kept: a file path (Optuna's journal "
                        "storage) or an RDB URL (sqlite:///..., postgresql://...)")
    p.add_argument("--num-cpus", type=int, default=None,
                   help="local Ray only: CPUs to give it (default: all)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a fixed config value of the preset (repeatable)")
    p.add_argument("--no-table", action="store_true", help="skip printing the table at the end")
    return p


def parse_value(value: str):
    """``--set`` values: JSON (numbers, true/false/null, lists, objects), else the string."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return {"True": True, "False": False, "None": None}.get(value, value)


def _check_args(sweep: Sweep, args) -> None:
    if args.search not in SEARCH_MODES:
        raise ValueError(f"--search must be one of {', '.join(SEARCH_MODES)} (got {args.search!r})")
    if args.preset not in sweep.presets:
        raise ValueError(f"--preset must be one of {', '.join(sweep.presets)} (got {args.preset!r})")
    if args.seeds < 1:
        raise ValueError(f"--seeds must be an integer >= 1 (got {args.seeds})")
    if args.search == "tpe" and args.seeds != 1:
        raise ValueError("--seeds applies to --search grid (TPE trials each draw one seed); "
                         f"got --seeds {args.seeds} with --search tpe")
    if args.num_samples is not None and args.num_samples < 1:
        raise ValueError(f"--num-samples must be >= 1 (got {args.num_samples})")
    if args.cpus_per_trial <= 0:
        raise ValueError(f"--cpus-per-trial must be > 0 (got {args.cpus_per_trial})")
    if args.gpus_per_trial < 0:
        raise ValueError(f"--gpus-per-trial must be >= 0 (got {args.gpus_per_trial})")
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise ValueError(f"--max-concurrent must be >= 1 (got {args.max_concurrent})")
    if args.max_failures < 0:
        raise ValueError(f"--max-failures must be >= 0 (got {args.max_failures})")
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set takes KEY=VALUE (got {item!r})")


def fixed_config(sweep: Sweep, args) -> dict:
    config = dict(sweep.presets[args.preset].config)
    for item in args.set:
        key, value = item.split("=", 1)
        config[key] = parse_value(value)
    if args.gpus_per_trial > 0:
        config.setdefault("device", "cuda")
    return config


def pinned(args) -> set[str]:
    """Keys given with ``--set``: they pin their axis (no longer searched or gridded)."""
    return {item.split("=", 1)[0] for item in args.set}


def distributions(sweep: Sweep, preset: Preset) -> dict[str, BaseDistribution]:
    return {**sweep.space, **(preset.space or {})}


def search_space(sweep: Sweep, preset: Preset, pins: set[str] = frozenset()
                 ) -> dict[str, BaseDistribution]:
    """TPE's space: the preset's (if it has one) or the sweep's, less the ``--set`` keys.
    A searched key's value comes from the searcher, whatever the preset's config says."""
    space = preset.space if preset.space is not None else sweep.space
    return {k: d for k, d in space.items() if k not in pins}


def grid_points(sweep: Sweep, preset: Preset, seeds: int, pins: set[str] = frozenset()
                ) -> list[dict]:
    """Every grid cell once per seed, as Optuna-enqueueable points: the preset's grid (if it
    has one) or the sweep's, less the ``--set`` keys. A grid axis's value comes from the grid,
    whatever the preset's config says."""
    axes = preset.grid if preset.grid is not None else sweep.grid
    axes = {k: v for k, v in axes.items() if k not in pins}
    dists = distributions(sweep, preset)
    for key, values in axes.items():
        if key not in dists:
            raise ValueError(f"grid axis {key!r} is not in the search space "
                             f"({', '.join(dists)})")
        for v in values:
            if not in_space(dists[key], v):
                raise ValueError(f"grid value {key}={v!r} lies outside its search space "
                                 f"{dists[key]}")
    keys = list(axes)
    cells = [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]
    return [{**cell, "seed": seed} for seed in range(seeds) for cell in cells]


def in_space(dist: BaseDistribution, value) -> bool:
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    return dist.low <= value <= dist.high


def space_corners(space: dict[str, BaseDistribution]) -> list[dict]:
    """Points that exercise every bound/choice of a TPE space, for validation before launch."""
    pts = []
    for key, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            pts.extend({key: c} for c in dist.choices)
        else:
            pts.extend([{key: dist.low}, {key: dist.high}])
    base = {k: (d.choices[0] if isinstance(d, CategoricalDistribution) else d.low)
            for k, d in space.items()}
    return [{**base, **p} for p in pts]


def planned_configs(sweep: Sweep, args) -> tuple[dict, list[dict]]:
    """(fixed config, list of points) — validated; raises ValueError before anything starts."""
    _check_args(sweep, args)
    fixed = fixed_config(sweep, args)
    preset = sweep.presets[args.preset]
    if args.search == "grid":
        points = grid_points(sweep, preset, args.seeds, pinned(args))
        to_check = points
    else:
        points = []
        to_check = space_corners(search_space(sweep, preset, pinned(args)))
        fixed.setdefault("seed", 0)
    for point in to_check:
        sweep.validate({**fixed, **point})
    return fixed, points


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


def git_commit() -> str:
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


def init_ray(args) -> None:
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address)
    else:
        ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False,
                 dashboard_host="127.0.0.1")


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


def optuna_storage(spec: str):
    """Optuna storage from ``--optuna-storage``: an RDB URL, or a path to a journal file.

    The journal file is the default: an append-only log with file locks, about 1 ms per
    enqueue+ask+tell here against about 24 ms for SQLite, which matters at ~0.1 s per trial."""
    if "://" in spec:
        return optuna.storages.RDBStorage(spec)
    from optuna.storages.journal import JournalFileBackend

    Path(spec).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(spec))


def make_searcher(sweep: Sweep, args, fixed: dict, points: list[dict], study_name: str):
    from ray.tune.search.optuna import OptunaSearch

    class GridSearch(OptunaSearch):
        """OptunaSearch that hands out a fixed list of grid points, each exactly once.

        Each point is enqueued in the Optuna study just before the ``ask`` that takes it, and
        the index of the next point is part of the searcher's own state, which Tune saves
        together with its trial list. Enqueueing the whole grid up front (``points_to_evaluate``)
        would leave the queue in the database out of step with a restored sweep: trials asked
        after Tune's last save would be lost from the grid and replaced by TPE samples.
        """

        def __init__(self, grid: list[dict], **kwargs):
            super().__init__(**kwargs)
            self._grid = grid
            self._next_point = 0

        def suggest(self, trial_id: str):
            if trial_id not in self._ot_trials:
                if self._next_point >= len(self._grid):
                    return OptunaSearch.FINISHED
                self._ot_study.enqueue_trial(self._grid[self._next_point])
                self._next_point += 1
            return super().suggest(trial_id)

    storage = optuna_storage(args.optuna_storage)
    if args.warm_start:
        copy_finished_trials(sweep, args, storage, study_name)
    common = dict(metric=sweep.metric, mode=sweep.mode, study_name=study_name, storage=storage,
                  sampler=optuna.samplers.TPESampler(seed=0))
    if not points:
        return OptunaSearch(space=search_space(sweep, sweep.presets[args.preset], pinned(args)),
                            **common)
    # Grid: only the grid's axes (plus the seed) form the space, so Optuna samples nothing
    # beyond the enqueued values; they keep the sweep's distributions for TPE warm starts.
    dists = distributions(sweep, sweep.presets[args.preset])
    space = {k: dists[k] for k in points[0] if k != "seed"}
    space["seed"] = CategoricalDistribution(sorted({p["seed"] for p in points}))
    return GridSearch(points, space=space, **common)


def copy_finished_trials(sweep: Sweep, args, storage, study_name: str) -> None:
    """Seed a TPE study with the finished trials of this sweep's latest grid study."""
    summaries = [s for s in optuna.get_all_study_summaries(storage)
                 if s.study_name.startswith(f"{sweep.name}.{args.preset}.grid.")]
    if not summaries:
        raise ValueError(f"--warm-start found no grid study of sweep {sweep.name!r}, preset "
                         f"{args.preset!r} in {args.optuna_storage}; run --search grid first")
    source = max(summaries, key=lambda s: s.datetime_start or 0)
    old = optuna.load_study(study_name=source.study_name, storage=storage)
    directions = old.directions
    new = optuna.create_study(study_name=study_name, storage=storage, directions=directions,
                              load_if_exists=True)
    done = [t for t in old.trials if t.state == optuna.trial.TrialState.COMPLETE]
    new.add_trials(done)
    print(f"[sweep] warm start: {len(done)} finished trials from study {source.study_name}")


def main(sweep: Sweep, argv: list[str] | None = None) -> str:
    """Run the sweep; return the MLflow parent run id."""
    args = build_parser(sweep).parse_args(argv)
    try:
        fixed, points = planned_configs(sweep, args)
        check_local_gpus(args.gpus_per_trial)
        tracking_uri = store.default_tracking_uri()
        check_tracking(tracking_uri)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    return run(sweep, args, fixed, points, tracking_uri)


def plan_hash(sweep: Sweep, args, fixed: dict, points: list[dict]) -> str:
    """Identifies a sweep's plan: a rerun with the same plan may resume an unfinished launch."""
    plan = {"sweep": sweep.name, "search": args.search, "preset": args.preset, "fixed": fixed,
            "points": points, "num_samples": args.num_samples, "seeds": args.seeds}
    return hashlib.sha256(json.dumps(plan, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _driver_alive(tag: str | None) -> bool:
    """Is the driver recorded as ``host:pid`` still running (on this host)?"""
    if not tag or ":" not in tag:
        return False
    host, pid = tag.rsplit(":", 1)
    if host != socket.gethostname():
        return True  # another machine's driver: assume it lives, never steal its sweep
    try:
        os.kill(int(pid), 0)
        return True
    except (OSError, ValueError):
        return False


def find_unfinished(client, experiment_id: str, plan: str, storage_path: str):
    """The latest parent run of this plan whose driver died before it finished, if restorable."""
    from ray import tune

    runs = client.search_runs(
        [experiment_id],
        filter_string=(f"tags.`{store.TAG_ROLE}` = '{store.ROLE_PARENT}' and "
                       f"tags.`{TAG_PLAN}` = '{plan}' and attributes.status = 'RUNNING'"),
        order_by=["attributes.start_time DESC"])
    for run in runs:
        if _driver_alive(run.data.tags.get(TAG_DRIVER)):
            continue
        path = os.path.join(storage_path, run.data.tags.get(TAG_TUNE_DIR, ""))
        if run.data.tags.get(TAG_TUNE_DIR) and tune.Tuner.can_restore(path):
            return run, path
        client.set_tag(run.info.run_id, store.TAG_STATUS_REASON,
                       "driver died before Ray Tune saved a restorable state")
        client.set_terminated(run.info.run_id, status="FAILED")
    return None, None


def drop_orphans(client, parent_id: str, trial_ids: set) -> None:
    """Delete (soft, recoverable in the MLflow UI) child runs of trials that the killed driver
    had started after Ray Tune's last saved state: Tune re-ran that work as new trials."""
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


def _tracking_callback(tuner):
    """The MLflow callback inside a (restored) Tuner: Tune restores callbacks from its state."""
    from tracking.callback import MLflowTrialCallback

    callbacks = tuner._local_tuner._run_config.callbacks or []  # no public accessor in Ray 2.60
    return next(cb for cb in callbacks if isinstance(cb, MLflowTrialCallback))


def run(sweep: Sweep, args, fixed: dict, points: list[dict], tracking_uri: str) -> str:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from tracking.callback import MLflowTrialCallback

    store.results_dir().mkdir(parents=True, exist_ok=True)
    init_ray(args)
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
    driver = f"{socket.gethostname()}:{os.getpid()}"
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
        client.set_tag(parent_id, TAG_DRIVER, driver)
        print(f"[sweep] resuming unfinished sweep: MLflow parent run {parent_id}, Ray Tune "
              f"state {tune_path}")
        tuner = tune.Tuner.restore(tune_path, trainable=trainable, resume_unfinished=True,
                                   resume_errored=False, restart_errored=False)
        callback = _tracking_callback(tuner)
    else:
        parent_id = client.create_run(
            experiment_id, run_name=f"{sweep.name}-{args.search}-{args.preset}",
            tags={store.TAG_ROLE: store.ROLE_PARENT, store.TAG_SWEEP: sweep.name,
                  store.TAG_TABLE: sweep.table, store.TAG_SEARCH: args.search,
                  store.TAG_PRESET: args.preset, store.TAG_GIT_COMMIT: git_commit(),
                  TAG_PLAN: plan, TAG_DRIVER: driver,
                  "mlflow.source.name": f"sweeps/{sweep.name}.py"}).info.run_id
        tune_dir = f"{sweep.name}-{parent_id[:8]}"
        client.set_tag(parent_id, TAG_TUNE_DIR, tune_dir)
        study_name = f"{sweep.name}.{args.preset}.{args.search}.{parent_id[:8]}"
        params = {**vars(args), "num_trials": num_samples, "optuna_study": study_name,
                  **{f"fixed.{k}": v for k, v in fixed.items()}}
        for key, value in params.items():
            client.log_param(parent_id, key, redact(str(value))[:6000])
        print(f"[sweep] {sweep.name}: {args.search} search, preset {args.preset}, "
              f"{num_samples} trials; MLflow parent run {parent_id} at {redact(tracking_uri)}")
        callback = MLflowTrialCallback(tracking_uri, experiment_id, parent_id,
                                       Path(args.storage_path) / tune_dir
                                       / "mlflow_undelivered.jsonl",
                                       log_checkpoint=sweep.log_checkpoint)
        scheduler = None
        if args.search == "tpe" and isinstance(sweep.metric, str) and sweep.max_t_key:
            scheduler = ASHAScheduler(metric=sweep.metric, mode=sweep.mode,
                                      time_attr=sweep.time_attr,
                                      max_t=int(fixed[sweep.max_t_key]), grace_period=1,
                                      reduction_factor=3)
        tuner = tune.Tuner(
            trainable,
            param_space=fixed,
            tune_config=tune.TuneConfig(
                search_alg=make_searcher(sweep, args, fixed, points, study_name), scheduler=scheduler,
                num_samples=num_samples, max_concurrent_trials=args.max_concurrent,
                reuse_actors=True),
            run_config=tune.RunConfig(
                name=tune_dir, storage_path=args.storage_path, callbacks=[callback],
                failure_config=tune.FailureConfig(max_failures=args.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1), verbose=1))

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
        # every trial of the restored sweep, errored ones included (no public accessor)
        drop_orphans(client, parent_id, {t.trial_id for t in grid._experiment_analysis.trials})
    errors = len(grid.errors)
    client.log_metric(parent_id, "trials_failed", errors)
    client.log_metric(parent_id, "sweep_seconds", time.time() - started)
    print(f"[sweep] done in {time.time() - started:.0f} s: {len(grid) - errors} trials finished, "
          f"{errors} failed" + (f", {left} MLflow events undelivered" if left else ""))
    if not args.no_table:
        from analysis.tables import report

        report(sweep.name, run_id=parent_id, tracking_uri=tracking_uri)
    return parent_id
