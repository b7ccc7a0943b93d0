"""What every trainable shares: config parsing, per-epoch report + checkpoint, resume."""
from __future__ import annotations

import dataclasses
import os
import tempfile

import torch
from ray import tune

CHECKPOINT_FILE = "state.pt"


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
        return torch.load(os.path.join(path, CHECKPOINT_FILE), map_location="cpu",
                          weights_only=True)


def report(metrics: dict, state: dict | None = None) -> None:
    """``tune.report`` the metrics, with ``state`` as the checkpoint when given."""
    if state is None:
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory() as path:
        torch.save(state, os.path.join(path, CHECKPOINT_FILE))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(path))
