"""Ray Tune trainable for DecisiveNets: trial config -> ``dham_core.train.Trainer`` -> reports.

Per epoch it reports train loss/accuracy, validation accuracy (WTA), temperature and LR, with
the full trainer state as the checkpoint; the last epoch adds test accuracy, analytic and
measured multiplications and the parameter count. A retried or resumed trial continues from
its latest checkpoint.
"""
from __future__ import annotations

from dham_core.train import DHAMConfig, Trainer
from trainables.common import FAULT_KEY, config_to_dataclass, inject_fault, load_state, report


def validate(config: dict) -> None:
    """Raise ValueError naming the field and the allowed values for a bad DHAM trial config."""
    config_to_dataclass(DHAMConfig, config, ignore=(FAULT_KEY,)).validate()


def train_dham(config: dict) -> None:
    cfg = config_to_dataclass(DHAMConfig, config, ignore=(FAULT_KEY,))
    trainer = Trainer(cfg)
    state = load_state()
    if state is not None:
        trainer.load_state_dict(state)

    def on_epoch(metrics: dict, t: Trainer) -> None:
        inject_fault(config, metrics["epoch"], state is not None, metrics)
        report(metrics, t.state_dict())

    trainer.fit(on_epoch=on_epoch)
