"""The searchers without Ray: grid cells exactly once (also across a killed driver), TPE seeds,
warm starts and multi-objective studies, on real Optuna journal files."""
import subprocess
import sys
import textwrap

import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from conftest import REPO
from sweeps import noop, resonator_capacity
from sweeps.runner import build_parser
from sweeps.search import (DISCARDED, GRID_CELL, GridSearch, copy_finished_trials,
                           make_searcher, optuna_storage)

GRID = [{"x": float(i), "seed": 0} for i in range(4)]
SPACE = {"x": CategoricalDistribution([float(i) for i in range(4)]),
         "seed": CategoricalDistribution([0])}


def _grid(journal, study="noop.smoke.grid.test"):
    return GridSearch(GRID, space=SPACE, metric="score", mode="max", study_name=study,
                      storage=optuna_storage(str(journal)),
                      sampler=optuna.samplers.TPESampler(seed=0))


def _score(config):  # any value that differs per cell
    return 10.0 + config["x"]


def _run_to_end(searcher, prefix="t"):
    """Drive the searcher as Tune does, one trial at a time; return the configs handed out."""
    handed = []
    while (config := searcher.suggest(f"{prefix}{len(handed)}")) != GridSearch.FINISHED:
        handed.append(config)
        searcher.on_trial_complete(f"{prefix}{len(handed) - 1}", {"score": _score(config)})
    return handed


def test_grid_hands_out_every_cell_in_order_once_then_finished(tmp_path):
    searcher = _grid(tmp_path / "s.journal")
    assert _run_to_end(searcher) == GRID
    assert searcher.suggest("extra") == GridSearch.FINISHED
    trials = searcher._ot_study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert [(t.params["x"], t.user_attrs[GRID_CELL], t.value) for t in trials] == [
        (0.0, 0, 10.0), (1.0, 1, 11.0), (2.0, 2, 12.0), (3.0, 3, 13.0)]


def test_grid_state_saved_and_restored_continues_at_the_next_cell(tmp_path):
    first = _grid(tmp_path / "s.journal")
    assert first.suggest("a") == GRID[0] and first.suggest("b") == GRID[1]
    first.save(str(tmp_path / "searcher.pkl"))
    restored = _grid(tmp_path / "other.journal", study="unused")
    restored.restore(str(tmp_path / "searcher.pkl"))
    # the restored searcher holds the two running trials and goes on with cell 2
    assert restored.suggest("a") == GRID[0]
    restored.on_trial_complete("a", {"score": 1.0})
    restored.on_trial_complete("b", {"score": 2.0})
    assert [restored.suggest("c"), restored.suggest("d"), restored.suggest("e")] == [
        GRID[2], GRID[3], GridSearch.FINISHED]
    states = [t.state for t in optuna.load_study(
        study_name="noop.smoke.grid.test", storage=optuna_storage(str(tmp_path / "s.journal"))
    ).trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.RUNNING,
                      TrialState.RUNNING]


KILLED_DRIVER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, "tests")
    from test_search import _grid, _score
    searcher = _grid(sys.argv[1])
    searcher.save(sys.argv[2])                # Ray Tune's last save: before any trial
    config = searcher.suggest("lost")         # cell 0 asked; its Tune trial dies with us
    searcher.on_trial_complete("lost", {"score": _score(config)})
    searcher.suggest("lost-too")              # cell 1 asked, left RUNNING
    searcher._ot_study.enqueue_trial(searcher._grid[2], user_attrs={"grid.cell": 2})
    os.kill(os.getpid(), signal.SIGKILL)      # killed between enqueue and ask
