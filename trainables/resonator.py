"""Ray Tune adapter for resonator packs: config dict → ResonatorCells → evaluate_pack → the
cells in one Tune result (``trainables.pack.report_pack``).

A trial evaluates a pack: the config's list-valued keys are pack axes
(``dham_core.resonator_pack.cells_from_config``), because a cell costs milliseconds to seconds
and a trial about a second. MLflow step = cell index (``tracking.cells`` expands the result),
and the cell's coordinates are among the metrics, so the tracking store reads one row per cell;
the result's top level is the last cell's row, what a search optimises.
"""
from __future__ import annotations

from dham_core.resonator_pack import ResonatorCell, cells_from_config, evaluate_pack
from trainables.common import FAULT_KEY
from trainables.pack import report_pack

# Per-cell outputs of evaluate_pack reported as metrics (coordinates + results).
REPORTED = ("D", "k", "a", "noise", "V", "M", "seed", "num_problems", "problem_size", "max_it",
            "accuracy", "factor_accuracy", "converged_frac", "iters_mean", "iters_median",
            "iters_p95", "iters_max", "seconds", "seconds_per_problem",
            "problems_per_second")


def pack_cells(config: dict) -> list[ResonatorCell]:
    """The trial's cells, validated (the test-only fault key is not a cell field)."""
    return cells_from_config({k: v for k, v in config.items() if k != FAULT_KEY})


def validate(config: dict) -> None:
    pack_cells(config)


def train_resonator_pack(config: dict) -> None:
    rows, problems_done = [], 0
    for i, result in enumerate(evaluate_pack(pack_cells(config)), start=1):
        metrics = {k: float(result[k]) for k in REPORTED if result.get(k) is not None}
        problems_done += result["num_problems"]
        metrics["cell"] = i
        metrics["problems_done"] = float(problems_done)  # last value: the pack's total
        rows.append(metrics)
    report_pack(config, rows)
