"""Ray Tune trainable for DecisiveNets Table 4: a backbone trained on a split's base classes,
then few-shot episodes on its novel classes' frozen features (``dham_core.fewshot``).

Per epoch it reports what ``trainables.dham`` reports (``val_acc``/``test_acc``: the base
classes' held-out images) with the trainer state as the checkpoint; the last epoch adds
``fewshot_acc`` and ``fewshot_ci95`` (nearest class mean over ``episodes`` N-way K-shot
episodes) and the seconds the feature extraction and the episodes took. A retried or resumed
trial continues from its latest checkpoint.
"""
from __future__ import annotations

from dham_core.fewshot import FewShotConfig, evaluate_fewshot, fewshot_data
from dham_core.train import Trainer
from trainables.common import FAULT_KEY, config_to_dataclass, inject_fault, load_state, report


def validate(config: dict) -> None:
    """Raise ValueError naming the field and the allowed values for a bad few-shot config."""
    config_to_dataclass(FewShotConfig, config, ignore=(FAULT_KEY,)).validate()


def train_fewshot(config: dict) -> None:
    cfg = config_to_dataclass(FewShotConfig, config, ignore=(FAULT_KEY,))
    data = fewshot_data(cfg.validate())
    trainer = Trainer(cfg, data=data.train)
    state = load_state()
    if state is not None:
        trainer.load_state_dict(state)

    def on_epoch(metrics: dict, t: Trainer) -> None:
        inject_fault(config, metrics["epoch"], state is not None, metrics)
        if metrics["epoch"] == cfg.epochs:
            metrics.update(evaluate_fewshot(t.model, data.novel, cfg))
        report(metrics, t.state_dict())

    trainer.fit(on_epoch=on_epoch)
