"""Ray Tune trainable of the Krotov–Hopfield classifier: trial config -> ``HopfieldConfig`` ->
``dham_core.hopfield_train.run_classifier`` -> one report per epoch.

Per epoch: train/eval error, temperature, lr, loss, best eval error, epochs to the error
threshold, with the trainer state as the checkpoint (``state["model"]["memories"]``, (K, 784 +
10), pixels first); the last epoch adds the feature→prototype measures. A retried or resumed
trial continues from its latest checkpoint.
"""
from __future__ import annotations

from dham_core.hopfield_train import HopfieldConfig, run_classifier
from trainables.common import FAULT_KEY, config_to_dataclass, inject_fault, load_state, report


def validate_classifier(config: dict) -> None:
    """Raise ValueError naming the field and the allowed values for a bad classifier trial config."""
    config_to_dataclass(HopfieldConfig, config, ignore=(FAULT_KEY,)).validate()


def train_hopfield_classifier(config: dict) -> None:
    cfg = config_to_dataclass(HopfieldConfig, config, ignore=(FAULT_KEY,)).validate()
    state = load_state()

    def on_epoch(metrics: dict, checkpoint: dict) -> None:
        inject_fault(config, metrics["epoch"], state is not None, metrics)
        report(metrics, checkpoint)

    run_classifier(cfg, on_epoch, state)
