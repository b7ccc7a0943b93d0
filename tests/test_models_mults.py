"""Models (placement, shapes) and multiplication counts against DecisiveNets Table 1
(docs/decisivenets.md, "The multiplication counter")."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dham_core.activation import DHAMActivation, dham_modules
from dham_core.models import build_model
from dham_core.mults import analytic_mults, conv_measured, count_mults, layer_counts, main, paper_resnet18_mults
from dham_core.published import DECISIVENETS_TABLE1, ELLS, R50_C100_MULTS_LAW

# DecisiveNets Table 1, published multiplication columns.
TABLE1_R50_MULTS = tuple(row["r50_mults"] for row in DECISIVENETS_TABLE1)
TABLE1_R18_MULTS = tuple(row["r18_mults"] for row in DECISIVENETS_TABLE1)


def test_table1_columns_as_printed():
    # Guard the shared constants against a typo: the values as printed in the paper.
    assert ELLS == (1, 2, 4, 8, 16, 32, 64)
    assert TABLE1_R50_MULTS == (1_297_809_408, 861_601_792, 643_497_984, 534_446_080, 479_920_128,
                                452_657_152, 439_025_664)
    assert TABLE1_R18_MULTS == (5_070_848, 3_125_248, 2_152_448, 1_666_048, 1_422_848, 1_301_248, 1_240_448)


def meta_model(*args, **kwargs):
    with torch.device("meta"):
        return build_model(*args, **kwargs)


@pytest.mark.parametrize("ell,published", list(zip(ELLS, TABLE1_R50_MULTS)))
def test_resnet50_cifar100_analytic_count_equals_table1(ell, published):
    assert analytic_mults(meta_model("resnet50", 100, ell=ell)) == published


def test_table1_r18_column_is_the_papers_affine_law():
    # The R18 column is not a count our network reproduces (docs/decisivenets.md): it is the
    # paper's own law mults(ell) = A + B / ell. Two rows (ell = 1, 2) fix A and B; the other
    # five published rows must then follow, and paper_resnet18_mults must print that law.
    m1, m2 = TABLE1_R18_MULTS[:2]
    b = 2 * (m1 - m2)
    a = m1 - b
    assert (a, b) == (1_179_648, 3_891_200)
    assert [a + b / ell for ell in ELLS] == list(TABLE1_R18_MULTS)
    assert [paper_resnet18_mults(ell) for ell in (1, 3, 5, 64, 100)] == [
        a + b / ell for ell in (1, 3, 5, 64, 100)]


def standard_resnet18_macs(ell: int) -> tuple[int, int]:
    """Closed-form CIFAR ResNet-18 conv MACs, independent of the counter: (total, total with
    every basic block's second conv divided by ell)."""
    total = reduced = 3 * 64 * 9 * 32 * 32  # stem
    cin, size = 64, 32
    for stage, planes in enumerate((64, 128, 256, 512)):
        for block in range(2):
            stride = 2 if (stage > 0 and block == 0) else 1
            size //= stride
            conv1 = cin * planes * 9 * size * size
            conv2 = planes * planes * 9 * size * size
            short = cin * planes * size * size if (stride != 1 or cin != planes) else 0
            total += conv1 + conv2 + short
            reduced += conv1 + conv2 // ell + short
            cin = planes
    return total, reduced


@pytest.mark.parametrize("ell", [1, 2, 8])
def test_resnet18_analytic_count_matches_closed_form(ell):
    total, reduced = standard_resnet18_macs(ell)
    assert total == 555_417_600
    assert analytic_mults(meta_model("resnet18", 10, ell=ell)) == reduced


def test_resnet50_split_into_never_reduced_and_reduced_convs():
    # docs/decisivenets.md, eq. 8: stem + first 1x1s + shortcuts = 425,394,176 MACs never reduced;
    # 3x3s + last 1x1s = 872,415,232 divided by ell.
    layers = layer_counts(meta_model("resnet50", 100, ell=2), torch.zeros(1, 3, 32, 32, device="meta"), measure=False)
    assert sum(c.macs for c in layers if c.ell == 1) == 425_394_176 == R50_C100_MULTS_LAW[0]
    assert sum(c.macs for c in layers if c.ell == 2) == 872_415_232 == R50_C100_MULTS_LAW[1]
    assert {c.name.split(".")[-1] for c in layers if c.ell == 2} == {"conv2", "conv3"}


def test_placement_and_structure():
    r18 = build_model("resnet18", 10, width=8)
    assert dham_modules(r18) == []  # ell=1 is the plain ReLU network
    assert len(dham_modules(build_model("resnet18", 10, width=8, ell=2))) == 8
    assert len(dham_modules(build_model("resnet18", 10, width=8, ell=2, placement="everywhere"))) == 17
    r50 = meta_model("resnet50", 100, ell=2)
    assert len(dham_modules(r50)) == 32
    assert all(isinstance(b.act_out, nn.ReLU) for stage in (r50.layer1, r50.layer4) for b in stage)
    assert isinstance(r50.act1, nn.ReLU)
    assert not any(isinstance(m, nn.MaxPool2d) for m in r50.modules())
    assert r50.conv1.kernel_size == (3, 3) and r50.conv1.stride == (1, 1)
    assert len(dham_modules(meta_model("resnet50", 100, groups=8))) == 32


@pytest.mark.parametrize("arch", ["resnet18", "resnet50", "mobilenetv2"])
def test_small_models_forward_shapes(arch):
    torch.manual_seed(0)
    blocks = {"resnet18": (1, 1, 1, 1), "resnet50": (1, 1, 1, 1), "mobilenetv2": (1, 1, 1, 1, 1, 1, 1)}[arch]
    model = build_model(arch, 7, in_channels=1, width=16, blocks=blocks, ell=2)
    x = torch.randn(3, 1, 28, 28)
    for mode in (True, False):
        assert model.train(mode)(x).shape == (3, 7)


def brute_force_measured(conv: nn.Conv2d, x: torch.Tensor) -> float:
    """Count (output, non-zero input in its window) pairs with unfold, group by group."""
    n, g = x.shape[0], conv.groups
    total = 0.0
    for group, chunk in enumerate(x.chunk(g, dim=1)):
        cols = F.unfold((chunk != 0).double(), conv.kernel_size, conv.dilation, conv.padding, conv.stride)
        total += float(cols.sum()) * (conv.out_channels // g)
    return total / n


@pytest.mark.parametrize("groups,stride,kernel", [(1, 1, 3), (1, 2, 3), (4, 1, 3), (8, 2, 3), (1, 1, 1)])
def test_measured_conv_count_matches_brute_force(groups, stride, kernel):
    g = torch.Generator().manual_seed(groups * 10 + stride)
    conv = nn.Conv2d(8, 16, kernel, stride, padding=kernel // 2, groups=groups, bias=False)
    x = torch.randn(2, 8, 9, 9, generator=g) * (torch.rand(2, 8, 9, 9, generator=g) < 0.3)
    assert conv_measured(conv, x) == pytest.approx(brute_force_measured(conv, x), rel=1e-12)


@pytest.mark.parametrize(
    "arch,kwargs",
    [
        ("resnet18", {"ell": 2}),
        ("resnet18", {"ell": 4, "placement": "everywhere"}),
        ("resnet18", {"groups": 4, "wta": "binary"}),
        ("resnet50", {"ell": 4}),
        ("mobilenetv2", {"ell": 2}),
    ],
)
def test_measured_at_most_analytic_every_layer(arch, kwargs):
    torch.manual_seed(1)
    blocks = (1, 1, 1, 1, 1, 1, 1) if arch == "mobilenetv2" else (1, 1, 1, 1)
    model = build_model(arch, 10, width=16, blocks=blocks, **kwargs)
    x = torch.randn(4, 3, 32, 32)
    result = count_mults(model, x, include_linear=True)
    assert 0 < result["measured"] <= result["analytic"]
    for layer in result["layers"]:
        assert layer.measured <= layer.analytic + 1e-6, layer
    assert any(layer.ell > 1 for layer in result["layers"])
    assert model.training  # mode restored
    # DHAM-fed layers are discounted, so the analytic count is below the dense MACs.
    assert sum(layer.macs for layer in result["layers"]) > result["analytic"]


def test_groups_mode_uses_each_layers_ell():
    # groups=4 in a width-16 ResNet-18: inside channels 16, 32, 64, 128 -> ell 4, 8, 16, 32.
    layers = layer_counts(build_model("resnet18", 10, width=16, groups=4), torch.zeros(1, 3, 32, 32), measure=False)
    assert [c.ell for c in layers if c.ell > 1] == [4, 4, 8, 8, 16, 16, 32, 32]


def test_cli_prints_both_counts(capsys):
    result = main(["--arch", "resnet50", "--num-classes", "100", "--ell", "2", "--batch-size", "1"])
    out = capsys.readouterr().out
    assert "analytic: 861,601,792" in out
    assert "measured:" in out
    assert result["measured"] <= result["analytic"] == 861_601_792


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"arch": "vgg"}, "arch"),
        ({"placement": "outside"}, "placement"),
        ({"wta": "soft"}, "wta"),
        ({"ell": 3}, "ell"),
        ({"ell": 0}, "ell"),
        ({"groups": 3}, "groups"),
        ({"ell": 2, "groups": 2}, "groups"),
        ({"blocks": (1, 1)}, "blocks"),
        ({"width": 0}, "width"),
    ],
)
def test_build_model_bad_arguments(kwargs, name):
    args = {"arch": "resnet18", "num_classes": 10, **kwargs}
    with pytest.raises(ValueError, match=name):
        with torch.device("meta"):
            build_model(**args)


