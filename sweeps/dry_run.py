"""``--dry-run``: the plan of a launch, validated and printed, with nothing started.

:func:`describe` takes what :func:`sweeps.plan.planned_configs` returned (so every grid point
or TPE combination it prints has passed the sweep's ``validate``) and says: the trials, the
cells a pack trainable evaluates per trial (and the cells it drops), the resources per trial
and, where the preset declares a measured time per trial, an estimated cost. It ends with one
``[dry-run] plan: key=value ...`` line for scripts that collect plans. A dry run starts no Ray,
opens no MLflow store, creates no experiment, run, Optuna study or results folder.
"""
from __future__ import annotations

from trainables.common import FAULT_KEY
from sweeps.launch import redact
from sweeps.plan import MAX_TPE_CHECKS, Sweep, pinned, search_space, tpe_checks
from sweeps.sources import describe_source


def duration(seconds: float) -> str:
    """``42 s``, ``4.5 min``, ``3.2 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _cells(sweep: Sweep, configs: list[dict], grid: bool) -> tuple[str, str]:
    """(the cells line, the summary value); '-' for a sweep that declares no ``pack``."""
    if sweep.pack is None:
        return ("- (the sweep declares no pack count: one configuration per trial, or cells "
                "the trial decides)"), "-"
    sizes = [sweep.pack({k: v for k, v in c.items() if k != FAULT_KEY}) for c in configs]
    counts = [n for n, _ in sizes]
    dropped = sum(d for _, d in sizes)
    span = f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"
    line = f"{span} per trial (a pack: list-valued keys expand inside one trial)"
    if grid:
        line += f", {sum(counts)} in all"
    if dropped:
        where = "in all" if grid else "over the checked TPE points"
        line += (f"; {dropped} (a, M) cells with a > M dropped {where} (a cannot exceed M; "
                 "docs/resonator.md)")
    return line, span


def describe(sweep: Sweep, args, fixed: dict, points: list[dict], tracking_uri: str) -> str:
    """The printed plan of a validated launch (see the module docstring)."""
    preset = sweep.presets[args.preset]
    if args.search == "grid":
        trials = len(points)
        configs = [{**fixed, **p} for p in points]
        how = f"{trials // args.seeds} grid cells x {args.seeds} seed(s)"
        checked = f"every grid point ({trials})"
    else:
        trials = args.num_samples or preset.num_samples
        space = search_space(sweep, preset, pinned(args))
        checks, total = tpe_checks(space)
        configs = [{**fixed, **p} for p in checks]
        how = "TPE samples" + (", ASHA may stop some early" if isinstance(sweep.metric, str)
                               and sweep.max_t_key else "")
        checked = (f"all {total} combinations of the TPE space's bounds and choices "
                   f"({', '.join(space) or 'no axis'})" if total <= MAX_TPE_CHECKS else
                   f"{len(checks)} of {total} combinations of the TPE space's bounds and "
                   f"choices (every single-axis extreme + {MAX_TPE_CHECKS} drawn with seed 0)")
    cells_line, cells = _cells(sweep, configs, args.search == "grid")
    resources = f"{args.cpus_per_trial:g} CPU, {args.gpus_per_trial:g} GPU"
    concurrent = args.max_concurrent or "as resources allow"
    if preset.seconds_per_trial:
        total_s = trials * preset.seconds_per_trial
        cost = (f"{duration(total_s)} of trial time ({trials} x {preset.seconds_per_trial:g} s, "
                f"measured on {preset.measured_on})")
        cost_value = f"{duration(total_s)}@{preset.measured_on.split(',')[0]}"
    else:
        cost, cost_value = f"not declared by preset {args.preset} (no measured time)", "-"
    lines = [
        f"[dry-run] {sweep.name}: {args.search} search, preset {args.preset}; nothing started",
        f"  trials       {trials} ({how})",
        f"  cells        {cells_line}",
        f"  resources    {resources} per trial; at once: {concurrent}",
        f"  est. cost    {cost}",
        f"  validated    {checked}",
        *filter(None, [describe_source(sweep, fixed)]),
        f"  not checked  the MLflow store {redact(tracking_uri)}, --resume and --warm-start "
        "(a dry run opens neither MLflow nor the Optuna storage) and the Ray cluster's nodes; "
        "no Ray, MLflow run, Optuna study or results folder was created",
        f"[dry-run] plan: script={sweep.name} preset={args.preset} search={args.search} "
        f"trials={trials} cells={cells} resources={resources.replace(' ', '')} "
        f"cost={cost_value.replace(' ', '')}",
    ]
    return "\n".join(lines)
