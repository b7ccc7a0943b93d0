"""Ray Tune adapter for resonator packs: config dict → ResonatorCells → evaluate_pack → the
cells in one Tune result (``trainables.pack.report_pack``).

A trial evaluates a pack: the config's list-valued keys are pack axes
(``dham_core.resonator_pack.cells_from_config``), because a cell costs milliseconds to seconds
and a trial about a second. MLflow step = cell index (``tracking.cells`` expands the result),
and the cell's coordinates are among the metrics, so the tracking store reads one row per cell;
the result's top level is the last cell's row, what a search optimises.
"""
from __future__ import annotations

from dham_core.resonator_pack import ResonatorCell, cells_from_config, evaluate_pack, pack_size
from dham_core.resonator_trace import attention_trace_rows
from trainables.common import FAULT_KEY
from trainables.pack import report_pack

# Per-cell outputs of evaluate_pack reported as metrics (coordinates + results).
REPORTED = ("D", "k", "a", "noise", "V", "M", "seed", "num_problems", "problem_size", "max_it",
            "accuracy", "factor_accuracy", "converged_frac", "iters_mean", "iters_median",
            "iters_p95", "iters_max", "seconds", "seconds_per_problem",
            "problems_per_second")


# Trial flag: report the attention traces of one cell (thesis Figs 3.2-3.3) instead of its
# accuracy (dham_core.resonator_trace; one MLflow step per traced iteration).
TRACE_KEY = "trace_attention"


def _cell_config(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in (FAULT_KEY, TRACE_KEY)}


def pack_cells(config: dict) -> list[ResonatorCell]:
    """The trial's cells, validated (the test-only fault key and the trace flag are not cell
    fields); a traced trial must be one sparse cell."""
    cells = cells_from_config(_cell_config(config))
    if config.get(TRACE_KEY) and (len(cells) != 1 or cells[0].kind != "sparse"):
        raise ValueError(f"{TRACE_KEY} needs exactly one sparse cell per trial "
                         f"(got {len(cells)} cells)")
    return cells


def validate(config: dict) -> None:
    pack_cells(config)


def trial_pack_size(config: dict) -> tuple[int, int]:
    """``pack_size`` of the trial's cells (the trace flag left out)."""
    return pack_size(_cell_config(config))


def train_resonator_pack(config: dict) -> None:
    if config.get(TRACE_KEY):
        report_pack(config, attention_trace_rows(pack_cells(config)[0]))
        return
    rows, problems_done = [], 0
    for i, result in enumerate(evaluate_pack(pack_cells(config)), start=1):
        metrics = {k: float(result[k]) for k in REPORTED if result.get(k) is not None}
        problems_done += result["num_problems"]
        metrics["cell"] = i
        metrics["problems_done"] = float(problems_done)  # last value: the pack's total
        rows.append(metrics)
    report_pack(config, rows)
