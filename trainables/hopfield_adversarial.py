"""Ray Tune trainable of the adversarial transfer experiment (Krotov's slides): trial config ->
``AdversarialConfig`` -> ``dham_core.hopfield_attack.adversarial_transfer``.

One report per training epoch (both models' eval errors, both trainers in the checkpoint), then
one result with the 2×2 table: images made against one model, classified by each.
"""
from __future__ import annotations

from dham_core.hopfield_attack import AdversarialConfig, adversarial_transfer
from trainables.common import FAULT_KEY, config_to_dataclass, inject_fault, load_state, report


def validate_adversarial(config: dict) -> None:
    config_to_dataclass(AdversarialConfig, config, ignore=(FAULT_KEY,)).validate()


def hopfield_adversarial_transfer(config: dict) -> None:
    cfg = config_to_dataclass(AdversarialConfig, config, ignore=(FAULT_KEY,)).validate()
    state = load_state()

    def on_epoch(metrics: dict, checkpoint: dict) -> None:
        inject_fault(config, metrics["epoch"], state is not None, metrics)
        report(metrics, checkpoint)

    report(adversarial_transfer(cfg, on_epoch, state))
