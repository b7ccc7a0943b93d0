"""Training a backbone with the resonator classifier head (thesis ch. 4), no Ray import.

:class:`HeadConfig` is :class:`~dham_core.train.DHAMConfig` plus the head's fields, with the
thesis's recipe as defaults (§4.2: SGD with Nesterov momentum, lr 0.04, cosine schedule, batch
256, weight decay 4·10⁻⁵ — the thesis's "momentum factor", read as weight decay in
docs/resonator.md, "Training recipe of the head"). :class:`HeadTrainer` is the DHAM
:class:`~dham_core.train.Trainer` with its hooks overridden: the network is a backbone's last
feature map followed by :class:`~dham_core.resonator_head.ResonatorHead`, the loss is the head's
(segment-wise or overlap), per-epoch ``val_acc`` is the overlap accuracy (nearest class target,
cheap), and the last epoch reports the thesis's three test accuracies and the parameter counts.

Backbones: ``"mobilenetv2_imagenet"`` is torchvision's ``mobilenet_v2`` (the ImageNet network of
Sandler et al. 2018: 224×224 input, last map 1280×7×7), used with ``dataset="imagenet"``
(``dham_core.imagenet``); the repo's CIFAR MobileNet-V2 (``dham_core.models``, through
its ``feature_map``) serves CIFAR-100 and the offline digits.

    trainer = HeadTrainer(HeadConfig(dataset="mnist_offline", arch="mobilenetv2", width=8, D=160,
                                     k=32, size=4, a=3, epochs=2, device="cpu"))
    trainer.fit(lambda metrics, trainer: print(metrics))
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import torch
from torch import nn

from .checks import is_int, is_number, refuse
from .data import DATASETS
from .imagenet import IMAGE_SIZE, check_root, load_imagenet
from .models import build_model
from .resonator import check_a
from .resonator_head import LOSSES, POOLINGS, TRAININGS, ResonatorHead, head_parameter_count
from .resonator_labels import LabelCode
from .sbc import block_length
from .train import DHAMConfig, Trainer

IMAGENET_ARCH = "mobilenetv2_imagenet"
HEAD_DATASETS = (*DATASETS, "imagenet")
HEAD_ARCHS = ("mobilenetv2", IMAGENET_ARCH)
INPUT_SIZES = {"cifar10": 32, "cifar100": 32, "mnist_offline": 28, "fashion_mnist": 28,
               "imagenet": IMAGE_SIZE}
# Head fields a checkpoint must agree on to be loaded into a trainer (besides the backbone's).
CHECKPOINT_FIELDS = ("dataset", "arch", "width", "blocks", "factors", "size", "D", "k", "pooling",
                     "loss", "training", "codebook_seed")


@dataclass
class HeadConfig(DHAMConfig):
    """One head-training run; the DHAM fields keep their meaning, with the thesis's recipe."""

    dataset: str = "imagenet"
    """One of data.DATASETS or "imagenet" (torchvision's ImageNet layout under ``data_root``)."""
    arch: str = IMAGENET_ARCH
    """"mobilenetv2_imagenet" (torchvision; only with imagenet) or "mobilenetv2" (dham_core.models)."""
    epochs: int = 200
    """Training epochs (thesis: 100, 200 or 400)."""
    batch_size: int = 256
    """Training batch size (thesis: 256)."""
    lr: float = 0.04
    """Initial learning rate (thesis: 0.04)."""
    weight_decay: float = 4e-5
    """The thesis's "momentum factor 4·10⁻⁵", read as weight decay."""
    schedule: str = "cosine"
    """"cosine" (thesis) or "step"."""
    nesterov: bool = True
    """Nesterov momentum (thesis)."""
    factors: int = 3
    """V, factors per label (thesis: 3 with M = 10, or 2 with M = 32)."""
    size: int | None = None
    """M, codewords per codebook; None = the smallest M with M**V >= classes."""
    D: int = 1280
    """Target dimension (thesis: 1280); a linear map is added when the backbone's channels differ."""
    k: int = 64
    """Segments (thesis: 40, 64, 80, 128, 160); must divide D."""
    pooling: str = "weighted"
    """"average" or "weighted" (one learned weight per spatial position)."""
    loss: str = "cosine"
    """"cross_entropy" or "cosine" (trainable scale s)."""
    training: str = "segment"
    """"segment" (k L-way classifications) or "overlap" (logits O^T z over all classes)."""
    scale_init: float = 10.0
    """Initial cosine-loss scale s (> 0; the thesis does not give it)."""
    a: int = 6
    """Resonator attention sparsification, 1 <= a <= M."""
    patience: int = 2
    """Resonator: unchanged iterations that count as converged (>= 1)."""
    max_it: int | None = None
    """Resonator iteration cap; None = max(2000, M^V / 1000) (thesis eq. 3.7)."""
    codebook_seed: int = 0
    """Seeds the fixed random codebooks."""

    def code(self) -> LabelCode:
        """The label code for this dataset's classes (refuses classes > M**V, naming the fields)."""
        classes = 1000 if self.dataset == "imagenet" else DATASETS[self.dataset][0]
        if self.size is None:
            return LabelCode.for_classes(classes, self.factors)
        return LabelCode(classes, self.factors, self.size)

    def validate(self, check_data: bool = True) -> "HeadConfig":
        """Raise ``ValueError`` naming the field and the allowed values; ``check_data=False``
        skips the ImageNet folder check (a dry run plans without the data)."""
        fail = functools.partial(refuse, self)
        for name, allowed in (("dataset", HEAD_DATASETS), ("arch", HEAD_ARCHS), ("pooling", POOLINGS),
                              ("loss", LOSSES), ("training", TRAININGS)):
            if getattr(self, name) not in allowed:
                fail(name, f"one of {allowed}")
        for name, low in (("factors", 2), ("D", 1), ("k", 1), ("patience", 1)):
            if not is_int(getattr(self, name)) or getattr(self, name) < low:
                fail(name, f"an integer >= {low}")
        for name in ("size", "max_it"):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value < (2 if name == "size" else 1)):
                fail(name, f"None or an integer >= {2 if name == 'size' else 1}")
        if not is_int(self.codebook_seed):
            fail("codebook_seed", "an integer")
        if not is_number(self.scale_init) or self.scale_init <= 0:
            fail("scale_init", "a finite number > 0")
        block_length(self.D, self.k)  # "k must divide D"
        code = self.code()
        check_a(self.a, code.size)
        if (self.dataset == "imagenet") != (self.arch == IMAGENET_ARCH):
            fail("arch", f'"{IMAGENET_ARCH}" exactly when dataset="imagenet" (torchvision\'s network)')
        if self.dataset != "imagenet":
            super().validate()
        else:
            if (self.ell != 1 or self.groups is not None or self.stage_ell is not None
                    or self.blocks is not None):
                fail("arch", f"a CIFAR net for ell/groups/stage_ell/blocks (torchvision's {IMAGENET_ARCH} "
                     "has plain ReLUs and its standard depth)")
            # The DHAM fields' checks, on a stand-in the DHAM validator knows (same recipe fields).
            DHAMConfig.validate(dataclasses.replace(self, dataset="cifar10", arch="mobilenetv2",
                                                    data_root=None))
            if check_data:
                check_root(self.data_root)
        return self


