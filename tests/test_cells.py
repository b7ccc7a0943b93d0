"""A pack's cells in one Tune result, expanded back into one MLflow step per cell
(``trainables.pack.report_pack`` → ``tracking.cells``). In-process: no Ray, no MLflow."""
from __future__ import annotations

import json

import pytest

import trainables.pack as pack
from tracking import cells
from trainables.resonator import train_resonator_pack

STAMP = 1_700_000_000  # Tune's timestamp of the result, whole seconds


def points_by_step(points: list[list]) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for key, value, stamp, step in points:
        assert stamp == STAMP * 1000
        assert key not in out.setdefault(step, {}), f"{key} twice at step {step}"
        out[step][key] = value
    return out


def tune_result(reported: dict, iteration: int) -> dict:
    """What Tune makes of a reported dict (its bookkeeping keys added)."""
    return {**reported, "training_iteration": iteration, "timestamp": STAMP, "done": False,
            "trial_id": "t1", "time_total_s": 1.5, "pid": 42, "config": {"a": [1, 2]}}


@pytest.fixture
def reported(monkeypatch):
    out = []
    monkeypatch.setattr(pack, "report", lambda metrics, state=None: out.append(dict(metrics)))
    return out


def test_a_pack_result_is_one_step_per_cell_with_the_aggregate_at_the_last():
    rows = [{"a": 1, "accuracy": 0.5, "cell": 1}, {"a": 2, "accuracy": 0.25, "cell": 2},
            {"a": 3, "accuracy": 1.0, "cell": 3}]
    result = tune_result({"a": 3, "accuracy": 1.0, "cell": 3, "total": 7.0,
                          "cells": json.dumps(rows), "cells_before": 0}, iteration=1)
    assert points_by_step(cells.result_points(result)) == {
        1: {"a": 1.0, "accuracy": 0.5, "cell": 1.0},
        2: {"a": 2.0, "accuracy": 0.25, "cell": 2.0},
        3: {"a": 3.0, "accuracy": 1.0, "cell": 3.0, "total": 7.0},
    }
    # a later result of the same trial continues the numbering
    later = tune_result({"a": 5, "cells": json.dumps([{"a": 4}, {"a": 5}]), "cells_before": 3},
                        iteration=2)
    assert points_by_step(cells.result_points(later)) == {4: {"a": 4.0}, 5: {"a": 5.0}}


def test_a_result_without_cells_is_logged_at_its_epoch_as_before():
    result = tune_result({"epoch": 4, "loss": 0.5, "flag": True}, iteration=9)
    assert cells.result_points(result) == [["epoch", 4.0, STAMP * 1000, 4],
                                           ["loss", 0.5, STAMP * 1000, 4]]
    assert cells.cell_results(result) == [result]


def test_the_trainables_and_tracking_name_the_same_keys():
    assert (pack.CELLS_KEY, pack.CELLS_BEFORE_KEY) == (cells.CELLS, cells.CELLS_BEFORE)


def test_report_cells_sends_one_result_that_expands_to_the_per_cell_metrics(reported):
    rows = [{"K": 10, "errors": 3}, {"K": 20, "errors": 8}, {"K": 30, "errors": 15}]
    pack.report_cells({}, rows, {"worst": 2.5}, started=0.0)
    assert len(reported) == 1
    top = reported[0]
    assert {k: top[k] for k in ("K", "errors", "cells_done", "worst")} == \
           {"K": 30, "errors": 15, "cells_done": 3, "worst": 2.5}  # what a searcher reads
    steps = points_by_step(cells.result_points(tune_result(top, 1)))
    assert sorted(steps) == [1, 2, 3]
    assert [(s["K"], s["errors"], s["cells_done"]) for s in steps.values()] == \
           [(10.0, 3.0, 1.0), (20.0, 8.0, 2.0), (30.0, 15.0, 3.0)]
    assert "worst" in steps[3] and "worst" not in steps[1] and "worst" not in steps[2]
    # the points survive Tune's result.json (what tracking.reconcile reads) unchanged
    replayed = json.loads(json.dumps(tune_result(top, 1)))
    assert cells.result_points(replayed) == cells.result_points(tune_result(top, 1))


def test_a_long_pack_is_reported_in_chunks_with_the_same_steps(reported, monkeypatch):
    monkeypatch.setattr(pack, "CELLS_PER_RESULT", 2)
    rows = [{"x": float(i * i)} for i in range(1, 6)]
    pack.report_pack({}, rows)
    assert [r["cells_before"] for r in reported] == [0, 2, 4]
    assert [r["x"] for r in reported] == [4.0, 16.0, 25.0]  # each chunk's last cell on top
    steps = {}
    for i, r in enumerate(reported, 1):
        steps.update(points_by_step(cells.result_points(tune_result(r, i))))
    assert steps == {1: {"x": 1.0}, 2: {"x": 4.0}, 3: {"x": 9.0}, 4: {"x": 16.0}, 5: {"x": 25.0}}


@pytest.mark.parametrize("fault, error, message", [
    ({"raise_at_epoch": 3}, RuntimeError, "injected fault at epoch 3"),
    ({"nan_at_epoch": 3}, FloatingPointError, "non-finite train_loss=nan at cell 3"),
])
def test_a_fault_in_a_cell_fails_the_pack_after_the_cells_before_it(reported, fault, error,
                                                                     message):
    with pytest.raises(error, match=message):
        pack.report_pack({"_fault": fault}, [{"x": 1.0}, {"x": 2.0}, {"x": 3.0}, {"x": 4.0}])
    assert len(reported) == 1 and json.loads(reported[0]["cells"]) == [{"x": 1.0}, {"x": 2.0}]


def test_a_real_nan_in_any_cell_fails_the_pack(reported):
    with pytest.raises(FloatingPointError, match="non-finite y=nan at cell 2"):
        pack.report_pack({}, [{"y": 1.0}, {"y": float("nan")}])
    assert [json.loads(r["cells"]) for r in reported] == [[{"y": 1.0}]]


def test_the_resonator_pack_reports_its_cells_in_one_result(reported):
    config = {"D": 256, "k": 16, "V": 3, "M": 5, "a": [1, 2, 3], "num_problems": 4,
              "max_it": 20}
    train_resonator_pack(config)
    assert len(reported) == 1
    steps = points_by_step(cells.result_points(tune_result(reported[0], 1)))
    assert sorted(steps) == [1, 2, 3]
    assert [(s["cell"], s["a"], s["problems_done"]) for s in steps.values()] == \
           [(1.0, 1.0, 4.0), (2.0, 2.0, 8.0), (3.0, 3.0, 12.0)]
    assert reported[0]["a"] == 3.0 and reported[0]["problems_done"] == 12.0
    assert all(0.0 <= s["accuracy"] <= 1.0 for s in steps.values())
