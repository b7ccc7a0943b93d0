"""CIFAR ResNet-18/50 and MobileNet-V2 with a pluggable activation.

The networks of DecisiveNets (Gripon, Lassance & Boukli Hacene), §5.1: ResNet-18 for
CIFAR-10, ResNet-50 for CIFAR-100, here in their usual CIFAR variants (3×3 stride-1 stem, no
max-pool, stages at 32/16/8/4 pixels for a 32×32 input, global average pooling, one linear
classifier). MobileNet-V2 is an addition of ours, not in the paper. Every network takes an activation factory
``act(num_channels) -> nn.Module``.

Placement (the paper does not say; derived from Table 1's multiplication counts, see
docs/decisivenets.md, "Readings we chose"):

* ``"inside"`` (default; the placement that reproduces Table 1): the factory's activation
  replaces the ReLUs *inside* each block — after ``bn1`` of a basic block, after ``bn1``
  and ``bn2`` of a bottleneck (and of an inverted residual). The stem ReLU and the
  block-output ReLU after the residual addition stay plain ReLUs.
* ``"everywhere"``: every ReLU of the network is the factory's activation.

Use :func:`build_model` as the entry point.
"""
from __future__ import annotations

import math
from functools import lru_cache, partial
from typing import Callable, Sequence

import torch
from torch import nn

from .activation import WTA_MODES, DHAMActivation
from .checks import is_int, positive_int

ActFactory = Callable[[int], nn.Module]

ARCHS = ("resnet18", "resnet50", "mobilenetv2")
PLACEMENTS = ("inside", "everywhere")

# Per-stage block counts: ResNets have 4 stages, MobileNet-V2 7 inverted-residual stages.
DEFAULT_BLOCKS = {
    "resnet18": (2, 2, 2, 2),
    "resnet50": (3, 4, 6, 3),
    "mobilenetv2": (1, 2, 3, 4, 3, 3, 1),
}


def relu_factory(num_channels: int) -> nn.Module:
    """The baseline activation (a plain ReLU), as a factory."""
    return nn.ReLU(inplace=True)


