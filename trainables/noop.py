"""A trainable that does no real work: measures the platform's own per-trial overhead and
drives the runner's tests (it reports like a real trainable: per-epoch metrics, checkpoints)."""
from __future__ import annotations

import time

from trainables.common import FAULT_KEY, inject_fault, load_state, report


def noop_objective(x: float, y: float, epoch: int) -> float:
    """A smooth score in (0, 1], best at x = 1, y = 0, improving with the epoch."""
    return (1.0 - 0.5 ** (epoch + 1)) / (1.0 + (x - 1.0) ** 2 + y ** 2)


def validate(config: dict) -> None:
    if config.get("epochs", 1) < 1:
        raise ValueError(f"epochs must be >= 1 (got {config.get('epochs')})")


def train_noop(config: dict) -> None:
    """Config: x, y, epochs, checkpoint (bool), seconds_per_epoch (sleep), _fault (tests)."""
    epochs = int(config.get("epochs", 1))
    checkpoint = bool(config.get("checkpoint", False))
    state = load_state() if checkpoint else None
    start = state["epoch"] if state else 0
    for epoch in range(start + 1, epochs + 1):
        time.sleep(float(config.get("seconds_per_epoch", 0.0)))
        score = noop_objective(float(config.get("x", 0.0)), float(config.get("y", 0.0)), epoch)
        metrics = {"epoch": epoch, "score": score, "train_loss": 1.0 - score}
        if FAULT_KEY in config:
            inject_fault(config, epoch, state is not None, metrics)
        report(metrics, {"epoch": epoch} if checkpoint else None)
