"""Ray Tune trainable for DecisiveNets Table 5: one trained DHAM network under noise.

The trial's ``checkpoint_run`` (added by the runner for an evaluation sweep,
``Sweep.checkpoints_from``) names a source trial whose final state comes from MLflow
(:func:`trainables.checkpoints.load_source_state`); ``dham_core.robustness.run_robustness``
evaluates it clean and under Gaussian, shot and impulse noise at each severity. One report:
``clean_acc``, ``<kind>_acc`` (mean over severities), ``<kind>_s<severity>_acc``, and the
source's ``source_ell`` and ``source_seed`` (the report groups by them).
"""
from __future__ import annotations

from dham_core.robustness import RobustnessConfig, run_robustness
from trainables.checkpoints import SOURCE_KEY, load_source_state
from trainables.common import config_to_dataclass, report

# Config keys of the checkpoint source (sweeps.sources), not of the evaluation itself.
SOURCE_KEYS = ("source_sweep", "source_run", SOURCE_KEY)


def _config(config: dict) -> RobustnessConfig:
    return config_to_dataclass(RobustnessConfig, config, ignore=SOURCE_KEYS).validate()


def validate(config: dict) -> None:
    """Raise ValueError naming the field and the allowed values for a bad evaluation config."""
    _config(config)


def evaluate_robustness(config: dict) -> None:
    cfg = _config(config)
    report(run_robustness(load_source_state(config), cfg))
