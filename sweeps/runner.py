"""The one runner every sweep script shares.

A sweep script declares a :class:`Sweep` (searched axes, grid, presets, trainable, the report
it feeds) and calls :func:`main`, which

1. parses the shared flags (``--search grid|tpe``, ``--preset``, ``--seeds``,
   ``--num-samples``, ``--gpus-per-trial``, ``--max-concurrent``, ``--max-failures``,
   ``--resume``, ``--set KEY=VALUE``, ...; :mod:`sweeps.cli`),
2. plans the launch and validates every configuration it will run, and checks that the MLflow
   store opens, that the CPUs and GPUs asked for exist, that ``--warm-start`` has a grid study
   to start from and ``--resume`` a launch to resume, all *before* starting Ray or writing to
   MLflow (:mod:`sweeps.plan`, :mod:`sweeps.launch`): a bad input exits with status 2 and a
   message naming the field; an evaluation sweep (``checkpoints_from``) gets its source
   sweep's checkpoints as a grid axis here, after the store check (:mod:`sweeps.sources`),
3. starts or joins Ray, resumes an unfinished launch of the same plan or opens a new MLflow
   parent run, and runs Ray Tune with Optuna as the searcher (:mod:`sweeps.launch`,
   :mod:`sweeps.resume`, :mod:`sweeps.search`). A grid's cells are enqueued in the Optuna
   study one at a time, each just before the ``ask`` that takes it; trials become nested child
   runs (:mod:`tracking.callback`),
4. prints the sweep's report from MLflow (:func:`analysis.report.report`) unless
   ``--no-table``.

``--dry-run`` stops after step 2, without opening the MLflow store or the Optuna storage, and
prints the plan (:mod:`sweeps.dry_run`): trials, cells per pack, resources, estimated cost.

docs/platform.md walks through a sweep end to end.
"""
from __future__ import annotations

import sys

from tracking import store
from sweeps.cli import build_parser, parse_value
from sweeps.dry_run import describe
from sweeps.launch import (check_local_cpus, check_local_gpus, check_tracking,
                           check_warm_start, find_resumable, run)
from sweeps.plan import Preset, Sweep, planned_configs
from sweeps.sources import check_source, resolve_source

# The names sweep scripts and tests import from here.
__all__ = ["Preset", "Sweep", "build_parser", "main", "parse_value", "planned_configs"]


def main(sweep: Sweep, argv: list[str] | None = None) -> str | None:
    """Run the sweep with the command line ``argv`` (default ``sys.argv[1:]``); return the
    MLflow parent run id, or None for ``--dry-run``, which prints the plan and starts nothing."""
    argv = sys.argv[1:] if argv is None else argv
    if sweep.for_argv is not None:
        sweep = sweep.for_argv(argv)
    args = build_parser(sweep).parse_args(argv)
    try:
        fixed, points = planned_configs(sweep, args)
        check_source(sweep, args, fixed)
        check_local_gpus(args.gpus_per_trial)
        check_local_cpus(args.cpus_per_trial, args.num_cpus)
        tracking_uri = store.default_tracking_uri()
        if not args.dry_run:  # these open the MLflow store and the Optuna storage
            check_tracking(tracking_uri)
            sweep, points = resolve_source(sweep, fixed, points, tracking_uri)
            check_warm_start(sweep, args)
            resumable = find_resumable(sweep, args, fixed, points, tracking_uri)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    if args.dry_run:
        print(describe(sweep, args, fixed, points, tracking_uri))
        return None
    return run(sweep, args, fixed, points, tracking_uri, resumable)
