"""Multiplication counts of a network with DHAM activations (DecisiveNets, Table 1).

The paper (Gripon, Lassance & Boukli Hacene, §5.2) reports the multiplications needed to
process one input without saying how it counted them; docs/decisivenets.md, "The
multiplication counter" (eqs. 6–8), gives our reading. Two counts, per image, of the
multiply-accumulates (MACs) of the convolutions (and, with ``include_linear=True``, of the
linear layers):

* **analytic** — a layer whose input comes straight out of a :class:`DHAMActivation`
  (σ_t / WTA) costs ``MACs / ell`` (only one channel in each group of ``ell`` is non-zero
  at a location under WTA; with ``groups=c`` the divisor is that layer's ``ell = C / c``,
  with a per-stage ``stage_ell`` the ell of the stage the activation sits in);
  every other layer costs its full MACs (eq. 6). The divisor is read off each activation
  module that feeds the layer, so one count covers every way of choosing ell. For the
  CIFAR ResNet-50 on CIFAR-100 this equals Table 1's "R50 mults" column exactly for
  ℓ = 1, 2, …, 64 (tests/test_models_mults.py).
* **measured** — the MACs whose input value is actually non-zero on a given batch, in
  eval (WTA) mode, via forward hooks (eq. 7). It is at most the analytic count: under WTA
  at most ``C / ell`` inputs are non-zero per location, ReLU zeros are skipped too, and the
  zero padding of a convolution is never counted.

Run ``python -m dham_core.mults --arch resnet50 --num-classes 100 --ell 2`` to print both.

Hand-written (forward hooks) because MAC counters such as fvcore or thop count dense MACs
only: none knows that a WTA output has one non-zero per group, nor counts non-zero inputs.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .activation import WTA_MODES, DHAMActivation
from .checks import positive_int
from .models import ARCHS, PLACEMENTS, build_model
from .published import R18_C10_MULTS_LAW


def paper_resnet18_mults(ell: int) -> float:
    """The paper's Table 1 "R18 mults" figure for group size ``ell``: ``A + B / ell`` (eq. 8).

    This is the *paper's* number (``published.R18_C10_MULTS_LAW``: A = 1,179,648 and
    B = 3,891,200 fit all seven rows of Table 1 exactly), not something our counter
    reproduces: the standard CIFAR ResNet-18 has about 555M convolution MACs
    (``analytic_mults`` gives 555,417,600 at ``ell=1``), and we do not know which quantity
    the paper counted for it (docs/decisivenets.md, "The multiplication counter"). Use it
    only to print the published figure beside ours.
    """
    a, b = R18_C10_MULTS_LAW
    return a + b / positive_int("ell", ell)


@dataclass
class LayerCount:
    """Per-image counts of one convolution or linear layer."""

    name: str
    kind: str  # "conv" or "linear"
    macs: int  # dense multiply-accumulates per image
    ell: int  # 1, or the group size of the DHAM activation that produced the input
    measured: float | None = None  # MACs with a non-zero input, averaged over the batch

    @property
    def analytic(self) -> float:
        return self.macs // self.ell if self.macs % self.ell == 0 else self.macs / self.ell


def conv_measured(conv: nn.Conv2d, x: torch.Tensor) -> float:
    """Measured MACs of ``conv`` on input ``x``, per image: over all outputs, the sum of the
    non-zero inputs in their receptive field.

    Each output channel of conv group ``g`` reads the same window of group ``g``'s input
    channels, so count non-zeros per group and location, box-sum them over the kernel
    window with a ones kernel, and multiply by the output channels per group.
    """
    if conv.padding_mode != "zeros":
        raise NotImplementedError("measured counts support zero padding only")
    n, cin = x.shape[:2]
    g = conv.groups
    nonzero = (x != 0).to(torch.float32).unflatten(1, (g, cin // g)).sum(2)
    ones = torch.ones(g, 1, *conv.kernel_size, device=x.device, dtype=torch.float32)
    window = F.conv2d(nonzero, ones, None, conv.stride, conv.padding, conv.dilation, groups=g)
    return float(window.double().sum()) * (conv.out_channels // g) / n


def layer_counts(
    model: nn.Module,
    inputs: torch.Tensor,
    include_linear: bool = False,
    measure: bool = True,
) -> list[LayerCount]:
    """Run ``inputs`` through ``model`` in eval mode and count every conv (and linear) layer.

    ``inputs`` is a batch ``(N, C, H, W)``; the model's train/eval mode is restored after.
    With ``measure=False`` only the analytic counts are computed (works on the meta device).
    """
    dham_outputs: dict[int, tuple[torch.Tensor, int]] = {}
    counts: list[LayerCount] = []
    names = {module: name for name, module in model.named_modules()}

    def after_dham(module: DHAMActivation, args, output):
        # Keep the tensor alive so its id() cannot be reused during this forward pass.
        dham_outputs[id(output)] = (output, module.group_size(args[0].shape[1]))

    def after_layer(module: nn.Module, args, output):
        x = args[0]
        ell = dham_outputs.get(id(x), (None, 1))[1]
        n = x.shape[0]
        if isinstance(module, nn.Conv2d):
            per_output = (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
            count = LayerCount(names[module], "conv", output.numel() // n * per_output, ell)
            if measure:
                count.measured = conv_measured(module, x)
        else:
            count = LayerCount(names[module], "linear", output.numel() // n * module.in_features, ell)
            if measure:
                count.measured = float((x != 0).sum()) * module.out_features / n
        counts.append(count)

    kinds = (nn.Conv2d, nn.Linear) if include_linear else (nn.Conv2d,)
    handles = [m.register_forward_hook(after_dham) for m in model.modules() if isinstance(m, DHAMActivation)]
    handles += [m.register_forward_hook(after_layer) for m in model.modules() if isinstance(m, kinds)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return counts


def analytic_mults(
    model: nn.Module, input_shape: tuple[int, int, int] = (3, 32, 32), include_linear: bool = False
) -> int | float:
    """Analytic multiplications per image for inputs of shape ``(C, H, W)`` (values unused)."""
    parameter = next(model.parameters())
    inputs = torch.zeros(1, *input_shape, device=parameter.device, dtype=parameter.dtype)
    return sum(c.analytic for c in layer_counts(model, inputs, include_linear, measure=False))


def model_mults(input_shape: tuple[int, int, int], include_linear: bool = False, **build) -> int | float:
    """Analytic multiplications per image of ``build_model(**build)`` for inputs of shape
    ``(C, H, W)``, built on the meta device (no memory, no weight initialisation)."""
    with torch.device("meta"):
        model = build_model(**build)
    return analytic_mults(model, input_shape, include_linear)


def count_mults(model: nn.Module, inputs: torch.Tensor, include_linear: bool = False) -> dict:
    """Both counts in one forward pass: ``{"analytic": ..., "measured": ..., "layers": [...]}``."""
    layers = layer_counts(model, inputs, include_linear, measure=True)
    return {
        "analytic": sum(c.analytic for c in layers),
        "measured": sum(c.measured for c in layers),
        "layers": layers,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet50", choices=ARCHS)
    parser.add_argument("--num-classes", type=int, default=100)
    parser.add_argument("--in-channels", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--blocks", type=int, nargs="+", default=None)
    parser.add_argument("--ell", type=int, default=1)
    parser.add_argument("--groups", type=int, default=None)
    parser.add_argument("--stage-ell", type=int, nargs="+", default=None,
                        help="one group size per stage (4 for a ResNet, 7 for MobileNet-V2)")
    parser.add_argument("--placement", default="inside", choices=PLACEMENTS)
    parser.add_argument("--wta", default="keep", choices=WTA_MODES)
    parser.add_argument("--include-linear", action="store_true")
    parser.add_argument("--batch-size", type=int, default=8, help="random batch size for the measured count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--input", default=None, help="a .pt file holding an (N, C, H, W) tensor to measure on")
    parser.add_argument("--checkpoint", default=None, help="a .pt model state_dict to load (weights_only)")
    parser.add_argument("--per-layer", action="store_true")
    args = parser.parse_args(argv)

    generator = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    model = build_model(
        args.arch, args.num_classes, args.in_channels, args.width,
        None if args.blocks is None else tuple(args.blocks), args.ell, args.groups, args.placement, args.wta,
        None if args.stage_ell is None else tuple(args.stage_ell),
    )
    if args.checkpoint:
        model.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=True))
    if args.input:
        inputs = torch.load(args.input, map_location="cpu", weights_only=True)
        source = f"{args.input} ({inputs.shape[0]} images)"
    else:
        shape = (args.batch_size, args.in_channels, args.image_size, args.image_size)
        inputs = torch.randn(shape, generator=generator)
        source = f"random N(0,1) batch of {args.batch_size}, untrained weights, seed {args.seed}"
    result = count_mults(model, inputs, args.include_linear)
    layers = "convolutions and linear layers" if args.include_linear else "convolutions"
    if args.per_layer:
        for c in result["layers"]:
            print(f"  {c.name:32s} {c.kind:6s} ell={c.ell:<3d} macs={c.macs:>13,d} "
                  f"analytic={c.analytic:>15,.0f} measured={c.measured:>15,.0f}")
    print(f"{args.arch}, {args.num_classes} classes, ell={args.ell}, groups={args.groups}, "
          f"stage_ell={args.stage_ell}, placement={args.placement}; multiplications per image ({layers}):")
    print(f"  analytic: {result['analytic']:,.0f}")
    print(f"  measured: {result['measured']:,.0f}   (on {source}, eval/WTA mode)")
    standard = (args.width == 64 and args.blocks is None and args.groups is None and args.stage_ell is None
                and args.image_size == 32)
    if standard and not args.include_linear and args.placement == "inside" and args.in_channels == 3:
        if args.arch == "resnet18":
            print(f"  paper Table 1 R18 figure: {paper_resnet18_mults(args.ell):,.0f} "
                  "(the paper's A + B/ell law; it is not the standard ResNet-18's MAC count)")
    return result


if __name__ == "__main__":
    main()
