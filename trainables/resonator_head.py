"""Ray Tune trainable for the resonator classifier head: trial config -> ``HeadTrainer`` -> reports.

Per epoch: train loss/accuracy (overlap decoding), ``val_acc`` (overlap accuracy), LR, with the
trainer state as the checkpoint; the last epoch adds the thesis's three test accuracies
(``resonator_acc``, ``overlap_acc``, ``segment_acc``; ``test_acc`` = resonator) and the parameter
counts (``head_params`` as the thesis counts them, ``num_params``, ``backbone_params``). A
retried or resumed trial continues from its latest checkpoint.
"""
from __future__ import annotations

from dham_core.head_train import HeadConfig, HeadTrainer
from trainables.common import FAULT_KEY, config_to_dataclass, inject_fault, load_state, report


def head_config(config: dict) -> HeadConfig:
    return config_to_dataclass(HeadConfig, config, ignore=(FAULT_KEY,))


def validate(config: dict) -> None:
    """Raise ValueError naming the field and the allowed values (ImageNet folder included)."""
    head_config(config).validate()


def validate_plan(config: dict) -> None:
    """As :func:`validate`, without the ImageNet folder check (what ``--dry-run`` plans with)."""
    head_config(config).validate(check_data=False)


def train_resonator_head(config: dict) -> None:
    trainer = HeadTrainer(head_config(config))
    state = load_state()
    if state is not None:
        trainer.load_state_dict(state)

    def on_epoch(metrics: dict, t: HeadTrainer) -> None:
        inject_fault(config, metrics["epoch"], state is not None, metrics)
        report(metrics, t.state_dict())

    trainer.fit(on_epoch=on_epoch)
