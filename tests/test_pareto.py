"""Per-stage ell (models, multiplication counts, validation), the Pareto helper, and the
accuracy–multiplications sweep end to end (docs/decisivenets.md, "Beyond the paper: the
accuracy–multiplications front")."""
import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from analysis.dham_pareto import front_table
from analysis.render import non_dominated
from conftest import run_script
from dham_core.activation import dham_modules
from dham_core.models import build_model
from dham_core.mults import analytic_mults, count_mults, layer_counts, main, model_mults
from dham_core.published import DECISIVENETS_TABLE1
from dham_core.train import DHAMConfig
from tracking import store
from trainables.dham_pareto import compose, validate


def meta(*args, **kwargs):
    with torch.device("meta"):
        return build_model(*args, **kwargs)


def resnet_macs(stage_ell, block="basic", width=64, blocks=(2, 2, 2, 2), size=32, cin=3):
    """Closed-form conv MACs per image of the CIFAR ResNet with the inside placement, by the
    per-layer formula (out channels x out pixels x in channels x kernel area), a conv fed by
    a DHAM activation divided by its stage's ell: a basic block's conv2, a bottleneck's conv2
    and conv3. Independent of the models and the counter."""
    total = cin * width * 9 * size * size  # stem
    cin = width
    for stage, (count, ell) in enumerate(zip(blocks, stage_ell)):
        planes = width * 2**stage
        out = planes * (4 if block == "bottleneck" else 1)
        for j in range(count):
            stride = 2 if (stage > 0 and j == 0) else 1
            size = (size - 1) // stride + 1  # 3x3 with padding 1 (and 1x1 shortcuts)
            short = cin * out * size * size if (stride != 1 or cin != out) else 0
            if block == "basic":
                total += cin * planes * 9 * size * size + planes * planes * 9 * size * size / ell
            else:
                before = size * stride  # the 1x1 conv1 runs before the stride
                total += cin * planes * before * before + planes * planes * 9 * size * size / ell
                total += planes * out * size * size / ell
            total += short
            cin = out
    return total


@pytest.mark.parametrize("ell", [1, 2, 8, 64])
def test_equal_stage_ell_is_the_single_ell_count(ell):
    assert analytic_mults(meta("resnet18", 10, stage_ell=(ell,) * 4)) == analytic_mults(meta("resnet18", 10, ell=ell))
    r50 = analytic_mults(meta("resnet50", 100, stage_ell=(ell,) * 4))
    assert r50 == next(r["r50_mults"] for r in DECISIVENETS_TABLE1 if r["ell"] == ell)  # Table 1


def test_stage_ell_one_everywhere_is_the_baseline():
    torch.manual_seed(0)
    ones = build_model("mobilenetv2", 10, width=16, blocks=(1,) * 7, stage_ell=(1,) * 7)
    assert dham_modules(ones) == []
    assert analytic_mults(meta("resnet50", 100, stage_ell=(1, 1, 1, 1))) == 1_297_809_408
    base = model_mults((3, 32, 32), arch="mobilenetv2", num_classes=10, width=16, blocks=(1,) * 7)
    assert analytic_mults(ones) == base


@pytest.mark.parametrize("block,arch,stage_ell", [("basic", "resnet18", (2, 4, 8, 16)),
                                                  ("basic", "resnet18", (64, 1, 2, 32)),
                                                  ("bottleneck", "resnet50", (4, 1, 16, 2))])
def test_mixed_stage_ell_against_the_per_layer_formula(block, arch, stage_ell):
    blocks = (2, 2, 2, 2) if arch == "resnet18" else (3, 4, 6, 3)
    expected = resnet_macs(stage_ell, block, blocks=blocks)
    assert analytic_mults(meta(arch, 10, stage_ell=stage_ell)) == pytest.approx(expected, rel=1e-15)
    # every reduced layer carries its own stage's ell (layer1 = stage 1, ...)
    layers = layer_counts(meta(arch, 10, stage_ell=stage_ell), torch.zeros(1, 3, 32, 32, device="meta"),
                          measure=False)
    for c in layers:
        if c.ell > 1:
            assert c.name.startswith("layer") and c.ell == stage_ell[int(c.name[5]) - 1], c


