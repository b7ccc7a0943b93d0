"""What every trainable shares: config parsing, per-epoch report + checkpoint, resume, and the
test-only fault injection (config key ``_fault``) that the fault-tolerance tests drive. Packs
report through :mod:`trainables.pack`."""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import tempfile

import torch
from ray import tune

CHECKPOINT_FILE = "state.pt"
FAULT_KEY = "_fault"
"""Test-only config key: ``{"raise_at_epoch": k}`` raises at epoch k, ``{"nan_at_epoch": k}``
reports a NaN loss at epoch k; with ``"persistent": True`` on every attempt, else only on the
first attempt (a retry restored from a checkpoint passes)."""


def config_to_dataclass(cls, config: dict, ignore: tuple[str, ...] = ()):
    """Build ``cls`` from a trial config; an unknown key is an error, not silently dropped."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(k for k in config if k not in names and k not in ignore)
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(unknown)} for {cls.__name__}; "
                         f"allowed: {', '.join(sorted(names | set(ignore)))}")
    return cls(**{k: v for k, v in config.items() if k in names})


def load_state() -> dict | None:
    """The state saved with the trial's latest checkpoint (after a retry or resume), or None."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as path:
        state_file = os.path.join(path, CHECKPOINT_FILE)
        return torch.load(state_file, map_location="cpu", weights_only=True)


def inject_fault(config: dict, epoch: int, restored: bool, metrics: dict) -> None:
    """Apply the test-only ``_fault`` of ``config`` at ``epoch`` (see ``FAULT_KEY``)."""
    fault = config.get(FAULT_KEY)
    if not fault or (restored and not fault.get("persistent", False)):
        return
    if fault.get("raise_at_epoch") == epoch:
        raise RuntimeError(f"injected fault at epoch {epoch}")
    if fault.get("nan_at_epoch") == epoch:
        metrics["train_loss"] = float("nan")


def check_finite(metrics: dict, at: str | None = None) -> None:
    """A NaN/inf metric fails the trial (recorded with this reason) instead of being reported;
    the reason says where: ``at``, else the metrics' epoch."""
    bad = [k for k, v in metrics.items()
           if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        where = at or f"epoch {metrics.get('epoch')}"
        raise FloatingPointError(f"non-finite {', '.join(f'{k}={metrics[k]}' for k in bad)} "
                                 f"at {where}")


# One INFO line per checkpoint from every trial drowns the sweep's status table.
logging.getLogger("ray.train._internal.storage").setLevel(logging.WARNING)


def report(metrics: dict, state: dict | None = None) -> None:
    """``tune.report`` the metrics, with ``state`` as the checkpoint when given.

    Refuses non-finite metrics (raises ``FloatingPointError``, failing the trial)."""
    check_finite(metrics)
    if state is None:
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory() as path:
        torch.save(state, os.path.join(path, CHECKPOINT_FILE))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(path))
