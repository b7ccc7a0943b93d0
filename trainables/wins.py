"""Ray Tune trainable counting the proportion of wins of a trained DHAM model (DecisiveNets
§5.7, Figs 2–4): source checkpoint (MLflow) → ``dham_core.wins.evaluate_wins`` → one report.

The report carries the source's ``source_ell``/``source_groups``/``source_seed``, the number
of DHAM layers, each layer's balance ``balance.layerNN`` (normalised win entropy,
:func:`dham_core.wins.balance`; absent for a layer of one-channel groups) and share of dead
groups ``dead.layerNN``, and their mean ``balance.mean``. The win tables themselves go in the
trial's checkpoint (``WinTables.state_dict()`` under ``wins``), which the sweep logs to MLflow
for ``analysis.wins``.
"""
from __future__ import annotations

import dataclasses

from dham_core.train import model_from_state
from dham_core.wins import WinsConfig, evaluate_wins
from trainables.checkpoints import SOURCE_KEY, load_source_state
from trainables.common import config_to_dataclass, report

SOURCE_KEYS = ("source_sweep", "source_run", SOURCE_KEY, "seed")
"""Config keys the runner adds (the source and its checkpoint; the grid's seed, unused: the
count is deterministic)."""


def _config(config: dict) -> WinsConfig:
    return config_to_dataclass(WinsConfig, config, ignore=SOURCE_KEYS)


def validate(config: dict) -> None:
    """Raise ValueError naming the field and the allowed values for a bad wins trial config."""
    _config(config).validate()


def layer_key(index: int, layers: int) -> str:
    """``layer01``, ``layer02``, ... (zero-padded to the model's layer count, at least 2 digits)."""
    return f"layer{index:0{max(2, len(str(layers)))}d}"


def count_source_wins(config: dict) -> None:
    cfg = _config(config).validate()
    model, trained = model_from_state(load_source_state(config), expect=cfg.expect())
    tables = evaluate_wins(model, trained, cfg)
    n = len(tables.layers)
    metrics = {"epoch": 1, "source_ell": trained.ell, "source_seed": trained.seed,
               "source_groups": trained.groups or 0, "dham_layers": n,
               "images": int(tables.images.sum())}
    balances = []
    for layer in tables.layers:
        key = layer_key(layer.index, n)
        metrics[f"dead.{key}"] = tables.dead_fraction(layer.index)
        value = tables.balance(layer.index)
        if value is not None:
            metrics[f"balance.{key}"] = value
            balances.append(value)
    if balances:
        metrics["balance.mean"] = sum(balances) / len(balances)
    report(metrics, {"wins": tables.state_dict(), "source_config": dataclasses.asdict(trained)})
