"""Ray Tune trainable for the accuracy–multiplications front of DecisiveNets with one group
size per stage (docs/decisivenets.md, "Beyond the paper: the accuracy–multiplications front").

Optuna's categorical choices cannot be tuples, so the sweep searches one axis per stage,
``ell_stage1`` .. ``ell_stageN`` (N = the architecture's stages: 4 for a ResNet, 7 for
MobileNet-V2); :func:`compose` turns them into ``DHAMConfig.stage_ell``. Every epoch reports
what ``trainables.dham`` reports plus ``mults`` (the analytic multiplications per image,
``dham_core.mults.model_mults``; fixed by the configuration, reported each epoch because the
searcher's objectives must be in every result) and ``mults_ratio`` (``mults`` over the same
network's plain-ReLU count, ell = 1 everywhere).
"""
from __future__ import annotations

import re

from dham_core.models import DEFAULT_BLOCKS
from dham_core.mults import model_mults
from dham_core.train import DHAMConfig, Trainer
from trainables.common import config_to_dataclass, load_state, report

STAGE_KEY = re.compile(r"ell_stage(\d+)")


def compose(config: dict) -> dict:
    """``config`` with its ``ell_stage1`` .. ``ell_stageN`` keys replaced by ``stage_ell``
    (unchanged when it has none); ``ValueError`` naming the keys the architecture needs."""
    found = {k for k in config if STAGE_KEY.fullmatch(k)}
    if not found:
        return config
    arch = config.get("arch", DHAMConfig.arch)
    stages = len(DEFAULT_BLOCKS.get(arch, ()))
    want = [f"ell_stage{i}" for i in range(1, stages + 1)]
    if found != set(want) or "stage_ell" in config:
        raise ValueError(f"ell_stage keys must be exactly {', '.join(want)} for arch={arch!r} "
                         f"(and no stage_ell beside them) (got {', '.join(sorted(found))})")
    rest = {k: v for k, v in config.items() if k not in found}
    return {**rest, "stage_ell": tuple(config[k] for k in want)}


def validate(config: dict) -> None:
    """Raise ValueError naming the field and the allowed values for a bad trial config; the
    search ranks trials on ``val_acc``, so it needs a validation split."""
    cfg = config_to_dataclass(DHAMConfig, compose(config)).validate()
    if cfg.val_size == 0:
        raise ValueError("val_size must be an integer >= 1 for this search, which ranks trials on "
                         "val_acc (got val_size=0)")


def train_dham_pareto(config: dict) -> None:
    cfg = config_to_dataclass(DHAMConfig, compose(config))
    trainer = Trainer(cfg)
    state = load_state()
    if state is not None:
        trainer.load_state_dict(state)
    net = dict(arch=cfg.arch, num_classes=trainer.num_classes, in_channels=trainer.in_channels,
               width=cfg.width, blocks=cfg.blocks, placement=cfg.placement)
    shape = tuple(trainer.test_ds[0][0].shape)
    mults = float(model_mults(shape, ell=cfg.ell, groups=cfg.groups, stage_ell=cfg.stage_ell, **net))
    extra = {"mults": mults, "mults_ratio": mults / float(model_mults(shape, **net))}

    def on_epoch(metrics: dict, t: Trainer) -> None:
        report({**metrics, **extra}, t.state_dict())

    trainer.fit(on_epoch=on_epoch)
