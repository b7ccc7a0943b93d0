"""Evaluation sweeps: the trained models they evaluate come from another sweep's checkpoints.

A sweep with ``checkpoints_from`` (e.g. ``"source_sweep"``) evaluates the final checkpoints
that a training sweep logged to MLflow (``Sweep.log_checkpoint``, :mod:`tracking.checkpoints`).
:func:`check_source` checks the config names a source (no store is opened: ``--dry-run`` runs
it); :func:`resolve_source`, after the MLflow store check and before Ray, lists the source's
checkpoints and makes every grid point run once per checkpoint (grid axis ``checkpoint_run``,
the source child run ids). A source with no checkpoints is refused there, before any side
effect. It then sets ``MLFLOW_TRACKING_URI`` in this process, which a local Ray's workers
inherit, so :func:`trainables.checkpoints.load_source_state` finds the store.
"""
from __future__ import annotations

import dataclasses
import os

from optuna.distributions import CategoricalDistribution

from tracking import store
from tracking.checkpoints import sweep_checkpoints
from trainables.checkpoints import SOURCE_KEY, TRACKING_ENV
from sweeps.plan import Sweep

SOURCE_RUN_KEY = "source_run"
"""Optional config key: the parent run id of the source launch (default: the newest)."""


def check_source(sweep: Sweep, args, fixed: dict) -> None:
    """Raise ``ValueError`` when an evaluation sweep's config names no source sweep, or when it
    is launched with a TPE search (the checkpoints form a grid axis)."""
    key = sweep.checkpoints_from
    if key is None:
        return
    if not isinstance(fixed.get(key), str) or not fixed[key]:
        raise ValueError(f"{key} must name the training sweep whose checkpoints this sweep "
                         f"evaluates (e.g. --set {key}=ell; got {key}={fixed.get(key)!r})")
    run = fixed.get(SOURCE_RUN_KEY)
    if run is not None and (not isinstance(run, str) or not run):
        raise ValueError(f"{SOURCE_RUN_KEY} must be None or an MLflow parent run id of sweep "
                         f"{fixed[key]!r} (got {SOURCE_RUN_KEY}={run!r})")
    if args.search != "grid":
        raise ValueError(f"--search must be grid for sweep {sweep.name!r}: it evaluates every "
                         f"checkpoint of {key}={fixed[key]!r} (got --search {args.search})")


def describe_source(sweep: Sweep, fixed: dict) -> str | None:
    """The ``--dry-run`` line saying where the checkpoints will come from (None: no source)."""
    key = sweep.checkpoints_from
    if key is None:
        return None
    launch = (f"parent run {fixed[SOURCE_RUN_KEY]}" if fixed.get(SOURCE_RUN_KEY)
              else "its newest finished launch")
    return (f"  checkpoints  resolved at launch from sweep {fixed[key]!r} ({launch}) in MLflow: "
            f"each grid point runs once per checkpoint (axis {SOURCE_KEY}); trials above "
            "count grid points, not checkpoints")


def resolve_source(sweep: Sweep, fixed: dict, points: list[dict], tracking_uri: str
                   ) -> tuple[Sweep, list[dict]]:
    """(the sweep with the axis ``checkpoint_run`` in its space, every point × every source
    checkpoint) for an evaluation sweep; ``(sweep, points)`` unchanged for any other.
    Raises ``ValueError`` naming ``source_sweep``/``source_run`` when the source has none."""
    key = sweep.checkpoints_from
    if key is None:
        return sweep, points
    refs = sweep_checkpoints(store.client(tracking_uri), fixed[key], fixed.get(SOURCE_RUN_KEY))
    check_source_matches(fixed, refs)
    runs = [r.run_id for r in refs]
    print(f"[sweep] {sweep.name}: {len(runs)} checkpoints from sweep {fixed[key]!r}")
    os.environ[TRACKING_ENV] = tracking_uri  # the workers of a local Ray inherit it
    space = {**sweep.space, SOURCE_KEY: CategoricalDistribution(runs)}
    return (dataclasses.replace(sweep, space=space),
            [{**p, SOURCE_KEY: run} for p in points for run in runs])


def check_source_matches(fixed: dict, refs) -> None:
    """Raise ``ValueError`` naming the key when a value the evaluation requires of its
    checkpoints (``dham_core.train.expected_fields``: dataset, arch) differs from a source
    trial's param (a trial without the param is left to the in-trial check), with the values
    the source's checkpoints have."""
    from dham_core.train import expected_fields  # torch and the models: launch only, not import

    for key, want in expected_fields(fixed).items():
        have = sorted({r.params[key] for r in refs if key in r.params})
        wrong = [r.run_id for r in refs if key in r.params and r.params[key] != str(want)]
        if wrong:
            raise ValueError(f"{key}={want!r} does not match the source's checkpoints: "
                             f"{len(wrong)} of {len(refs)} have {key} in {have} (e.g. run "
                             f"{wrong[0]}); set {key} to one of {have} or choose another source")
