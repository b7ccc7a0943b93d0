"""What a sweep declares and what one launch of it will run, checked before anything starts.

A sweep script declares a :class:`Sweep` (searched axes as Optuna distributions, the grid inside
them, named :class:`Preset` s, the trainable, the report it feeds). :func:`planned_configs`
turns the script's flags into the fixed config every trial shares plus, for a grid, the list
of grid points (each cell once per seed), and runs the sweep's ``validate`` on every point (or,
for TPE, on the combinations of every axis's bounds and choices, :func:`tpe_checks`) so that a
bad input fails before Ray, Optuna or MLflow are touched.
"""
from __future__ import annotations

import itertools
import math
import os
import random
from dataclasses import dataclass, field
from typing import Callable

from optuna.distributions import BaseDistribution, CategoricalDistribution

from dham_core.data import default_root
from sweeps.cli import SEARCH_MODES, check_args, set_values

MAX_TPE_CHECKS = 4096
"""Above this many combinations of a TPE space's bounds and choices, :func:`tpe_checks` checks
every single-axis extreme plus a seeded sample of combinations instead of all of them."""


@dataclass
class Preset:
    """A named set of fixed trial settings (``--preset``)."""

    config: dict
    """Fixed values merged into every trial's config (epochs, model size, dataset, ...)."""
    grid: dict[str, list] | None = None
    """Replaces the sweep's grid for this preset (e.g. fewer cells for smoke)."""
    space: dict[str, BaseDistribution] | None = None
    """Replaces the sweep's TPE space for this preset (other axes then come from ``config``)."""
    num_samples: int = 20
    """Default number of TPE trials."""
    description: str = ""
    searches: tuple[str, ...] = SEARCH_MODES
    """The ``--search`` modes this preset offers (a TPE space whose combinations are not all
    valid, e.g. a ``k`` that must divide ``D``, makes a preset grid-only)."""
    seconds_per_trial: float | None = None
    """Measured wall time of one trial on ``measured_on`` (``--dry-run`` estimates the cost)."""
    measured_on: str = ""
    """The machine and set-up ``seconds_per_trial`` was measured on."""


@dataclass
class Sweep:
    """A declarative experiment: what to vary, what to run, what report it feeds."""

    name: str
    """MLflow experiment name and the name ``python -m analysis.report NAME`` takes."""
    table: str
    """Id of the report in :mod:`analysis.report` this sweep feeds (e.g. decisivenets.table3)."""
    trainable: Callable
    """Ray Tune function trainable from :mod:`trainables`."""
    space: dict[str, BaseDistribution]
    """Optuna distributions of the searched axes (TPE samples them; the grid lies inside)."""
    grid: dict[str, list]
    """Grid values per axis of ``space`` (``--search grid``)."""
    presets: dict[str, Preset]
    metric: str | list[str]
    """Metric(s) the searcher optimises; a list means a multi-objective (Pareto) search."""
    mode: str | list[str]
    validate: Callable[[dict], None]
    """Raises ``ValueError`` naming the field and the allowed values for a bad trial config."""
    default_preset: str = "smoke"
    time_attr: str = "training_iteration"
    """ASHA's time axis (one Tune iteration = one epoch for the training trainables)."""
    max_t_key: str | None = "epochs"
    """Config key holding the number of iterations a trial runs (ASHA's ``max_t``)."""
    log_checkpoint: bool = False
    """Log each finished trial's last checkpoint as an MLflow artifact (``checkpoint/``), for
    analyses that need the trained state (e.g. memories drawn as images). The default of
    ``--log-checkpoints yes|no``, which a launch may change."""
    checkpoints_from: str | None = None
    """For an evaluation sweep: the config key naming the source sweep (``source_sweep``; an
    optional ``source_run`` names one launch's parent run, else the newest finished one). At
    launch the runner adds the grid axis ``checkpoint_run``, one value per source trial with a
    checkpoint in MLflow (:mod:`sweeps.sources`); such a sweep is grid-only."""
    description: str = ""
    pack: Callable[[dict], tuple[int, int]] | None = None
    """For a pack trainable: ``trial config -> (cells it evaluates, cells dropped)`` (what
    ``--dry-run`` prints); None for a trainable that runs one configuration."""
    tpe_pins: dict = field(default_factory=dict)
    """``--set`` values a TPE launch needs, with example values (``hopfield_power``: one
    ``power``); the dry-run test passes them."""
    for_argv: Callable[[list[str]], "Sweep"] | None = None
    """The sweep a command line runs when it is not this one (``hopfield_power --search tpe``
    searches one power's window); :func:`sweeps.runner.main` applies it first."""


def fixed_config(sweep: Sweep, args) -> dict:
    """The preset's config with the ``--set`` overrides; ``device=cuda`` when trials get GPUs."""
    config = {**sweep.presets[args.preset].config, **set_values(args)}
    if args.gpus_per_trial > 0:
        config.setdefault("device", "cuda")
    return config