""")


def test_driver_killed_between_enqueue_and_ask_resumes_every_cell_once(tmp_path):
    journal, saved = tmp_path / "s.journal", tmp_path / "searcher.pkl"
    proc = subprocess.run([sys.executable, "-c", KILLED_DRIVER, str(journal), str(saved)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    study = optuna.load_study(study_name="noop.smoke.grid.test",
                              storage=optuna_storage(str(journal)))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.RUNNING,
                                               TrialState.WAITING]

    resumed = _grid(tmp_path / "unused.journal", study="unused")
    resumed.restore(str(saved))  # what Tuner.restore does with the searcher
    handed = _run_to_end(resumed, prefix="new")
    assert handed == GRID  # every cell once, in order; before the fix: cells 2, 0, 1, 2

    study = optuna.load_study(study_name="noop.smoke.grid.test",
                              storage=optuna_storage(str(journal)))
    by_state = {s: [t.number for t in study.trials if t.state == s] for s in TrialState}
    assert by_state[TrialState.WAITING] == [] and by_state[TrialState.RUNNING] == []
    assert by_state[TrialState.FAIL] == [1, 2]  # the killed driver's running and queued ones
    assert all("killed" in study.trials[n].user_attrs[DISCARDED] for n in (1, 2))
    # cell 0 finished twice (before and after the kill); each other cell once
    cells = [t.user_attrs[GRID_CELL] for t in study.trials if t.state == TrialState.COMPLETE]
    assert sorted(cells) == [0, 0, 1, 2, 3]

    # a warm start copies one finished trial per cell: the grid's params with their values
    args = build_parser(noop.SWEEP).parse_args(
        ["--search", "tpe", "--warm-start", "--optuna-storage", str(journal)])
    copy_finished_trials(noop.SWEEP, args, optuna_storage(str(journal)), "noop.smoke.tpe.x")
    tpe = optuna.load_study(study_name="noop.smoke.tpe.x", storage=optuna_storage(str(journal)))
    assert sorted((t.params["x"], t.value) for t in tpe.trials) == [
        (0.0, 10.0), (1.0, 11.0), (2.0, 12.0), (3.0, 13.0)]


def _tpe_seeds(tmp_path, study, *extra):
    args = build_parser(noop.SWEEP).parse_args(
        ["--search", "tpe", "--optuna-storage", str(tmp_path / "tpe.journal"), *extra])
    searcher = make_searcher(noop.SWEEP, args, [], study)
    configs = [searcher.suggest(f"t{i}") for i in range(3)]
    return [c.get("seed") for c in configs]


def test_each_tpe_trial_gets_its_own_seed_and_a_rerun_the_same_ones(tmp_path):
    first = _tpe_seeds(tmp_path, "noop.smoke.tpe.a")
    assert len(set(first)) == 3 and all(isinstance(s, int) for s in first)
    assert _tpe_seeds(tmp_path, "noop.smoke.tpe.b") == first  # the same plan run again
    assert _tpe_seeds(tmp_path, "noop.smoke.tpe.c", "--set", "seed=7") == [None] * 3  # pinned:
    # the searcher leaves the seed to the fixed config, which holds the user's 7


def _dominated(a, b):
    """Is objective pair a = (accuracy, iterations) dominated by b (higher acc, fewer its)?"""
    return b[0] >= a[0] and b[1] <= a[1] and (b[0] > a[0] or b[1] < a[1])


def test_multi_objective_trials_hold_both_objectives_and_the_front(tmp_path):
    import pandas as pd

    from analysis.resonator import pareto_front

    args = build_parser(resonator_capacity.SWEEP).parse_args(
        ["--preset", "pareto", "--search", "tpe", "--optuna-storage", str(tmp_path / "m.j")])
    searcher = make_searcher(resonator_capacity.SWEEP, args, [], "resonator_capacity.pareto.x")
    values = {}
    for i in range(12):
        c = searcher.suggest(f"t{i}")
        # a made-up trade-off: bigger k and a are more accurate and slower (ties on purpose)
        values[i] = (round(min(1.0, c["k"] * c["a"] / 400), 2), float(c["k"] + 3 * c["a"]))
        searcher.on_trial_complete(f"t{i}", {"accuracy": values[i][0],
                                             "iters_mean": values[i][1]})
    study = searcher._ot_study
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert all(t.state == TrialState.COMPLETE and t.values == list(values[t.number])
               for t in study.trials) and len(study.trials) == 12
    front = {i for i in values if not any(_dominated(values[i], values[j]) for j in values)}
    assert 1 <= len(front) < 12
    assert {t.number for t in study.best_trials} == front
    frame = pd.DataFrame([{"accuracy": a, "iters_mean": it} for a, it in values.values()])
    assert set(frame.index[pareto_front(frame)]) == front


def test_grid_trial_that_is_not_the_enqueued_cell_is_refused(tmp_path):
    searcher = _grid(tmp_path / "s.journal")
    searcher._ot_study.enqueue_trial(GRID[3], user_attrs={GRID_CELL: 3})  # a stranger's queue
    with pytest.raises(RuntimeError, match="asked for grid cell 0, got Optuna trial 0 of cell 3"):
        searcher.suggest("a")
