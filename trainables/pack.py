"""A pack's cells in one Tune result: how the pack trainables (resonator, Hopfield and clique
capacity) report many cells per trial without paying a Tune result per cell.
``tracking.cells`` expands such a result into one MLflow step per cell."""
from __future__ import annotations

import json
import time

from trainables.common import check_finite, inject_fault, report

# A pack's result keys, read by tracking.cells (which expands them into one MLflow step per cell).
CELLS_KEY = "cells"
CELLS_BEFORE_KEY = "cells_before"
CELLS_PER_RESULT = 500
"""At most this many cells in one Tune result (bounds its size; MLflow gets the same steps)."""


def report_pack(config: dict, rows: list[dict]) -> None:
    """Report a pack's cells (``rows``, one flat dict each, the pack's aggregate already in the
    last) in one Tune result, or one per ``CELLS_PER_RESULT`` cells: the rows as JSON text under
    ``cells``, the cells reported before under ``cells_before``, and the last row's values at
    top level. Every Tune result costs the driver about as much as a cell, so a result per cell
    would make a pack nearly as slow as a trial per cell (``benchmarks/packing.py``).

    Cells are numbered 1, 2, ... for the fault injection (``inject_fault``, epoch = cell). A
    fault or a non-finite value in cell i fails the trial; the cells before it are reported
    first, so they stay logged."""
    checked = []
    for i, row in enumerate(rows, 1):
        row = dict(row)
        try:
            inject_fault(config, i, False, row)
            check_finite(row, at=f"cell {i}")
        except Exception:
            _report_chunks(checked)
            raise
        checked.append(row)
    _report_chunks(checked)


def _report_chunks(rows: list[dict]) -> None:
    for start in range(0, len(rows), CELLS_PER_RESULT):
        chunk = rows[start:start + CELLS_PER_RESULT]
        report({**chunk[-1], CELLS_KEY: json.dumps(chunk, default=float),
                CELLS_BEFORE_KEY: start})


def report_cells(config: dict, rows: list[dict], final: dict, started: float) -> None:
    """A pack's cells (``report_pack``), numbered by the metric ``cells_done`` (with
    ``pack_seconds`` since ``started``); the last cell carries the pack's aggregate ``final``."""
    seconds = time.perf_counter() - started
    cells = [{**row, "cells_done": done, "pack_seconds": seconds}
             for done, row in enumerate(rows, 1)]
    if cells:
        cells[-1].update(final)
    report_pack(config, cells)