class TorchvisionMobileNetV2(nn.Module):
    """torchvision's ImageNet MobileNet-V2 (random init, no download), with ``feature_map``."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        from torchvision.models import mobilenet_v2

        self.features = mobilenet_v2(weights=None, width_mult=width / 64).features

    def feature_map(self, x):
        return self.features(x)


def build_backbone(cfg: HeadConfig, num_classes: int, in_channels: int) -> nn.Module:
    """The backbone with ``feature_map``; the CIFAR net loses its fully connected layer."""
    if cfg.arch == IMAGENET_ARCH:
        return TorchvisionMobileNetV2(cfg.width)
    net = build_model(cfg.arch, num_classes, in_channels, cfg.width, cfg.blocks, cfg.ell, cfg.groups,
                      cfg.placement, cfg.wta, cfg.stage_ell)
    net.fc = nn.Identity()
    return net


def feature_shape(cfg: HeadConfig) -> tuple[int, int, int]:
    """``(C, H, W)`` of the backbone's last map for this dataset's input size (meta device)."""
    in_channels = 3 if cfg.dataset == "imagenet" else DATASETS[cfg.dataset][1]
    size = INPUT_SIZES[cfg.dataset]
    with torch.device("meta"):
        net = build_backbone(cfg, 10, in_channels)
        return tuple(net.feature_map(torch.empty(1, in_channels, size, size)).shape[1:])


def head_params(cfg: HeadConfig) -> int:
    """The head's stored parameter count for ``cfg`` (``ResonatorHead.parameter_count``)."""
    c, h, w = feature_shape(cfg)
    return head_parameter_count(cfg.pooling, (h, w), cfg.code(), cfg.k, c, cfg.D)


