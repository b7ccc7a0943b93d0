"""Ray Tune trainable for resonator networks: one trial evaluates a *pack* of cells.

Cells are tiny (milliseconds to seconds) while a Ray trial costs about a second, so a trial
takes a config whose list-valued keys are pack axes: ``{"D": 1024, "k": 64, "V": 3,
"M": [5, 10, 22], "a": [2, 5], "seed": 0}`` is a pack of 3 x 2 cells, evaluated by
``dham_core.resonator.evaluate_pack`` (cells that share shapes run as one batch). The trial
reports once per cell (Tune iteration = MLflow step = cell index) with the cell's
coordinates among the metrics, and a last line with the pack's aggregate (``accuracy``,
``iters_mean`` of its last cell are what a single-cell TPE trial optimises).
"""
from __future__ import annotations

import itertools

from dham_core.resonator import evaluate_pack, normalise_cell
from trainables.common import FAULT_KEY, inject_fault, report

CELL_KEYS = ("kind", "D", "k", "a", "V", "M", "num_problems", "seed", "max_it", "device",
             "update", "bundling", "patience", "shared_codebooks", "noise", "similarity",
             "weights", "overlap")
SPARSE_ONLY = ("k", "a", "bundling", "noise", "similarity", "weights", "overlap")
# Per-cell outputs of evaluate_pack reported as metrics (coordinates + results).
REPORTED = ("D", "k", "a", "noise", "V", "M", "seed", "num_problems", "problem_size", "max_it",
            "accuracy", "factor_accuracy", "converged_frac", "iters_mean", "iters_median",
            "iters_p95", "iters_max", "seconds", "seconds_per_problem",
            "problems_per_second")


def pack_cells(config: dict) -> list[dict]:
    """Expand the list-valued keys of ``config`` into the pack's cells (validated)."""
    unknown = sorted(k for k in config if k not in CELL_KEYS and k != FAULT_KEY)
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(unknown)} for a resonator trial; "
                         f"allowed: {', '.join(CELL_KEYS)}")
    base = {k: v for k, v in config.items() if k in CELL_KEYS}
    axes = {k: v for k, v in base.items() if isinstance(v, (list, tuple))}
    cells = []
    for combo in itertools.product(*axes.values()):
        cell = {**base, **dict(zip(axes, combo))}
        if cell.get("kind", "sparse") == "dense":
            cell = {k: v for k, v in cell.items() if k not in SPARSE_ONLY}
        cells.append(cell)
    for cell in cells:
        normalise_cell(cell)  # raises ValueError naming the field (k | D, a <= M, V >= 2, ...)
    # a dense cell has no k or a: several a-values collapse into one cell
    unique = {tuple(sorted((k, str(v)) for k, v in c.items())): c for c in cells}
    return list(unique.values())


def validate(config: dict) -> None:
    pack_cells(config)


def train_resonator_pack(config: dict) -> None:
    cells = pack_cells(config)
    results = evaluate_pack(cells)
    problems_done = 0
    for i, result in enumerate(results, start=1):
        metrics = {k: float(result[k]) for k in REPORTED if result.get(k) is not None}
        problems_done += result["num_problems"]
        metrics["cell"] = i
        metrics["problems_done"] = float(problems_done)  # last value: the pack's total
        if FAULT_KEY in config:
            inject_fault(config, i, False, metrics)
        report(metrics)