def per_stage(act: ActFactory | Sequence[ActFactory], stages: int) -> list[ActFactory]:
    """One activation factory per stage: ``act`` repeated, or the ``stages`` factories given."""
    if callable(act):
        return [act] * stages
    acts = list(act)
    if len(acts) != stages:
        raise ValueError(f"act must be one factory or {stages} (one per stage) (got {len(acts)})")
    return acts


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
    conv = nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, groups=groups, bias=False)
    return conv, nn.BatchNorm2d(cout)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, act: ActFactory, out_act: ActFactory):
        super().__init__()
        self.conv1, self.bn1 = _conv_bn(cin, planes, 3, stride)
        self.act1 = act(planes)
        self.conv2, self.bn2 = _conv_bn(planes, planes, 3)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(*_conv_bn(cin, planes, 1, stride))
        self.act_out = out_act(planes)

    def forward(self, x):
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act_out(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, act: ActFactory, out_act: ActFactory):
        super().__init__()
        width = planes * self.expansion
        self.conv1, self.bn1 = _conv_bn(cin, planes, 1)
        self.act1 = act(planes)
        self.conv2, self.bn2 = _conv_bn(planes, planes, 3, stride)
        self.act2 = act(planes)
        self.conv3, self.bn3 = _conv_bn(planes, width, 1)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != width:
            self.shortcut = nn.Sequential(*_conv_bn(cin, width, 1, stride))
        self.act_out = out_act(width)

    def forward(self, x):
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.act_out(out + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet: 3×3 stem, 4 stages of ``blocks[i]`` blocks at widths w, 2w, 4w, 8w.

    ``act`` is one factory for every stage or one per stage (:func:`per_stage`); with
    ``placement="everywhere"`` the stem's activation is the first stage's."""

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        blocks: Sequence[int],
        num_classes: int,
        in_channels: int = 3,
        width: int = 64,
        act: ActFactory | Sequence[ActFactory] = relu_factory,
        placement: str = "inside",
    ):
        super().__init__()
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS} (got placement={placement!r})")
        if len(blocks) != 4:
            raise ValueError(f"blocks must give 4 per-stage block counts for a ResNet (got blocks={tuple(blocks)})")
        acts = per_stage(act, len(blocks))
        out_acts = acts if placement == "everywhere" else [relu_factory] * len(blocks)
        self.conv1, self.bn1 = _conv_bn(in_channels, width, 3)
        self.act1 = out_acts[0](width)
        stages, cin = [], width
        for i, count in enumerate(blocks):
            planes, layers = width * 2**i, []
            for j in range(count):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(block(cin, planes, stride, acts[i], out_acts[i]))
                cin = planes * block.expansion
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def features(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.pool(x).flatten(1)

    def forward(self, x):
        return self.fc(self.features(x))


class InvertedResidual(nn.Module):
    """MobileNet-V2 block: 1×1 expand, 3×3 depthwise, 1×1 linear projection."""

    def __init__(self, cin: int, cout: int, expansion: int, stride: int, act: ActFactory):
        super().__init__()
        hidden = cin * expansion
        self.stride = stride
        self.conv1, self.bn1 = _conv_bn(cin, hidden, 1)
        self.act1 = act(hidden)
        self.conv2, self.bn2 = _conv_bn(hidden, hidden, 3, stride, groups=hidden)
        self.act2 = act(hidden)
        self.conv3, self.bn3 = _conv_bn(hidden, cout, 1)
        self.shortcut = None
        if stride == 1:
            self.shortcut = nn.Sequential() if cin == cout else nn.Sequential(*_conv_bn(cin, cout, 1))

    def forward(self, x):
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out if self.shortcut is None else out + self.shortcut(x)


class MobileNetV2(nn.Module):
    """CIFAR MobileNet-V2 (stride-1 stem and first stages, as in the common CIFAR port).

    ``width`` is the ResNet-style base width: every channel count is scaled by
    ``width / 64``, so the default 64 is the standard network (32-channel stem);
    the inverted-residual blocks have no output activation, so ``placement`` only decides
    whether the stem and the final 1×1 conv use the factory's activation or a plain ReLU.
    With one factory per stage (``act`` a sequence, :func:`per_stage`), the stem counts as
    the first stage and the final 1×1 conv as the last.
    """

    # (expansion, out_channels at width 32, stride of the stage's first block)
    STAGES = ((1, 16, 1), (6, 24, 1), (6, 32, 2), (6, 64, 2), (6, 96, 1), (6, 160, 2), (6, 320, 1))

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        width: int = 64,
        blocks: Sequence[int] = DEFAULT_BLOCKS["mobilenetv2"],
        act: ActFactory | Sequence[ActFactory] = relu_factory,
        placement: str = "inside",
    ):
        super().__init__()
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS} (got placement={placement!r})")
        if len(blocks) != len(self.STAGES):
            raise ValueError(
                f"blocks must give {len(self.STAGES)} per-stage block counts for mobilenetv2 "
                f"(got blocks={tuple(blocks)})"
            )
        scale = width / 64
        acts = per_stage(act, len(blocks))
        out_acts = acts if placement == "everywhere" else [relu_factory] * len(blocks)
        cin = max(1, round(32 * scale))
        self.conv1, self.bn1 = _conv_bn(in_channels, cin, 3)
        self.act1 = out_acts[0](cin)
        layers = []
        for i, ((expansion, cout, stride), count) in enumerate(zip(self.STAGES, blocks)):
            cout = max(1, round(cout * scale))
            for j in range(count):
                layers.append(InvertedResidual(cin, cout, expansion, stride if j == 0 else 1, acts[i]))
                cin = cout
        self.layers = nn.Sequential(*layers)
        last = max(1, round(1280 * scale))
        self.conv2, self.bn2 = _conv_bn(cin, last, 1)
        self.act2 = out_acts[-1](last)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(last, num_classes)

    def feature_map(self, x):
        """The last feature map before pooling, ``(B, 1280·width/64, H, W)`` (the resonator
        head's input, docs/resonator.md, "The classifier head")."""
        x = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(self.layers(x))))

    def features(self, x):
        return self.pool(self.feature_map(x)).flatten(1)

    def forward(self, x):
        return self.fc(self.features(x))


def dham_factory(
    ell: int = 1, groups: int | None = None, wta: str = "keep", temperature: float = 1.0
) -> ActFactory:
    """``act(num_channels)`` making :class:`DHAMActivation` with ``ell`` (or ``groups``)."""
    if groups is not None:
        return partial(_make_dham, ell=None, groups=groups, wta=wta, temperature=temperature)
    return partial(_make_dham, ell=ell, groups=None, wta=wta, temperature=temperature)


def _make_dham(num_channels: int, *, ell, groups, wta, temperature) -> nn.Module:
    return DHAMActivation(ell, groups=groups, num_channels=num_channels, temperature=temperature, wta=wta)


def stage_channels(arch: str, in_channels: int = 3, width: int = 64,
                   blocks: Sequence[int] | None = None, placement: str = "inside"
                   ) -> tuple[tuple[int, ...], ...]:
    """Per stage, the channel counts of its DHAM layers (those a non-baseline activation
    replaces under ``placement``), in network order; built on the meta device."""
    blocks = tuple(DEFAULT_BLOCKS[arch] if blocks is None else blocks)
    seen: list[list[int]] = [[] for _ in blocks]

    def recorder(stage: int) -> ActFactory:
        return lambda num_channels: (seen[stage].append(num_channels), nn.Identity())[1]

    acts = [recorder(i) for i in range(len(blocks))]
    with torch.device("meta"):
        if arch == "mobilenetv2":
            MobileNetV2(1, in_channels, width, blocks, acts, placement)
        else:
            block = BasicBlock if arch == "resnet18" else Bottleneck
            ResNet(block, blocks, 1, in_channels, width, acts, placement)
    return tuple(map(tuple, seen))


