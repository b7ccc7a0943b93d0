"""What a sweep declares and what one launch of it will run, checked before anything starts.

A sweep script declares a :class:`Sweep` (searched axes as Optuna distributions, the grid inside
them, named :class:`Preset` s, the trainable, the report it feeds). :func:`planned_configs`
turns the script's flags into the fixed config every trial shares plus, for a grid, the list
of grid points (each cell once per seed), and runs the sweep's ``validate`` on every point (or,
for TPE, on every bound and choice of the space) so that a bad input fails before Ray, Optuna
or MLflow are touched.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

from optuna.distributions import BaseDistribution, CategoricalDistribution

from sweeps.cli import check_args, set_values


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
    analyses that need the trained state (e.g. memories drawn as images)."""
    description: str = ""


def fixed_config(sweep: Sweep, args) -> dict:
    """The preset's config with the ``--set`` overrides; ``device=cuda`` when trials get GPUs."""
    config = {**sweep.presets[args.preset].config, **set_values(args)}
    if args.gpus_per_trial > 0:
        config.setdefault("device", "cuda")
    return config


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


def space_corners(space: dict[str, BaseDistribution]) -> list[dict]:
    """Points that exercise every bound/choice of a TPE space, for validation before launch."""
    pts = []
    for key, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            pts.extend({key: c} for c in dist.choices)
        else:
            pts.extend([{key: dist.low}, {key: dist.high}])
    base = {k: (d.choices[0] if isinstance(d, CategoricalDistribution) else d.low)
            for k, d in space.items()}
    return [{**base, **p} for p in pts]


def planned_configs(sweep: Sweep, args) -> tuple[dict, list[dict]]:
    """(fixed config, grid points; empty for TPE), validated: raises ``ValueError`` before
    anything starts."""
    check_args(sweep, args)
    fixed = fixed_config(sweep, args)
    preset = sweep.presets[args.preset]
    if args.search == "grid":
        points = grid_points(sweep, preset, args.seeds, pinned(args))
        to_check = points
    else:
        points = []
        to_check = space_corners(search_space(sweep, preset, pinned(args)))
        fixed.setdefault("seed", 0)
    for point in to_check:
        sweep.validate({**fixed, **point})
    return fixed, points