class HeadNet(nn.Module):
    """Backbone feature map -> head -> ``z`` ``(B, D)``."""

    def __init__(self, backbone: nn.Module, head: ResonatorHead) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x):
        return self.head(self.backbone.feature_map(x))


class HeadTrainer(Trainer):
    """:class:`~dham_core.train.Trainer` with the resonator head (module docstring)."""

    cfg: HeadConfig

    def __init__(self, cfg: HeadConfig, data: tuple | None = None) -> None:
        cfg.validate()
        if data is None and cfg.dataset == "imagenet":
            data = load_imagenet(cfg.data_root, cfg.seed, cfg.val_size)
        super().__init__(cfg, data)

    def build_model(self) -> nn.Module:
        cfg = self.cfg
        backbone = build_backbone(cfg, self.num_classes, self.in_channels)
        c, h, w = feature_shape(cfg)
        head = ResonatorHead(c, (h, w), cfg.code(), cfg.D, cfg.k, cfg.pooling, cfg.loss, cfg.training,
                             cfg.scale_init, cfg.a, cfg.patience, cfg.max_it, cfg.codebook_seed)
        return HeadNet(backbone, head)

    @property
    def head(self) -> ResonatorHead:
        return self.model.head

    def loss(self, outputs, labels):
        return self.head.loss(outputs, labels)

    def predict(self, outputs):
        return self.head.overlap_logits(outputs).argmax(1)

    @torch.no_grad()
    def evaluate_head(self, dataset) -> dict:
        """Resonator, overlap and segment-wise accuracy on ``dataset`` (thesis §4.3)."""
        from .train import _loader

        self.model.eval()
        gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed)
        hits = torch.zeros(3, dtype=torch.float64, device=self.device)
        for images, labels in _loader(dataset, self.cfg.eval_batch_size, False, None, self.cfg.num_workers):
            images, labels = self._to_device(images, labels)
            with self._autocast():
                z = self.model(images)
            pred = self.head.decode(z.float(), gen)
            segments = self.head.segment_correct(pred.offsets, labels).sum() / self.head.k
            hits += torch.stack([(pred.resonator == labels).sum(), (pred.overlap == labels).sum(),
                                 segments]).double()
        acc = (hits / len(dataset)).tolist()
        return {"resonator_acc": acc[0], "overlap_acc": acc[1], "segment_acc": acc[2]}

    def final_metrics(self) -> dict:
        metrics = self.evaluate_head(self.test_ds)
        metrics["test_acc"] = metrics["resonator_acc"]
        metrics["head_params"] = self.head.parameter_count()
        metrics["num_params"] = sum(p.numel() for p in self.model.parameters())
        metrics["backbone_params"] = sum(p.numel() for p in self.model.backbone.parameters())
        return metrics

    def load_state_dict(self, state: dict) -> None:
        """Refuse a checkpoint whose head (or backbone) config differs, naming the field."""
        saved = state.get("config", {})
        for name in CHECKPOINT_FIELDS:
            mine, theirs = getattr(self.cfg, name), saved.get(name)
            if (tuple(mine) if isinstance(mine, (list, tuple)) else mine) != (
                    tuple(theirs) if isinstance(theirs, (list, tuple)) else theirs):
                raise ValueError(f"checkpoint has {name}={theirs!r} but the head config has "
                                 f"{name}={mine!r}; the {name} of a checkpoint cannot change")
        super().load_state_dict(state)