def test_tiny_net_measured_agrees_with_analytic():
    # Binary WTA writes exactly one 1 per group: a 1x1 conv fed by it (each bottleneck's
    # conv3) does exactly MACs / ell multiplications with a non-zero input; padded 3x3 convs
    # and ReLU-fed convs do at most their analytic count.
    torch.manual_seed(2)
    stage_ell = (2, 4, 1, 8)
    model = build_model("resnet50", 10, width=8, blocks=(1, 1, 1, 1), stage_ell=stage_ell, wta="binary")
    x = torch.randn(3, 3, 16, 16)
    result = count_mults(model, x)
    assert result["analytic"] == resnet_macs(stage_ell, "bottleneck", width=8, blocks=(1, 1, 1, 1), size=16)
    for c in result["layers"]:
        assert c.measured <= c.analytic + 1e-9, c
        if c.name.endswith("conv3") and c.ell > 1:
            assert c.measured == pytest.approx(c.macs / c.ell, rel=1e-12), c
    assert result["measured"] <= result["analytic"]


def test_cli_stage_ell(capsys):
    main(["--arch", "resnet50", "--num-classes", "100", "--stage-ell", "2", "2", "2", "2", "--batch-size", "1"])
    assert "analytic: 861,601,792" in capsys.readouterr().out  # Table 1, ell = 2


def tiny(**kwargs):
    return DHAMConfig(dataset="mnist_offline", width=8, blocks=(1, 1, 1, 1), **kwargs)


@pytest.mark.parametrize("kwargs,allowed", [
    ({"stage_ell": (2, 4, 8)}, "stage 1: 1, 2, 4, 8; stage 2: 1, 2, 4, 8, 16"),
    ({"stage_ell": (16, 4, 8, 16)}, "stage 1: 1, 2, 4, 8;"),
    ({"stage_ell": (2, 4, 8, 128)}, "stage 4: 1, 2, 4, 8, 16, 32, 64)"),
    ({"stage_ell": "2488"}, "4 group sizes for resnet18"),
    ({"stage_ell": (2, 2, 2, 2), "ell": 2}, "give one of ell, groups or stage_ell"),
    ({"stage_ell": (2, 2, 2, 2), "groups": 2}, "give one of ell, groups or stage_ell"),
])
def test_bad_stage_ell_names_the_field_and_allowed_values(kwargs, allowed):
    with pytest.raises(ValueError, match="stage_ell") as err:
        tiny(**kwargs).validate()
    assert allowed in str(err.value)


def test_mobilenet_has_seven_stages_and_stage_divisors():
    with pytest.raises(ValueError, match=r"stage_ell must be 7 group sizes for mobilenetv2"):
        build_model("mobilenetv2", 10, width=16, blocks=(1,) * 7, stage_ell=(2, 2, 2, 2))
    # width 16 (scale 1/4): stage 3's one block expands stage 2's 24 / 4 = 6 channels 6-fold: 36
    with pytest.raises(ValueError, match=r"stage 3: 1, 2, 3, 4, 6, 9, 12, 18, 36;"):
        build_model("mobilenetv2", 10, width=16, blocks=(1,) * 7, stage_ell=(2, 2, 8, 2, 2, 2, 2))


def test_compose_stage_keys():
    config = {"arch": "resnet18", "ell_stage2": 4, "ell_stage1": 2, "ell_stage3": 8, "ell_stage4": 16}
    assert compose(config) == {"arch": "resnet18", "stage_ell": (2, 4, 8, 16)}
    assert compose({"ell": 2}) == {"ell": 2}
    with pytest.raises(ValueError, match="ell_stage1, ell_stage2, ell_stage3, ell_stage4"):
        compose({"ell_stage1": 2, "ell_stage2": 2, "ell_stage3": 2})
    with pytest.raises(ValueError, match="ell_stage1, .*ell_stage7 for arch='mobilenetv2'"):
        compose({"arch": "mobilenetv2", **{f"ell_stage{i}": 1 for i in range(1, 5)}})
    with pytest.raises(ValueError, match="val_size must be an integer >= 1 for this search"):
        validate({"dataset": "mnist_offline", "width": 8, "blocks": [1, 1, 1, 1], "val_size": 0})
    with pytest.raises(ValueError, match="stage 2: 1, 2, 4, 8, 16;"):
        validate({"dataset": "mnist_offline", "width": 8, "blocks": [1, 1, 1, 1],
                  "ell_stage1": 2, "ell_stage2": 32, "ell_stage3": 2, "ell_stage4": 2})