def allowed_stage_ells(arch: str, in_channels: int = 3, width: int = 64,
                       blocks: Sequence[int] | None = None, placement: str = "inside"
                       ) -> tuple[tuple[int, ...], ...]:
    """Per stage, the group sizes ell that divide every DHAM layer of the stage (the
    divisors of the gcd of their channel counts). Cached: a TPE plan validates thousands of
    combinations of one network."""
    return _allowed_stage_ells(arch, in_channels, width, None if blocks is None else tuple(blocks), placement)


@lru_cache(maxsize=64)
def _allowed_stage_ells(arch, in_channels, width, blocks, placement):
    gcds = [math.gcd(*channels) for channels in stage_channels(arch, in_channels, width, blocks, placement)]
    return tuple(tuple(d for d in range(1, g + 1) if g % d == 0) for g in gcds)


def check_stage_ell(stage_ell, allowed: tuple[tuple[int, ...], ...], arch: str) -> tuple[int, ...]:
    """``stage_ell`` as a tuple, or ``ValueError`` naming the field and each stage's allowed values."""
    ok = (isinstance(stage_ell, (list, tuple)) and len(stage_ell) == len(allowed)
          and all(is_int(e) and e in values for e, values in zip(stage_ell, allowed)))
    if not ok:
        stages = "; ".join(f"stage {i + 1}: {', '.join(map(str, v))}" for i, v in enumerate(allowed))
        raise ValueError(f"stage_ell must be {len(allowed)} group sizes for {arch}, one per stage, "
                         f"each dividing its stage's DHAM channels ({stages}) "
                         f"(got stage_ell={stage_ell!r})")
    return tuple(int(e) for e in stage_ell)


def build_model(
    arch: str,
    num_classes: int,
    in_channels: int = 3,
    width: int = 64,
    blocks: Sequence[int] | None = None,
    ell: int = 1,
    groups: int | None = None,
    placement: str = "inside",
    wta: str = "keep",
    stage_ell: Sequence[int] | None = None,
) -> nn.Module:
    """Build ``arch`` with DHAM activations of group size ``ell`` (or ``groups`` per layer, or
    ``stage_ell``: one group size per stage of ``blocks``, 1 = plain ReLUs in that stage).

    ``width`` is the base width (64: the paper's ResNets and the standard MobileNet-V2,
    whose channel counts all scale with ``width / 64``). ``blocks`` gives
    per-stage block counts (default: the standard depth, see ``DEFAULT_BLOCKS``). ``ell=1``
    with ``groups=None`` is the plain ReLU baseline. Raises ``ValueError`` if ``ell`` (or
    ``groups``, or a stage's ``stage_ell``) does not divide a DHAM layer's channel count.
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS} (got arch={arch!r})")
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS} (got placement={placement!r})")
    if wta not in WTA_MODES:
        raise ValueError(f"wta must be one of {WTA_MODES} (got wta={wta!r})")
    num_classes = positive_int("num_classes", num_classes)
    in_channels = positive_int("in_channels", in_channels)
    width = positive_int("width", width)
    blocks = tuple(DEFAULT_BLOCKS[arch] if blocks is None else blocks)
    if not all(is_int(b) and b >= 1 for b in blocks):
        raise ValueError(f"blocks must be positive integers (got blocks={blocks})")
    blocks = tuple(map(int, blocks))
    if groups is not None and ell != 1:
        raise ValueError(f"give either ell or groups, not both (got ell={ell!r}, groups={groups!r})")
    act = relu_factory if (groups is None and ell == 1) else dham_factory(ell, groups, wta)
    if stage_ell is not None:
        if groups is not None or ell != 1:
            raise ValueError(f"give one of ell, groups or stage_ell (got ell={ell!r}, groups={groups!r}, "
                             f"stage_ell={stage_ell!r})")
        allowed = allowed_stage_ells(arch, in_channels, width, blocks, placement)
        act = [relu_factory if e == 1 else dham_factory(e, None, wta)
               for e in check_stage_ell(stage_ell, allowed, arch)]
    if arch == "mobilenetv2":
        return MobileNetV2(num_classes, in_channels, width, blocks, act, placement)
    block = BasicBlock if arch == "resnet18" else Bottleneck
    return ResNet(block, blocks, num_classes, in_channels, width, act, placement)