def test_paper_resnet18_bad_ell():
    with pytest.raises(ValueError, match="ell"):
        paper_resnet18_mults(0)


def brute_force_nonzero_products(conv: nn.Conv2d, x: torch.Tensor) -> int:
    """Multiplications of ``conv`` on ``x`` whose input value is non-zero, summed over the
    batch: for every kernel offset, the input positions it reads (padding never counts),
    by index arithmetic alone (no convolution, no unfold)."""
    n, cin, h, w = x.shape
    oh, ow = (h + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1, \
             (w + 2 * conv.padding[1] - conv.kernel_size[1]) // conv.stride[1] + 1
    per_group_out = conv.out_channels // conv.groups
    total = 0
    for ky in range(conv.kernel_size[0]):
        for kx in range(conv.kernel_size[1]):
            ys = torch.arange(oh) * conv.stride[0] + ky - conv.padding[0]
            xs = torch.arange(ow) * conv.stride[1] + kx - conv.padding[1]
            ys, xs = ys[(ys >= 0) & (ys < h)], xs[(xs >= 0) & (xs < w)]
            read = x[:, :, ys][:, :, :, xs]  # every input an output reads at this offset
            total += int((read != 0).sum()) * per_group_out
    return total


def test_nonzero_multiplications_brute_force_equal_the_counters():
    # A tiny network in eval (binary WTA) mode: one non-zero per group of ell at every
    # location, so a padding-free conv fed by a DHAM activation does exactly MACs / ell
    # multiplications with a non-zero input, which is the analytic count (eq. 6); the
    # convs fed by ReLU or by padded inputs do fewer. Brute force, with our own hooks.
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, bias=False), DHAMActivation(4, wta="binary"),
        nn.Conv2d(8, 8, 3, bias=False), DHAMActivation(groups=2, wta="binary"),
        nn.Conv2d(8, 4, 1, bias=False), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, bias=False))
    x = torch.randn(2, 3, 9, 9)
    brute: list[int] = []
    hooks = [m.register_forward_hook(lambda m, args, out: brute.append(
        brute_force_nonzero_products(m, args[0]))) for m in model if isinstance(m, nn.Conv2d)]
    model.eval()
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    model.train()
    per_image = [b / x.shape[0] for b in brute]
    # Dense MACs per image by hand: out channels x out pixels x (in channels x kernel area).
    macs = [8 * 7 * 7 * 3 * 9, 8 * 5 * 5 * 8 * 9, 4 * 5 * 5 * 8, 4 * 5 * 5 * 4 * 9]
    assert per_image[0] == macs[0]  # random input: every product has a non-zero input
    assert per_image[1] == macs[1] / 4 and per_image[2] == macs[2] / 4  # ell = 4 (and 8 / 2)
    assert per_image[3] < macs[3]  # ReLU zeros and the zero padding
    result = count_mults(model, x)
    assert [c.macs for c in result["layers"]] == macs
    assert [c.measured for c in result["layers"]] == pytest.approx(per_image, rel=1e-12)
    assert result["analytic"] == macs[0] + macs[1] / 4 + macs[2] / 4 + macs[3]
    assert result["measured"] == pytest.approx(sum(per_image), rel=1e-12)
