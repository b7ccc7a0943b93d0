"""The resonator classifier head (thesis ch. 4): decoding, parameter count, losses against their
formulas, overlap logits against a loop, bad inputs, the trainer hooks, and the smoke sweep end
to end through Ray Tune, MLflow and the Tables 4.x report."""
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import run_script
from dham_core import published, sbc
from dham_core.resonator_head import ResonatorHead
from dham_core.head_train import HeadConfig, HeadTrainer, head_params
from dham_core.resonator_labels import LabelCode
from dham_core.train import DHAMConfig, Trainer
from tracking import store


def _one_hot_segments(targets: torch.Tensor, L: int) -> torch.Tensor:
    """Dense z with a 1 at each target offset, built by a loop (not sbc.to_dense)."""
    B, k = targets.shape
    z = torch.zeros(B, k * L)
    for b in range(B):
        for j in range(k):
            z[b, j * L + int(targets[b, j])] = 1.0
    return z


@pytest.mark.parametrize("V, M, k", [(2, 32, 40), (3, 10, 64)])
def test_perfect_segment_outputs_decode_every_label(V, M, k):
    """Thesis §4.4.6/Table 4.3: at D = 1280 the V = 2, M = 32 resonator decodes every correct
    input at k = 40 and the V = 3, M = 10 one at k = 64: 100% on all three accuracies."""
    head = ResonatorHead(1280, (7, 7), LabelCode(1000, V, M), 1280, k)
    labels = torch.arange(1000)
    z = _one_hot_segments(head.targets[labels], 1280 // k)
    pred = head.decode(z, torch.Generator().manual_seed(0))
    assert torch.equal(pred.resonator, labels)
    assert torch.equal(pred.overlap, labels)
    assert torch.equal(head.segment_correct(pred.offsets, labels), torch.full((1000,), k))


def test_unused_slot_decodes_to_an_error():
    """V = 2, M = 32 has 24 unused slots: a perfect target of slot (31, 31) = 1023 decodes to
    those factors, which is no label (-1), so it can never count as correct."""
    code = LabelCode(1000, 2, 32)
    head = ResonatorHead(1280, (7, 7), code, 1280, 40)
    x = sbc.bind(head.codebooks[0, 31], head.codebooks[1, 31], head.L).unsqueeze(0)
    pred = head.decode(_one_hot_segments(x, head.L), torch.Generator().manual_seed(0))
    assert pred.resonator.tolist() == [-1]


def test_parameter_count_of_the_thesis_best_head():
    """Thesis §4.4.7: V = 2, k = 40, weighted pooling on MobileNet-V2's 1280×7×7 map:
    49 + 40·64 = 2,609 (pooling weights + codebook offsets; no map since C = D)."""
    assert ResonatorHead(1280, (7, 7), LabelCode(1000, 2, 32), 1280, 40).parameter_count() == 2609
    cfg = HeadConfig(dataset="imagenet", arch="mobilenetv2_imagenet", factors=2, size=32, k=40)
    assert head_params(cfg.validate(check_data=False)) == 2609  # torchvision's map, measured
    avg = ResonatorHead(1280, (7, 7), LabelCode(1000, 3, 10), 1280, 64, pooling="average")
    assert avg.parameter_count() == 3 * 10 * 64
    mapped = ResonatorHead(160, (4, 4), LabelCode(10, 2, 4), 64, 16, a=2)
    assert mapped.parameter_count() == 16 + 2 * 4 * 16 + 160 * 64
    trainable = sum(p.numel() for p in mapped.parameters())
    assert trainable == 16 + 160 * 64 + 1  # pooling, map, and the cosine scale s


def test_weighted_pooling_is_a_weighted_sum_over_positions():
    head = ResonatorHead(6, (2, 3), LabelCode(4, 2, 2), 6, 3, loss="cross_entropy", a=2)
    with torch.no_grad():
        head.pool_weight.copy_(torch.arange(1.0, 7.0))
    fmap = torch.randn(2, 6, 2, 3)
    expected = torch.stack([sum(fmap[b, :, p // 3, p % 3] * (p + 1) for p in range(6)) for b in range(2)])
    torch.testing.assert_close(head(fmap), expected)
    torch.testing.assert_close(ResonatorHead(6, (2, 3), LabelCode(4, 2, 2), 6, 3, pooling="average", a=2)(fmap),
                               fmap.mean(dim=(2, 3)))


def test_segment_cosine_loss_and_its_scale_against_the_formula():
    """Thesis eq. 2.9 per segment: p(l) ∝ exp(s·z_l/‖z_j‖); loss = mean of −log p(target)
    over images and segments; dL/ds = mean of (Σ_l p_l c_l − c_target)."""
    torch.manual_seed(0)
    head = ResonatorHead(12, (1, 1), LabelCode(6, 2, 3), 12, 4, loss="cosine", scale_init=3.0, a=2)
    z = torch.randn(5, 12)
    labels = torch.tensor([0, 1, 2, 3, 5])
    loss = head.loss(z, labels)
    loss.backward()
    loss = loss.detach()
    L, s, total, grad = 3, 3.0, 0.0, 0.0
    for b in range(5):
        for j in range(4):
            seg = [float(z[b, j * L + l]) for l in range(L)]
            norm = math.sqrt(sum(v * v for v in seg))
            cos = [v / norm for v in seg]
            t = int(head.targets[labels[b], j])
            denom = sum(math.exp(s * c) for c in cos)
            total += -math.log(math.exp(s * cos[t]) / denom)
            grad += sum(math.exp(s * c) / denom * c for c in cos) - cos[t]
    assert float(loss) == pytest.approx(total / 20, rel=1e-5)
    assert float(head.scale.grad) == pytest.approx(grad / 20, rel=1e-4)


def test_segment_cross_entropy_is_k_independent_classifications():
    torch.manual_seed(1)
    head = ResonatorHead(12, (1, 1), LabelCode(6, 2, 3), 12, 4, loss="cross_entropy", a=2)
    z, labels = torch.randn(3, 12), torch.tensor([4, 0, 2])
    per_segment = [F.cross_entropy(z[:, j * 3:(j + 1) * 3], head.targets[labels, j]) for j in range(4)]
    assert float(head.loss(z, labels)) == pytest.approx(float(sum(per_segment) / 4), rel=1e-6)


@pytest.mark.parametrize("loss", ["cross_entropy", "cosine"])
def test_overlap_logits_against_a_brute_force_loop(loss):
    torch.manual_seed(2)
    code = LabelCode(7, 2, 3)
    head = ResonatorHead(20, (1, 1), code, 20, 5, loss=loss, training="overlap", scale_init=2.5,
                         a=2)
    z = torch.randn(3, 20)
    L = 4
    got = head.overlap_logits(z)
    for b in range(3):
        norm = math.sqrt(sum(float(v) ** 2 for v in z[b]))
        for c in range(code.classes):
            dot = sum(float(z[b, j * L + int(head.targets[c, j])]) for j in range(5))
            want = dot if loss == "cross_entropy" else 2.5 * dot / (math.sqrt(5) * norm)
            assert float(got[b, c]) == pytest.approx(want, rel=1e-5, abs=1e-6)
    labels = torch.tensor([0, 6, 3])
    assert float(head.loss(z, labels)) == pytest.approx(float(F.cross_entropy(got, labels)), rel=1e-6)


# ---- bad input ------------------------------------------------------------------------------

SMOKE = dict(dataset="mnist_offline", arch="mobilenetv2", width=8, blocks=(1,) * 7, D=160, k=32,
             factors=2, size=4, a=3, epochs=1, batch_size=64, limit_train_batches=1, max_it=20,
             device="cpu", num_threads=1)


@pytest.mark.parametrize("changes, message", [
    ({"k": 48}, r"k must divide D \(got D=160, k=48\)"),
    ({"size": 3}, r"classes must be <= size\*\*factors .* \(got classes=10\)"),
    ({"pooling": "max"}, r"pooling must be one of \('average', 'weighted'\)"),
    ({"loss": "arcface"}, r"loss must be one of \('cross_entropy', 'cosine'\)"),
    ({"training": "joint"}, r"training must be one of \('segment', 'overlap'\)"),
    ({"a": 5}, r"a must satisfy 1 <= a <= M = 4"),
    ({"factors": 1}, r"factors must be an integer >= 2"),
    ({"schedule": "linear"}, r"schedule must be one of \('step', 'cosine'\)"),
    ({"momentum": 0.0}, r"nesterov must be False when momentum=0.0"),
    ({"arch": "mobilenetv2_imagenet"}, r'arch must be "mobilenetv2_imagenet" exactly when dataset="imagenet"'),
])
def test_bad_head_config_names_the_field(changes, message):
    with pytest.raises(ValueError, match=message):
        HeadConfig(**{**SMOKE, **changes}).validate()


def test_imagenet_root_missing_or_in_the_wrong_layout_is_refused(tmp_path):
    cfg = dict(dataset="imagenet", arch="mobilenetv2_imagenet")
    with pytest.raises(ValueError, match=r"data_root must be .* \(got data_root=None\)"):
        HeadConfig(**cfg).validate()
    with pytest.raises(ValueError, match="data_root must be an existing ImageNet folder"):
        HeadConfig(**cfg, data_root=str(tmp_path / "nope")).validate()
    (tmp_path / "train").mkdir()
    (tmp_path / "meta.bin").write_bytes(b"")
    with pytest.raises(ValueError, match=r"lacks val split \(val/ or ILSVRC2012_img_val.tar\)"):
        HeadConfig(**cfg, data_root=str(tmp_path)).validate()
    (tmp_path / "ILSVRC2012_img_val.tar").write_bytes(b"")
    HeadConfig(**cfg, data_root=str(tmp_path)).validate()  # the layout torchvision reads


def test_checkpoint_of_another_head_is_refused():
    trainer = HeadTrainer(HeadConfig(**SMOKE))
    state = trainer.state_dict()
    other = HeadTrainer(HeadConfig(**{**SMOKE, "k": 16}))
    with pytest.raises(ValueError, match=r"checkpoint has k=32 but the head config has k=16"):
        other.load_state_dict(state)
    trainer.load_state_dict(state)  # its own checkpoint loads
    assert torch.equal(trainer.head.codebooks, state["model"]["head.codebooks"])


# ---- trainer hooks and recipe -----------------------------------------------------------------

def _lr_trace(cfg) -> list[float]:
    trainer = Trainer(cfg)
    trace = []
    for _ in range(trainer.total_steps):
        trace.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    return trace


TINY = dict(dataset="mnist_offline", arch="resnet18", width=4, blocks=(1, 1, 1, 1), epochs=3,
            limit_train_batches=4, lr=0.1, device="cpu")


def test_step_schedule_is_the_decisivenets_recipe_unchanged():
    """Default = the DecisiveNets recipe: ÷10 at round(T/3) and round(2T/3), no Nesterov."""
    cfg = DHAMConfig(**TINY)
    assert (cfg.schedule, cfg.nesterov) == ("step", False)
    T = 12
    want = [0.1 * 0.1 ** ((t >= round(T / 3)) + (t >= round(2 * T / 3))) for t in range(T)]
    assert _lr_trace(cfg) == pytest.approx(want, rel=1e-12)
    assert Trainer(cfg).optimizer.param_groups[0]["nesterov"] is False


def test_cosine_schedule_and_nesterov():
    cfg = DHAMConfig(**TINY, schedule="cosine", nesterov=True)
    T = 12
    want = [0.05 * (1 + math.cos(math.pi * t / T)) for t in range(T)]
    assert _lr_trace(cfg) == pytest.approx(want, rel=1e-9)
    assert Trainer(cfg).optimizer.param_groups[0]["nesterov"] is True


def test_head_config_defaults_are_the_thesis_recipe():
    cfg = HeadConfig()
    assert (cfg.lr, cfg.schedule, cfg.nesterov, cfg.batch_size, cfg.weight_decay, cfg.D) == (
        0.04, "cosine", True, 256, 4e-5, 1280)


def test_head_trainer_one_epoch_reports_three_accuracies():
    metrics = HeadTrainer(HeadConfig(**SMOKE)).fit()
    for key in ("resonator_acc", "overlap_acc", "segment_acc"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["test_acc"] == metrics["resonator_acc"]
    assert metrics["head_params"] == 4 * 4 + 2 * 4 * 32  # 4×4 map at 28×28 input, C = D = 160


# ---- end to end -----------------------------------------------------------------------------

def test_smoke_preset_through_tune_mlflow_and_the_tables_report(sweep_env):
    proc = run_script(["sweeps/resonator_head.py", "--preset", "smoke", "--set", "epochs=1",
                       "--set", "limit_train_batches=2", "--set", "max_it=20",
                       "--set", "loss=cosine"], sweep_env)
    assert "2 trials finished, 0 failed" in proc.stdout, proc.stdout[-3000:]
    client = store.client(sweep_env["MLFLOW_TRACKING_URI"])
    parent = store.find_parent_run(client, "resonator_head")
    assert parent.data.tags[store.TAG_TABLE] == "resonator.head"
    trials = store.trials_frame(client, parent)
    assert sorted(trials["training"]) == ["overlap", "segment"]
    assert (trials["head_params"] == 272).all()
    for tid, spec in published.RESONATOR_HEAD_TABLES.items():
        assert f"### Thesis Table {tid} - {spec['title']}" in proc.stdout
    assert "| k=40 | — | — | — | 60.6 | 69.7 | 70.1 |" in proc.stdout  # Table 4.3: no ImageNet run
    assert "| training=overlap | — | — | — | <5.0 | 70.4 | — |" in proc.stdout
    assert "identity classifier 70.8%" in proc.stdout and "1,280,000" in proc.stdout
    ours = [ln for ln in proc.stdout.splitlines() if ln.startswith("| mnist_offline |")]
    assert len(ours) == 2 and all("(n=" not in ln for ln in ours)
    files = {a.path.rsplit(".", 1)[-1] for a in client.list_artifacts(parent.info.run_id, "tables")}
    assert files == {"md", "parquet", "png"}
