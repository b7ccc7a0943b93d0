"""The searchers: Optuna inside Ray Tune, for a grid and for TPE, and where studies are kept.

Grid search. Ray's ``OptunaSearch`` refuses ``tune.grid_search``, and Optuna's ``GridSampler``
repeats points once more trials are asked than the grid has cells (which concurrent workers
do). So the runner enumerates the grid itself (:func:`sweeps.plan.grid_points`) and
:class:`GridSearch` hands the points to Optuna one at a time: each point is *enqueued* in the
study just before the ``ask`` that takes it, so every cell runs exactly once, in parallel,
with no duplicates. The grid's axes keep the sweep's Optuna distributions, so a later
``--search tpe --warm-start`` copies the grid's finished trials into its own study
(:func:`copy_finished_trials`) and TPE starts from them.

TPE. A plain ``OptunaSearch`` over the sweep's space with a seeded ``TPESampler``; a list of
metrics makes it a multi-objective (Pareto) search.
"""
from __future__ import annotations

from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution
from ray.tune.search.optuna import OptunaSearch

from sweeps.plan import Sweep, distributions, pinned, search_space


def optuna_storage(spec: str):
    """Optuna storage from ``--optuna-storage``: an RDB URL, or a path to a journal file.

    The journal file is the default: an append-only log guarded by file locks, with no
    database server to run and far cheaper per ask/tell than SQLite (docs/platform.md,
    "Optuna storage")."""
    if "://" in spec:
        return optuna.storages.RDBStorage(spec)
    from optuna.storages.journal import JournalFileBackend

    Path(spec).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(spec))


class GridSearch(OptunaSearch):
    """OptunaSearch that hands out a fixed list of grid points, each exactly once.

    Each point is enqueued in the Optuna study just before the ``ask`` that takes it, and the
    index of the next point is part of the searcher's own state, which Tune saves together
    with its trial list. Enqueueing the whole grid up front (``points_to_evaluate``) would
    leave the queue in the database out of step with a restored sweep: trials asked after
    Tune's last save would be lost from the grid and replaced by TPE samples.
    """

    def __init__(self, grid: list[dict], **kwargs):
        super().__init__(**kwargs)
        self._grid = grid
        self._next_point = 0

    def suggest(self, trial_id: str):
        if trial_id not in self._ot_trials:
            if self._next_point >= len(self._grid):
                return OptunaSearch.FINISHED
            self._ot_study.enqueue_trial(self._grid[self._next_point])
            self._next_point += 1
        return super().suggest(trial_id)


def make_searcher(sweep: Sweep, args, points: list[dict], study_name: str):
    """The Tune searcher of this launch: :class:`GridSearch` over ``points``, or TPE."""
    storage = optuna_storage(args.optuna_storage)
    if args.warm_start:
        copy_finished_trials(sweep, args, storage, study_name)
    common = dict(metric=sweep.metric, mode=sweep.mode, study_name=study_name, storage=storage,
                  sampler=optuna.samplers.TPESampler(seed=0))
    if not points:
        return OptunaSearch(space=search_space(sweep, sweep.presets[args.preset], pinned(args)),
                            **common)
    # Grid: only the grid's axes (plus the seed) form the space, so Optuna samples nothing
    # beyond the enqueued values; they keep the sweep's distributions for TPE warm starts.
    dists = distributions(sweep, sweep.presets[args.preset])
    space = {k: dists[k] for k in points[0] if k != "seed"}
    space["seed"] = CategoricalDistribution(sorted({p["seed"] for p in points}))
    return GridSearch(points, space=space, **common)


def copy_finished_trials(sweep: Sweep, args, storage, study_name: str) -> None:
    """Seed a TPE study with the finished trials of this sweep's latest grid study."""
    summaries = [s for s in optuna.get_all_study_summaries(storage)
                 if s.study_name.startswith(f"{sweep.name}.{args.preset}.grid.")]
    if not summaries:
        raise ValueError(f"--warm-start found no grid study of sweep {sweep.name!r}, preset "
                         f"{args.preset!r} in {args.optuna_storage}; run --search grid first")
    source = max(summaries, key=lambda s: s.datetime_start or 0)
    old = optuna.load_study(study_name=source.study_name, storage=storage)
    new = optuna.create_study(study_name=study_name, storage=storage, directions=old.directions,
                              load_if_exists=True)
    done = [t for t in old.trials if t.state == optuna.trial.TrialState.COMPLETE]
    new.add_trials(done)
    print(f"[sweep] warm start: {len(done)} finished trials from study {source.study_name}")
