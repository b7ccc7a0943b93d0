"""The searchers: Optuna inside Ray Tune, for a grid and for TPE, and where studies are kept.

Grid search. Ray's ``OptunaSearch`` refuses ``tune.grid_search``, and Optuna's ``GridSampler``
repeats points once more trials are asked than the grid has cells (which concurrent workers
do). So the runner enumerates the grid itself (:func:`sweeps.plan.grid_points`) and
:class:`GridSearch` hands the points to Optuna one at a time: each point is *enqueued* in the
study, tagged with its cell index, just before the ``ask`` that takes it, so every cell runs
exactly once, in parallel, with no duplicates, even after a killed driver is resumed. The
grid's axes keep the sweep's Optuna distributions, so a later ``--search tpe --warm-start``
copies the grid's finished trials (one per cell) into its own study
(:func:`copy_finished_trials`) and TPE starts from them.

TPE. :class:`TPESearch`, an ``OptunaSearch`` over the sweep's space with a seeded
``TPESampler`` that gives each trial its own seed (its Optuna trial number); a list of metrics
makes it a multi-objective (Pareto) search.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._file import get_lock_file
from ray.tune.search.optuna import OptunaSearch

from sweeps.plan import Sweep, distributions, fixed_config, pinned, search_space


def optuna_storage(spec: str):
    """Optuna storage from ``--optuna-storage``: an RDB URL, or a path to a journal file.

    The journal file is the default: an append-only log guarded by file locks, with no
    database server to run and far cheaper per ask/tell than SQLite (docs/platform.md,
    "Optuna storage")."""
    if "://" in spec:
        return optuna.storages.RDBStorage(spec)
    Path(spec).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(LazySyncJournal(spec))


class LazySyncJournal(JournalFileBackend):
    """Optuna's journal file, with the ``fsync`` after every write replaced by one at most every
    ``sync_s`` seconds (written by hand: Optuna has no such setting).

    A grid trial costs five journal writes (enqueue, ask with two params, tell), and each
    ``fsync`` takes milliseconds on a busy disk: most of Optuna's share of a trial's overhead
    (``benchmarks/trial_overhead.py``). Every write still reaches the operating system, under
    the journal's file lock, before the call returns, so a killed driver loses nothing and
    other processes read it at once; only a crash of the machine itself can lose the writes
    of the last ``sync_s`` seconds, as it can Ray Tune's own experiment state (saved at most
    once every 10 s, and not fsynced either)."""

    def __init__(self, path: str, sync_s: float = 1.0):
        super().__init__(path)
        self.sync_s = sync_s
        self._synced = time.monotonic()

    def append_logs(self, logs: list[dict]) -> None:
        lines = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
        with get_lock_file(self._lock):  # Optuna's own lock, as in JournalFileBackend
            with open(self._file_path, "ab") as fh:
                fh.write(lines.encode("utf-8"))
                fh.flush()
                if time.monotonic() - self._synced >= self.sync_s:
                    os.fsync(fh.fileno())
                    self._synced = time.monotonic()


GRID_CELL = "grid.cell"
"""User attr of a grid study's trial: the index of its point in the grid."""
DISCARDED = "grid.discarded"
"""User attr of a grid trial that a killed driver left unfinished: why it was closed as FAIL."""


