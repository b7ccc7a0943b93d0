"""The command line every sweep script shares: its flags, their checks, ``--set`` values.

Only what the flags themselves say is checked here (ranges, choices, ``KEY=VALUE``); whether
the resulting trial configs make sense is the sweep's own ``validate`` (:mod:`sweeps.plan`).
"""
from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

from tracking import store

if TYPE_CHECKING:
    from sweeps.plan import Sweep

SEARCH_MODES = ("grid", "tpe")
RESUME_MODES = ("auto", "always", "never")


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
    p.add_argument("--log-checkpoints", choices=("yes", "no"),
                   default="yes" if sweep.log_checkpoint else "no",
                   help="log each trial's final checkpoint to its MLflow run (what evaluation "
                        "sweeps read, e.g. robustness and wins)")
    p.add_argument("--no-table", action="store_true", help="skip printing the table at the end")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the whole plan, print it (trials, cells per trial, resources, "
                        "estimated cost) and exit, starting nothing (no Ray, MLflow or Optuna)")
    return p


def parse_value(value: str):
    """``--set`` values: JSON (numbers, true/false/null, lists, objects), else the string."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return {"True": True, "False": False, "None": None}.get(value, value)


def check_args(sweep: Sweep, args) -> None:
    """Raise ``ValueError`` naming the flag and what it allows, for a bad flag value."""
    if args.search not in SEARCH_MODES:
        raise ValueError(f"--search must be one of {', '.join(SEARCH_MODES)} (got {args.search!r})")
    if args.preset not in sweep.presets:
        raise ValueError(f"--preset must be one of {', '.join(sweep.presets)} (got {args.preset!r})")
    offered = sweep.presets[args.preset].searches
    if args.search not in offered:
        others = [name for name, p in sweep.presets.items() if args.search in p.searches]
        raise ValueError(f"--search must be one of {', '.join(offered)} with --preset "
                         f"{args.preset} (--search {args.search}: presets "
                         f"{', '.join(others) or 'none'})")
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
    if args.num_cpus is not None and args.num_cpus < 1:
        raise ValueError(f"--num-cpus must be an integer >= 1 (got {args.num_cpus})")
    if args.warm_start and args.search != "tpe":
        raise ValueError(f"--warm-start applies to --search tpe (got --search {args.search})")
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set takes KEY=VALUE (got {item!r})")


def set_values(args) -> dict:
    """The ``--set KEY=VALUE`` overrides, parsed (later ones win)."""
    values = {}
    for item in args.set:
        key, value = item.split("=", 1)
        values[key] = parse_value(value)
    return values
