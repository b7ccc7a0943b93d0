"""Proportion of wins (DecisiveNets Figs 2–4): counts against a brute-force loop over images,
locations and groups on activations recomputed by hand, the per-group and per-class sums, the
balance limits, and the smoke evaluation sweep end to end (Ray Tune → MLflow → report)."""
from __future__ import annotations

import math
import tempfile

import pytest
import torch

from dham_core.models import build_model
from dham_core.wins import WinsConfig, WinTables, balance, count_wins


def _tiny(ell=2, groups=None, seed=0):
    """A (1,1,1,1) ResNet-18 of width 4 with non-trivial BN statistics, in eval mode."""
    torch.manual_seed(seed)
    model = build_model("resnet18", 3, 1, width=4, blocks=(1, 1, 1, 1), ell=ell, groups=groups)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def _brute_force(model, images, labels, num_classes, group_size):
    """Recompute every block's pre-activation by hand from the model's parameters and count
    each group's winner (first maximal ReLU value) with plain Python loops."""
    counts, x = [], torch.relu(model.bn1(model.conv1(images)))  # stem: plain ReLU ("inside")
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        block = stage[0]
        z = block.bn1(block.conv1(x))
        ell = group_size(z.shape[1])
        wins = torch.zeros(num_classes, z.shape[1], dtype=torch.int64)
        out = torch.zeros_like(z)
        for n in range(z.shape[0]):
            for h in range(z.shape[2]):
                for w in range(z.shape[3]):
                    for g in range(z.shape[1] // ell):
                        vals = [max(0.0, float(z[n, g * ell + k, h, w])) for k in range(ell)]
                        best = 0
                        for k in range(1, ell):
                            if vals[k] > vals[best]:
                                best = k
                        wins[int(labels[n]), g * ell + best] += 1
                        out[n, g * ell + best, h, w] = vals[best]  # "keep" WTA
        counts.append(wins)
        x = torch.relu(block.bn2(block.conv2(out)) + block.shortcut(x))
    return counts


@pytest.mark.parametrize("ell,groups", [(2, None), (4, None), (1, 2)])
def test_counts_equal_brute_force(ell, groups):
    model = _tiny(ell, groups)
    gen = torch.Generator().manual_seed(1)
    images = torch.randn(5, 1, 6, 6, generator=gen)
    labels = torch.tensor([0, 2, 2, 1, 0])
    tables = count_wins(model, [(images[:3], labels[:3]), (images[3:], labels[3:])], 3)
    size = (lambda c: c // groups) if groups else (lambda c: ell)
    with torch.no_grad():
        expected = _brute_force(model, images, labels, 3, size)
    assert [l.name for l in tables.layers] == [f"layer{i}.0.act1" for i in range(1, 5)]
    assert [l.ell for l in tables.layers] == [size(4 * 2**i) for i in range(4)]
    for layer, wins in zip(tables.layers, expected):
        assert torch.equal(layer.wins, wins)
    assert tables.images.tolist() == [2, 1, 2]


def test_proportions_sum_to_one_per_group_and_classes_add_up():
    model = _tiny(ell=2)
    images = torch.randn(12, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    labels = torch.arange(12) % 3
    tables = count_wins(model, [(images, labels)], 3)
    for layer in tables.layers:
        p = tables.proportions(layer.index)
        assert torch.allclose(p.view(-1, layer.ell).sum(1), torch.ones(p.numel() // layer.ell,
                                                                       dtype=torch.float64))
        per_class = tables.proportions(layer.index, classes=[1])
        assert torch.allclose(per_class.view(-1, layer.ell).sum(1),
                              torch.ones(per_class.numel() // layer.ell, dtype=torch.float64))
        assert torch.equal(layer.wins.sum(0), sum(layer.wins[k] for k in range(3)))
        assert layer.wins.sum() == 12 * layer.locations * (layer.wins.shape[1] // layer.ell)
        assert 0 <= tables.dead_fraction(layer.index) <= 1
    again = WinTables.from_state(tables.state_dict())
    assert torch.equal(again.layers[2].wins, tables.layers[2].wins)
    with pytest.raises(KeyError, match="layer must be in 1..4"):
        tables.layer(5)


def test_dead_groups_count_for_the_first_channel():
    model = _tiny(ell=2)
    for m in model.modules():  # every pre-activation below 0: every group is dead
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data.zero_()
            m.bias.data.fill_(-1.0)
    tables = count_wins(model, [(torch.randn(2, 1, 4, 4), torch.tensor([0, 1]))], 2)
    first = tables.layers[0]
    assert tables.dead_fraction(1) == 1.0
    assert first.wins[:, 1::2].sum() == 0 and first.wins[:, 0::2].sum() > 0
    assert tables.balance(1) == 0.0


def test_balance_limits_and_formula():
    assert balance(torch.tensor([5, 5, 7, 7]), 2) == pytest.approx(1.0)
    assert balance(torch.tensor([9, 0, 0, 4]), 2) == 0.0
    assert balance(torch.tensor([3, 3, 3, 3]), 1) is None
    p = [0.25, 0.75]
    h = -sum(q * math.log(q) for q in p) / math.log(2)
    assert balance(torch.tensor([1, 3, 10, 10]), 2) == pytest.approx((h + 1.0) / 2)


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        WinsConfig(batch_size=0).validate()
    with pytest.raises(ValueError, match="dataset must be None or one of"):
        WinsConfig(dataset="imagenet").validate()
    assert WinsConfig(arch="resnet18").expect() == {"arch": "resnet18"}


def test_fig4_layers_follow_the_paper_or_the_models_depth():
    from analysis.wins import figure_layers

    assert figure_layers(49) == [1, 21, 48]
    assert figure_layers(32) == [1, 21, 32]  # ResNet-50, "inside" placement
    assert figure_layers(8) == [1, 4, 8]  # ResNet-18: 21/48 of 8 layers, rounded
    assert figure_layers(4) == [1, 2, 4]
    assert figure_layers(1) == [1]


def test_a_figure_without_its_ell_is_a_note_not_a_crash(tmp_path):
    from analysis.wins import draw_figure

    note, path = draw_figure("fig3", None, tmp_path / "fig3.png")
    assert path is None and "no ell = 8 model" in note and not (tmp_path / "fig3.png").exists()


def test_smoke_preset_end_to_end(trained_dham_sweep, sweep_env, tmp_path):
    """The ell smoke sweep's checkpoints → wins sweep (Ray Tune) → MLflow → report."""
    from conftest import run_script

    from dham_core.data import load_dataset
    from tracking import store
    from tracking.checkpoints import CHECKPOINT_ARTIFACT

    uri, source_parent = trained_dham_sweep
    env = {**sweep_env, "MLFLOW_TRACKING_URI": uri}
    proc = run_script(["sweeps/wins.py", "--preset", "smoke", "--set",
                       f"source_run={source_parent}"], env)
    assert "DecisiveNets Figs 2-4 - proportion of wins" in proc.stdout
    client = store.client(uri)
    parent = store.find_parent_run(client, "wins")
    children = [r for r in store.child_runs(client, parent) if r.info.status == "FINISHED"]
    sources = {r.info.run_id: r for r in store.child_runs(client, client.get_run(source_parent))}
    assert len(children) == len(sources) >= 2
    test_labels = load_dataset("mnist_offline", seed=0)[2].tensors[1]
    for run in children:
        metrics, source = run.data.metrics, sources[run.data.params["checkpoint_run"]]
        ell = int(source.data.params["ell"])
        assert metrics["source_ell"] == ell and metrics["images"] == len(test_labels)
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(run.info.run_id, CHECKPOINT_ARTIFACT, tmp)
            tables = WinTables.from_state(torch.load(path, weights_only=True)["wins"])
        assert torch.equal(tables.images, torch.bincount(test_labels, minlength=10))
        assert len(tables.layers) == (0 if ell == 1 else 4) == metrics["dham_layers"]
        for layer in tables.layers:
            per_group = layer.wins.sum(0).view(-1, layer.ell).sum(1)
            assert (per_group == len(test_labels) * layer.locations).all()
            key = f"balance.layer{layer.index:02d}"
            assert 0 <= metrics[key] <= 1 and metrics[key] == pytest.approx(tables.balance(layer.index))
    logged = {a.path for a in client.list_artifacts(parent.info.run_id, "tables")}
    assert any(p.endswith("-fig2.png") for p in logged) and any(p.endswith(".parquet") for p in logged)