def absolute_data_root(config: dict) -> dict:
    """``config`` with its dataset folder (``data_root``) as an absolute path, relative to the
    directory the sweep was launched from. Ray runs each trial in a folder of its own, so a
    relative root (or the dataset's relative default, ``data``) would otherwise point into
    every trial's folder and a download would happen once per trial."""
    root = config.get("data_root")
    if root is None and "dataset" in config:
        root = default_root(config["dataset"])
    if root is None:
        return config
    return {**config, "data_root": os.path.abspath(os.path.expanduser(str(root)))}


def pinned(args) -> set[str]:
    """Keys given with ``--set``: they pin their axis (no longer searched or gridded)."""
    return set(set_values(args))


def distributions(sweep: Sweep, preset: Preset) -> dict[str, BaseDistribution]:
    """Every axis's distribution: the sweep's, with the preset's space laid over it."""
    return {**sweep.space, **(preset.space or {})}


def search_space(sweep: Sweep, preset: Preset, pins: set[str] = frozenset()
                 ) -> dict[str, BaseDistribution]:
    """TPE's space: the preset's (if it has one) or the sweep's, less the ``--set`` keys.
    A searched key's value comes from the searcher, whatever the preset's config says."""
    space = preset.space if preset.space is not None else sweep.space
    return {k: d for k, d in space.items() if k not in pins}


def grid_points(sweep: Sweep, preset: Preset, seeds: int, pins: set[str] = frozenset()
                ) -> list[dict]:
    """Every grid cell once per seed, as Optuna-enqueueable points: the preset's grid (if it
    has one) or the sweep's, less the ``--set`` keys. A grid axis's value comes from the grid,
    whatever the preset's config says."""
    axes = preset.grid if preset.grid is not None else sweep.grid
    axes = {k: v for k, v in axes.items() if k not in pins}
    dists = distributions(sweep, preset)
    for key, values in axes.items():
        if key not in dists:
            raise ValueError(f"grid axis {key!r} is not in the search space "
                             f"({', '.join(dists)})")
        for v in values:
            if not in_space(dists[key], v):
                raise ValueError(f"grid value {key}={v!r} lies outside its search space "
                                 f"{dists[key]}")
    keys = list(axes)
    cells = [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]
    return [{**cell, "seed": seed} for seed in range(seeds) for cell in cells]


def in_space(dist: BaseDistribution, value) -> bool:
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    return dist.low <= value <= dist.high


def extremes(dist: BaseDistribution) -> list:
    """A distribution's choices, or its two bounds."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    return [dist.low, dist.high] if dist.low != dist.high else [dist.low]


def space_corners(space: dict[str, BaseDistribution]) -> list[dict]:
    """Every single-axis extreme of a TPE space, the other axes at their first extreme."""
    base = {k: extremes(d)[0] for k, d in space.items()}
    return [{**base, key: v} for key, d in space.items() for v in extremes(d)]


def tpe_checks(space: dict[str, BaseDistribution], cap: int = MAX_TPE_CHECKS, seed: int = 0
               ) -> tuple[list[dict], int]:
    """(the points of a TPE space to validate, the number of combinations there are).

    The points are the Cartesian product of every axis's extremes (:func:`extremes`); when it
    has more than ``cap`` points, every single-axis extreme plus ``cap`` combinations drawn
    without replacement with a ``random.Random(seed)`` (the same points on every launch)."""
    values = [extremes(d) for d in space.values()]
    total = math.prod(len(v) for v in values)
    if total <= cap:
        return [dict(zip(space, combo)) for combo in itertools.product(*values)], total
    rng, drawn = random.Random(seed), {}
    while len(drawn) < cap:
        drawn[rng.randrange(total)] = None
    sample = []
    for index in drawn:
        combo = []
        for axis in reversed(values):  # mixed-radix digits of the index, last axis fastest
            index, digit = divmod(index, len(axis))
            combo.append(axis[digit])
        sample.append(dict(zip(space, reversed(combo))))
    return space_corners(space) + sample, total


def check_point(sweep: Sweep, config: dict, point: dict, what: str) -> None:
    """Run ``sweep.validate`` on ``config``; its error names ``point``'s fields too."""
    try:
        sweep.validate(config)
    except ValueError as exc:
        if len(point) < 2:
            raise
        where = ", ".join(f"{k}={v!r}" for k, v in point.items())
        raise ValueError(f"{exc} (at the {what} {where})") from exc


def planned_configs(sweep: Sweep, args) -> tuple[dict, list[dict]]:
    """(fixed config, grid points; empty for TPE), validated: raises ``ValueError`` before
    anything starts."""
    check_args(sweep, args)
    fixed = absolute_data_root(fixed_config(sweep, args))
    preset = sweep.presets[args.preset]
    if args.search == "grid":
        points = grid_points(sweep, preset, args.seeds, pinned(args))
        to_check, what = points, "grid point"
    else:
        points = []
        to_check, _ = tpe_checks(search_space(sweep, preset, pinned(args)))
        what = "TPE space combination"
        if "seed" not in fixed:  # each TPE trial gets its own from the searcher; 0 is the first
            to_check = [{"seed": 0, **p} for p in to_check]
    for point in to_check:
        check_point(sweep, {**fixed, **point}, point, what)
    return fixed, points