class GridSearch(OptunaSearch):
    """OptunaSearch that hands out a fixed list of grid points, each exactly once.

    Each point is enqueued in the Optuna study (with its index as the ``grid.cell`` user attr)
    just before the ``ask`` that takes it, and the index of the next point is part of the
    searcher's own state, which Tune saves together with its trial list. Enqueueing the whole
    grid up front (``points_to_evaluate``) would leave the queue in the database out of step
    with a restored sweep: trials asked after Tune's last save would be lost from the grid and
    replaced by TPE samples.

    A driver killed after Tune's last save leaves the study ahead of the restored searcher: a
    point enqueued but never asked for (WAITING; the next ``ask`` would take it instead of the
    point it enqueues) and trials asked after the save (RUNNING, their Tune trials lost).
    :meth:`restore` closes every such trial as FAIL with the ``grid.discarded`` reason, so the
    restored searcher hands out the points from its saved index on, each once; Tune re-runs
    the lost trials as new ones. ``suggest`` also checks that the trial it got is the cell it
    enqueued.
    """

    def __init__(self, grid: list[dict], **kwargs):
        super().__init__(**kwargs)
        self._grid = grid
        self._next_point = 0

    def suggest(self, trial_id: str):
        if trial_id not in self._ot_trials:
            if self._next_point >= len(self._grid):
                return OptunaSearch.FINISHED
            cell = self._next_point
            self._ot_study.enqueue_trial(self._grid[cell], user_attrs={GRID_CELL: cell})
            trial = self._ot_study.ask(fixed_distributions=self._space)
            got = trial.user_attrs.get(GRID_CELL)
            if got != cell:
                raise RuntimeError(f"grid study {self._ot_study.study_name}: asked for grid cell "
                                   f"{cell}, got Optuna trial {trial.number} of cell {got}; "
                                   "another process writes to this study")
            self._ot_trials[trial_id] = trial
            self._next_point += 1
        return super().suggest(trial_id)

    def restore(self, checkpoint_path: str):
        super().restore(checkpoint_path)
        self.discard_stale_trials()

    def discard_stale_trials(self) -> list[int]:
        """Close as FAIL (reason in ``grid.discarded``) the study's WAITING and RUNNING trials
        that this searcher's state does not hold: a killed driver enqueued or asked for them
        after Tune's last save. Returns their Optuna trial numbers."""
        held = {t.number for t in self._ot_trials.values()}
        storage = self._ot_study._storage  # no public way to close a trial that is not ours
        discarded = []
        for t in self._ot_study.get_trials(deepcopy=False, states=(
                optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING)):
            if t.number in held:
                continue
            storage.set_trial_user_attr(t._trial_id, DISCARDED, (
                f"{t.state.name.lower()} when its driver was killed after Ray Tune's last "
                "saved state; the grid point is handed out again"))
            storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            discarded.append(t.number)
        return discarded


class TPESearch(OptunaSearch):
    """OptunaSearch (TPE) that gives each trial its own seed, ``seed`` = the Optuna trial
    number: distinct within a study and the same when the same plan is run again."""

    def suggest(self, trial_id: str):
        config = super().suggest(trial_id)
        return {**config, "seed": self._ot_trials[trial_id].number}


def make_searcher(sweep: Sweep, args, points: list[dict], study_name: str):
    """The Tune searcher of this launch: :class:`GridSearch` over ``points``, or TPE."""
    storage = optuna_storage(args.optuna_storage)
    if args.warm_start:
        copy_finished_trials(sweep, args, storage, study_name)
    common = dict(metric=sweep.metric, mode=sweep.mode, study_name=study_name, storage=storage,
                  sampler=optuna.samplers.TPESampler(seed=0))
    if not points:
        space = search_space(sweep, sweep.presets[args.preset], pinned(args))
        # a fixed (preset, --set seed=N) or searched seed stays as it is; else one per trial
        fixed_seed = "seed" in space or "seed" in fixed_config(sweep, args)
        searcher = OptunaSearch if fixed_seed else TPESearch
        return searcher(space=space, **common)
    # Grid: only the grid's axes (plus the seed) form the space, so Optuna samples nothing
    # beyond the enqueued values; they keep the sweep's distributions for TPE warm starts.
    dists = distributions(sweep, sweep.presets[args.preset])
    space = {k: dists[k] for k in points[0] if k != "seed"}
    space["seed"] = CategoricalDistribution(sorted({p["seed"] for p in points}))
    return GridSearch(points, space=space, **common)


def grid_studies(sweep: Sweep, preset: str, storage) -> list:
    """Summaries of this sweep's grid studies for ``preset`` in ``storage`` (read only)."""
    return [s for s in optuna.get_all_study_summaries(storage)
            if s.study_name.startswith(f"{sweep.name}.{preset}.grid.")]


def copy_finished_trials(sweep: Sweep, args, storage, study_name: str) -> None:
    """Seed a TPE study with the finished trials of this sweep's latest grid study: one per
    grid cell, the last one where a resumed sweep finished a cell twice (the first run's Tune
    trial was lost with its driver; its MLflow run was deleted as an orphan)."""
    summaries = grid_studies(sweep, args.preset, storage)
    if not summaries:
        raise ValueError(f"--warm-start found no grid study of sweep {sweep.name!r}, preset "
                         f"{args.preset!r} in {args.optuna_storage}; run --search grid first")
    source = max(summaries, key=lambda s: s.datetime_start or 0)
    old = optuna.load_study(study_name=source.study_name, storage=storage)
    new = optuna.create_study(study_name=study_name, storage=storage, directions=old.directions,
                              load_if_exists=True)
    done = list({t.user_attrs.get(GRID_CELL, f"trial {t.number}"): t for t in old.trials
                 if t.state == optuna.trial.TrialState.COMPLETE}.values())
    new.add_trials(done)
    print(f"[sweep] warm start: {len(done)} finished trials from study {source.study_name}")
