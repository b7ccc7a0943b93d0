"""Corrupted-segment experiment (dham_core.resonator_corruption; thesis Tables 4.3, 4.6):
the corruption against counting, nearest-target decoding against a brute-force loop, decoding
of correct targets, the decay, bad input, and the smoke sweep end to end."""
import pytest
import torch

from conftest import run_script
from dham_core import sbc
from dham_core.resonator_corruption import (
    CorruptionConfig, corrupt_segments, corrupted_segment_rows, nearest_target)
from tracking import store


def test_corrupt_segments_changes_exactly_count_segments():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 32, (200, 40), generator=gen)
    for count in (0, 1, 12, 40):
        y = corrupt_segments(x, count, 32, gen)
        assert ((y != x).sum(dim=1) == count).all()  # a moved segment never stays in place
        assert y.min() >= 0 and y.max() < 32
    other = torch.randint(0, 32, (200, 40), generator=gen)
    y = corrupt_segments(x, 20, 32, gen, other)
    assert ((y == x) | (y == other)).all() and ((y != x).sum(dim=1) <= 20).all()
    shifted = (x + 5) % 32  # differs from x everywhere: exactly the 20 chosen segments change
    y = corrupt_segments(x, 20, 32, gen, shifted)
    assert ((y != x).sum(dim=1) == 20).all() and (y[y != x] == shifted[y != x]).all()


def test_nearest_target_against_a_loop():
    gen = torch.Generator().manual_seed(1)
    targets = torch.randint(0, 8, (30, 16), generator=gen)
    x = torch.randint(0, 8, (50, 16), generator=gen)
    got = nearest_target(x, targets, gen)
    for b in range(50):
        counts = [sum(int(x[b, j] == targets[c, j]) for j in range(16)) for c in range(30)]
        assert counts[int(got[b])] == max(counts)


@pytest.mark.parametrize("k, V", [(40, 2), (64, 2), (64, 3)])
def test_correct_targets_decode_perfectly(k, V):
    row = corrupted_segment_rows(CorruptionConfig(D=1280, patience=2, k=k, V=V, fractions=[0.0], num_problems=64,
                                                  seed=2))[0]
    assert row["resonator_accuracy"] == 1.0 and row["overlap_accuracy"] == 1.0
    assert row["unused_slot_rate"] == 0.0 and row["corrupted_segments"] == 0
    assert row["M"] == {2: 32, 3: 10}[V] and row["L"] == 1280 // k


def test_accuracy_decays_with_corruption():
    rows = corrupted_segment_rows(CorruptionConfig(D=1280, patience=2, k=40, V=3, fractions=[0.0, 0.5],
                                                   corruption="class", num_problems=64, seed=3))
    assert [r["corrupted_segments"] for r in rows] == [0, 20]
    # half the segments from another class: the nearest target is a coin flip between the two
    # (2 of 1000 classes), and the resonator falls well below its 0% accuracy
    assert 0.25 <= rows[1]["overlap_accuracy"] <= 0.75
    assert rows[1]["resonator_accuracy"] < rows[0]["resonator_accuracy"] - 0.2
    far = corrupted_segment_rows(CorruptionConfig(D=1280, patience=2, k=40, V=2, fractions=[0.95], max_it=200,
                                                  num_problems=32, seed=4))[0]
    assert far["resonator_accuracy"] <= 0.1 and far["overlap_accuracy"] <= 0.1


@pytest.mark.parametrize("field, value, match", [
    ("k", 48, "k must be a divisor of D = 1280"),
    ("fractions", [0.2, 1.5], r"fractions must be a non-empty list of numbers in \[0, 1\]"),
    ("fractions", [], "fractions must be"),
    ("corruption", "flip", r"corruption must be one of \['random', 'class'\]"),
    ("a", 11, r"a must satisfy 1 <= a <= M = 10"),
    ("V", 1, "V must be an integer >= 2"),
    ("device", "tpu", "device must be"),
])
def test_bad_config_is_refused(field, value, match):
    good = {"D": 1280, "k": 40, "V": 3}
    with pytest.raises(ValueError, match=match):
        CorruptionConfig(**{**good, field: value}).validate()
    with pytest.raises(ValueError, match="k must be given"):
        CorruptionConfig(D=1280, V=2).validate()


def test_smoke_sweep_end_to_end(sweep_env):
    proc = run_script(["sweeps/resonator_segments.py", "--preset", "smoke"], sweep_env)
    assert "2 trials finished, 0 failed" in proc.stdout
    assert "Corrupted segments: resonator vs nearest target" in proc.stdout
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith(("| random |", "| class |"))]
    assert len(rows) == 2 * 3  # 2 corruptions x 3 fractions
    at_zero = [ln for ln in rows if "| 0.00 |" in ln]
    assert len(at_zero) == 2 and all(ln.count("1.000") >= 2 for ln in at_zero)
    client = store.client(sweep_env["MLFLOW_TRACKING_URI"])
    parent = store.find_parent_run(client, "resonator_segments")
    names = {a.path.rsplit(".", 1)[-1] for a in client.list_artifacts(parent.info.run_id, "tables")}
    assert names == {"md", "parquet", "png"}
