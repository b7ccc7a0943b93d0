"""DHAM activation and temperature schedule against DecisiveNets §4.1 (docs/decisivenets.md,
eqs. 2, 4 and 5), with naive references."""
import math

import pytest
import torch

from dham_core.activation import DHAMActivation, TemperatureSchedule, dham_modules



def reference_sigma_t(z: torch.Tensor, ell: int, t: float) -> torch.Tensor:
    """docs/decisivenets.md, eq. 2, literally: per group and location,
    softmax(t·relu(z)) / max(softmax) · relu(z),
    the softmax factor detached; explicit Python loops over every group of a small tensor."""
    flat = z.reshape(z.shape[0], z.shape[1], -1)  # (N, C, L)
    out = torch.zeros(flat.shape, dtype=z.dtype)
    for n in range(flat.shape[0]):
        for group in range(flat.shape[1] // ell):
            for loc in range(flat.shape[2]):
                v = torch.relu(flat[n, group * ell:(group + 1) * ell, loc])
                s = torch.softmax(t * v, dim=0)
                out[n, group * ell:(group + 1) * ell, loc] = (s / s.max()).detach() * v
    return out.reshape(z.shape)


def reference_wta(z: torch.Tensor, ell: int, binary: bool) -> torch.Tensor:
    """Hard WTA with Python loops: the first channel holding the group's max of relu(z) wins."""
    x = torch.relu(z)
    out = torch.zeros_like(z)
    flat_x = x.reshape(z.shape[0], z.shape[1], -1)
    flat_out = out.reshape(z.shape[0], z.shape[1], -1)
    for n in range(flat_x.shape[0]):
        for group in range(flat_x.shape[1] // ell):
            for loc in range(flat_x.shape[2]):
                values = [float(flat_x[n, group * ell + j, loc]) for j in range(ell)]
                best = max(values)
                winner = values.index(best)  # first index on ties
                flat_out[n, group * ell + winner, loc] = 1.0 if binary else best
    return flat_out.reshape(z.shape)


def random_input(shape, seed=0, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("ell,t", [(2, 0.7), (4, 3.0), (3, 10.0)])
def test_train_mode_matches_reference_forward_and_gradient(ell, t):
    z = random_input((2, 12, 3, 2), seed=ell).requires_grad_()
    weights = random_input((2, 12, 3, 2), seed=100 + ell)
    act = DHAMActivation(ell, temperature=t).train()
    out = act(z)
    (grad,) = torch.autograd.grad((out * weights).sum(), z)

    z_ref = z.detach().clone().requires_grad_()
    ref = reference_sigma_t(z_ref, ell, t)
    (grad_ref,) = torch.autograd.grad((ref * weights).sum(), z_ref)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-12, atol=1e-12)
    # The detach matters: the gradient is factor · relu'(z), not the full derivative of σ_t.
    z_full = z.detach().clone().requires_grad_()
    x = torch.relu(z_full).unflatten(1, (12 // ell, ell))
    s = torch.softmax(t * x, dim=2)
    full = (s / s.amax(2, keepdim=True) * x).flatten(1, 2)
    (grad_full,) = torch.autograd.grad((full * weights).sum(), z_full)
    assert not torch.allclose(grad, grad_full, atol=1e-6)


def test_train_mode_gradient_is_detached_factor_times_relu_derivative():
    z = random_input((3, 8), seed=1).requires_grad_()
    act = DHAMActivation(4, temperature=2.0)
    act(z).sum().backward()
    x = torch.relu(z.detach()).view(3, 2, 4)
    factor = torch.softmax(2.0 * x, dim=2) / torch.softmax(2.0 * x, dim=2).amax(2, keepdim=True)
    expected = (factor * (x > 0)).view(3, 8)
    torch.testing.assert_close(z.grad, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("shape", [(4, 6, 5, 5), (7, 9)])
def test_ell_one_is_exactly_relu(mode, shape):
    z = random_input(shape, seed=3, dtype=torch.float32).requires_grad_()
    act = DHAMActivation(1, temperature=5.0)
    act.train(mode == "train")
    out = act(z)
    out.backward(torch.ones_like(out))
    z2 = z.detach().clone().requires_grad_()
    ref = torch.relu(z2)
    ref.backward(torch.ones_like(ref))
    assert torch.equal(out, ref)
    assert torch.equal(z.grad, z2.grad)


def test_small_temperature_is_relu_and_large_temperature_is_wta():
    # Distinct values, gaps >= 0.01 inside every group, so exp(-1e4 * gap) vanishes.
    g = torch.Generator().manual_seed(4)
    values = (torch.randperm(4 * 8 * 3 * 3, generator=g).double() - 100) * 0.01
    z = values.view(4, 8, 3, 3)
    act = DHAMActivation(4)
    act.temperature = 1e-9
    torch.testing.assert_close(act.train()(z), torch.relu(z), rtol=1e-6, atol=1e-8)
    act.temperature = 1e4
    hot = act.train()(z)
    wta = act.eval()(z)
    torch.testing.assert_close(hot, wta, rtol=0, atol=1e-12)
    assert torch.equal(wta, reference_wta(z, 4, binary=False))


def tied_input():
    """Integer values in a small range: many exact ties, all-negative and all-zero groups."""
    g = torch.Generator().manual_seed(5)
    z = torch.randint(-2, 3, (3, 12, 4, 4), generator=g).float()
    z[0, 0:4] = 0.0  # an all-zero group
    z[1, 4:8] = -1.0  # an all-negative group
    z[2, 8:12] = 2.0  # a group tied at its (positive) max
    return z


@pytest.mark.parametrize("wta", ["keep", "binary"])
def test_eval_exactly_one_winner_per_group_and_location_with_ties(wta):
    z = tied_input()
    act = DHAMActivation(4, wta=wta).eval()
    mask = act.winners(z)
    per_group = mask.view(3, 3, 4, 4, 4).sum(2)
    assert torch.equal(per_group, torch.ones_like(per_group))
    out = act(z)
    expected = reference_wta(z, 4, binary=(wta == "binary"))
    assert torch.equal(out, expected)
    if wta == "binary":
        assert torch.equal(out, mask)
        assert torch.equal(out[0, 0:4].sum(0), torch.ones(4, 4))  # dead group: one 1 at channel 0
        assert torch.equal(out[0, 0], torch.ones(4, 4))
    else:
        assert torch.equal(out, mask * torch.relu(z))
        assert torch.equal(out[0, 0:4], torch.zeros(4, 4, 4))  # dead group outputs zeros
        assert torch.equal(out[1, 4:8], torch.zeros(4, 4, 4))
        assert torch.equal(out[2, 8], torch.full((4, 4), 2.0))  # first of the tied maxima
        assert torch.equal(out[2, 9:12], torch.zeros(3, 4, 4))
    nonzero = (out != 0).view(3, 3, 4, 4, 4).sum(2)
    assert int(nonzero.max()) <= 1


def test_both_channel_axis_layouts_and_channels_last():
    z4 = random_input((2, 8, 3, 5), seed=6, dtype=torch.float32)
    z2 = random_input((5, 8), seed=7, dtype=torch.float32)
    for mode in (True, False):
        act = DHAMActivation(2, temperature=1.5).train(mode)
        # (N, F): groups along the last (= channel) axis.
        ref2 = reference_sigma_t(z2.double(), 2, 1.5) if mode else reference_wta(z2, 2, False)
        torch.testing.assert_close(act(z2).double(), ref2.double(), rtol=1e-6, atol=1e-6)
        # (N, C, H, W) in channels_last gives the same values and keeps its layout.
        cl = z4.contiguous(memory_format=torch.channels_last)
        out_cl = act(cl)
        torch.testing.assert_close(out_cl, act(z4), rtol=0, atol=0)
        assert out_cl.is_contiguous(memory_format=torch.channels_last)


def test_groups_equals_ell_of_c():
    z = random_input((2, 16, 3, 3), seed=8)
    for mode in (True, False):
        by_groups = DHAMActivation(groups=4, temperature=2.0).train(mode)
        by_ell = DHAMActivation(4, temperature=2.0).train(mode)
        assert torch.equal(by_groups(z), by_ell(z))
    assert DHAMActivation(groups=4, num_channels=16).ell == 4
    # c groups give ell = C / c in each layer: 32 channels with groups=4 -> ell 8.
    z32 = random_input((2, 32), seed=9)
    assert torch.equal(DHAMActivation(groups=4).eval()(z32), DHAMActivation(8).eval()(z32))


def test_temperature_schedule_endpoints_monotonic_and_state():
    schedule = TemperatureSchedule(0.1, 1000.0, 50)
    assert schedule.value == pytest.approx(0.1, rel=1e-12)
    values = [schedule.value]
    for _ in range(50):
        values.append(schedule.step())
    assert values[-1] == pytest.approx(1000.0, rel=1e-12)
    assert all(b > a for a, b in zip(values, values[1:]))
    # exponential: constant ratio between steps, (t_final / t_init) ** (1 / total_steps)
    ratios = [b / a for a, b in zip(values, values[1:])]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-9)
    assert ratios[0] == pytest.approx(10000.0 ** (1 / 50), rel=1e-12)
    assert values[25] == pytest.approx(math.sqrt(0.1 * 1000.0), rel=1e-12)
    assert schedule.step() == 1000.0  # stays at t_final afterwards
    restored = TemperatureSchedule(1.0, 1.0, 1)
    schedule.step_count = 17
    restored.load_state_dict(schedule.state_dict())
    assert restored.value == schedule.value and restored.total_steps == 50


def test_schedule_applies_to_every_dham_module():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), DHAMActivation(2), torch.nn.ReLU(), DHAMActivation(4))
    schedule = TemperatureSchedule(2.0, 8.0, 2)
    schedule.step()
    assert schedule.apply(model) == 2
    assert [m.temperature for m in dham_modules(model)] == [pytest.approx(4.0), pytest.approx(4.0)]


@pytest.mark.parametrize(
    "kwargs,names",
    [
        ({"ell": 0}, "ell"),
        ({"ell": -2}, "ell"),
        ({"ell": 1.5}, "ell"),
        ({"groups": 0}, "groups"),
        ({"ell": 2, "groups": 2}, "groups"),
        ({"ell": 2, "temperature": 0.0}, "temperature"),
        ({"ell": 2, "temperature": -1.0}, "temperature"),
        ({"ell": 2, "wta": "soft"}, "wta"),
        ({"ell": 3, "num_channels": 8}, "ell"),
        ({"groups": 3, "num_channels": 8}, "groups"),
    ],
)
def test_bad_arguments_raise(kwargs, names):
    with pytest.raises(ValueError, match=names):
        DHAMActivation(**kwargs)


def test_bad_arguments_messages_name_allowed_values():
    with pytest.raises(ValueError, match=r"wta must be one of \('keep', 'binary'\)"):
        DHAMActivation(2, wta="max")
    with pytest.raises(ValueError, match=r"ell must divide the number of channels \(got channels=10, ell=4\)"):
        DHAMActivation(4)(torch.zeros(2, 10))  # channels unknown at construction: raised at forward
    with pytest.raises(ValueError, match=r"groups must divide the number of channels \(got channels=10, groups=4\)"):
        DHAMActivation(groups=4)(torch.zeros(2, 10, 3, 3))
    act = DHAMActivation(2)
    with pytest.raises(ValueError, match="temperature must be"):
        act.temperature = 0


@pytest.mark.parametrize(
    "args,name",
    [((0.0, 10.0, 5), "t_init"), ((-1.0, 10.0, 5), "t_init"), ((10.0, 1.0, 5), "t_final"), ((1.0, 10.0, 0), "total_steps")],
)
def test_schedule_bad_arguments(args, name):
    with pytest.raises(ValueError, match=name):
        TemperatureSchedule(*args)


def test_numpy_integers_are_accepted():
    import numpy as np

    act = DHAMActivation(np.int64(2), num_channels=np.int64(8))
    assert act.ell == 2 and isinstance(act.ell, int)
    assert TemperatureSchedule(1, 10, np.int64(4)).total_steps == 4