def brute_force_front(a, b):
    """O(n^2): i is on the front unless some j has a >= and b <= with one strict."""
    out = []
    for i in range(len(a)):
        if math.isnan(a[i]) or math.isnan(b[i]):
            out.append(False)
            continue
        out.append(not any(a[j] >= a[i] and b[j] <= b[i] and (a[j] > a[i] or b[j] < b[i])
                           for j in range(len(a)) if not (math.isnan(a[j]) or math.isnan(b[j]))))
    return out


def test_non_dominated_against_brute_force():
    rng = np.random.default_rng(0)
    for n, values in itertools.product([1, 2, 5, 40, 200], [3, 10, 1000]):
        a = rng.integers(0, values, n).astype(float)  # few values: many ties and duplicates
        b = rng.integers(0, values, n).astype(float)
        if n > 2:
            a[0] = np.nan
        assert list(non_dominated(a, b)) == brute_force_front(a, b), (n, values)
    # duplicates of a front point are both on it; a point tied on one objective and worse on
    # the other is dominated
    assert list(non_dominated([1, 1, 1, 0.5], [2, 2, 3, 1])) == [True, True, False, True]
    assert list(non_dominated([], [])) == []


def test_front_table_keeps_finished_trials_with_both_objectives():
    rows = [("FINISHED", 0.9, 100.0, 2), ("FINISHED", 0.8, 50.0, 4), ("FINISHED", 0.85, 120.0, 1),
            ("FAILED", 0.99, 10.0, 8), ("FINISHED", float("nan"), 10.0, 8)]
    trials = pd.DataFrame([{"status": s, "val_acc": a, "mults": m, "ell_stage1": e, "ell_stage2": 1}
                           for s, a, m, e in rows])
    table = front_table(trials)
    assert list(table["stage_ell"]) == ["4-1", "2-1", "1-1"]  # by multiplications
    assert list(table["pareto"]) == [True, True, False]
    assert front_table(trials.iloc[3:]).empty and front_table(pd.DataFrame()).empty


def test_smoke_pareto_sweep_end_to_end(sweep_env):
    proc = run_script(["sweeps/dham_pareto.py", "--search", "tpe", "--preset", "smoke", "--num-samples", "4",
                       "--set", "epochs=1", "--set", "limit_train_batches=1"], sweep_env)
    assert "4 trials finished, 0 failed" in proc.stdout
    client = store.client(sweep_env["MLFLOW_TRACKING_URI"])
    parent = store.find_parent_run(client, "dham_pareto")
    assert parent.data.tags[store.TAG_TABLE] == "decisivenets.pareto"
    trials = store.trials_frame(client, parent)
    assert len(trials) == 4 and set(trials["status"]) == {"FINISHED"}
    for _, t in trials.iterrows():
        stage_ell = tuple(int(t[f"ell_stage{i}"]) for i in range(1, 5))
        # the reported count: the per-layer formula on 28x28 digits, and the trainer's own
        # count on the trained model (a real forward pass, not the meta-device build)
        expected = resnet_macs(stage_ell, width=8, blocks=(1, 1, 1, 1), size=28, cin=1)
        assert t["mults"] == pytest.approx(expected) == pytest.approx(t["mults_analytic"])
        base = resnet_macs((1,) * 4, width=8, blocks=(1, 1, 1, 1), size=28, cin=1)
        assert t["mults_ratio"] == pytest.approx(expected / base)
        assert t["mults_measured"] <= t["mults"]
        assert 0.1 <= t["t_init"] <= 10 and 100 <= t["t_final"] <= 10_000
    table = pd.read_parquet(next((Path(sweep_env["DHAM_RESULTS_DIR"]) / "tables").glob("*.parquet")))
    front = brute_force_front(list(trials["val_acc"]), list(trials["mults"]))
    assert int(table["pareto"].sum()) == sum(front) >= 1
    assert f"{sum(front)} of 4 finished trials are Pareto-optimal" in proc.stdout
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ") and "-" in ln.split("|")[1]]
    assert len(rows) == sum(front)
    names = {a.path.rsplit(".", 1)[-1] for a in client.list_artifacts(parent.info.run_id, "tables")}
    assert names == {"md", "parquet", "png"}
