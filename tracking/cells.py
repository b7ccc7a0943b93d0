"""A pack's cells as MLflow steps: the one place where a Tune result becomes metric points.

A pack trainable (resonator, DAM and clique capacity) evaluates many cells in one trial and
reports them to Tune in one result, or a few (``trainables.pack.report_pack``), because every
Tune result costs the driver about as much as a cell's own solve. Such a result carries

* ``cells``: JSON text of the cells' rows, in order (a list of flat dicts; text, so that
  Tune's loggers store it as one value instead of a histogram or hundreds of columns);
* ``cells_before``: how many cells the trial reported in its earlier results (0 for the first);
* at top level, the last cell's values and the pack's aggregates, exactly what a result per cell
  had on the last one (what a searcher and the progress line read).

:func:`cell_results` turns it back into the results of one cell each, numbered as if every cell
had been a Tune iteration of its own (cell ``cells_before + i`` is iteration and MLflow step
``cells_before + i``; the last cell also gets the result's own keys), so MLflow holds one metric
step per cell, the same keys and values as when each cell was its own result.
:func:`result_points` is what the live callback (:mod:`tracking.callback`) and the replay of
Tune's ``result.json`` (:mod:`tracking.reconcile`) log: every point of a pack result carries the
timestamp Tune stamped on it, so both give the same points. A result without ``cells`` (an
epoch of a training trainable) is logged as it is.
"""
from __future__ import annotations

import json

from tracking.delivery import result_metrics

CELLS = "cells"
CELLS_BEFORE = "cells_before"
# What each cell gets of the pack result's own keys: Tune's timestamp (the points' time).
_SHARED = ("timestamp",)


def cell_results(result: dict) -> list[dict]:
    """The results of one cell each that a pack result stands for (``[result]`` otherwise)."""
    if CELLS not in result:
        return [result]
    rows = json.loads(result[CELLS])
    first = int(result.get(CELLS_BEFORE, 0)) + 1
    own = {k: v for k, v in result.items() if k not in (CELLS, CELLS_BEFORE)}
    shared = {k: own[k] for k in _SHARED if k in own}
    out = [{**row, **shared, "training_iteration": i} for i, row in enumerate(rows, first)]
    if out:
        out[-1] = {**rows[-1], **own, "training_iteration": first + len(rows) - 1}
    return out


def result_points(result: dict) -> list[list]:
    """A Tune result as MLflow metric points ``[key, value, timestamp_ms, step]``: one step per
    cell of a pack result (:func:`cell_results`), else the result's own step."""
    return [point for cell in cell_results(result) for point in result_metrics(cell)]
