"""Smoke tests that run the real benchmark scripts (tiny sizes): each must run, and the figures
it prints side by side must agree with each other — a printed ratio is the two printed times
(or rates) divided, up to the rounding of the printed digits. The figures themselves are
measured with the full runs (README); no timing is asserted here."""
import re

import pytest

from conftest import run_script

NUM = r"(\d[\d,]*(?:\.\d+)?)"


def value(text: str) -> tuple[float, float]:
    """A printed number and its rounding error (half a unit of its last printed digit)."""
    digits = len(text.split(".")[1]) if "." in text else 0
    return float(text.replace(",", "")), 0.5 * 10.0 ** -digits


def assert_ratio(ratio: str, numerator: str, denominator: str) -> None:
    """``ratio`` as printed equals ``numerator / denominator`` as printed, within rounding."""
    (q, eq), (a, ea), (b, eb) = value(ratio), value(numerator), value(denominator)
    assert b > 0 and a > 0, (numerator, denominator)
    tolerance = eq + (a / b) * (ea / a + eb / b) * 1.01
    assert abs(q - a / b) <= tolerance, (ratio, numerator, denominator)


def matches(pattern: str, text: str) -> list[tuple]:
    found = re.findall(pattern, text)
    assert found, (pattern, text[-3000:])
    return found


def check_activation(out: str) -> None:
    assert re.search(r"ResNet-18 .* training step", out), out[-3000:]
    rows = matches(rf"  (relu|dham ell=\d+) +min +{NUM} ms +median +{NUM} ms +ratio +{NUM} "
                   rf"\(median +{NUM}\)", out)
    base = None
    for name, best, median, ratio, ratio_median in rows:
        if name == "relu":  # every table starts with its ReLU row, the ratios' denominator
            base = (best, median)
            assert value(ratio)[0] == 1.0
            continue
        assert_ratio(ratio, best, base[0])
        assert_ratio(ratio_median, median, base[1])
    assert len(rows) > len([r for r in rows if r[0] == "relu"])


def check_trial_overhead(out: str) -> None:
    (n, plain), = matches(rf"plain loop, (\d+) evaluations +{NUM} ", out)
    (fit,) = matches(rf"runner, Tuner\.fit \(Tune\+Optuna\+MLflow\) +{NUM} ", out)
    (overhead, low, high), = matches(
        rf"overhead per trial: {NUM} s \(median of 3; min {NUM}, max {NUM}\)", out)
    (o, eo), (f, ef), (p, ep) = value(overhead), value(fit), value(plain)
    assert abs(o - (f - p) / int(n)) <= eo + (ef + ep) / int(n), (overhead, fit, plain, n)
    assert value(low)[0] - eo <= o + p / int(n) <= value(high)[0] + eo  # the median total
    # the breakdown (ms per trial): every driver row, the rest of Tune's loop, the total
    table = dict(re.findall(r"(?m)^(\S.*?) {2,}(-?\d+\.\d+) +-?\d+\.\d+ +-?\d+\.\d+$", out))
    driver = ["Optuna ask", "Optuna tell", "MLflow callback", "Tune result loggers",
              "Tune experiment-state save", "Tune actor start", "waiting for Ray events",
              "rest of Tune's loop"]
    rows = {name: float(v) for key, v in table.items() for name in driver if key.startswith(name)}
    assert set(rows) == set(driver), table
    (median_total,) = [float(v) for key, v in table.items() if key.strip() == "total"]
    assert median_total > 0
    assert all(v >= 0 for k, v in rows.items() if k != "rest of Tune's loop")
    assert len(matches(r"load average (?:before|after): ", out)) == 2


def check_hopfield(out: str) -> None:
    for vec, naive, ratio in matches(
            rf"vectorised {NUM} ms, naive per-class loop {NUM} ms -> naive/vectorised = {NUM}x", out):
        assert_ratio(ratio, naive, vec)
    steps = matches(rf", (\d+) CPU threads: DAM {NUM} ms, MLP {NUM} ms -> DAM/MLP = {NUM}x", out)
    assert [int(t) for t, *_ in steps][0] == 1 and len(steps) in (1, 2)  # 1 thread, all cores
    for _, dam, mlp, ratio in steps:
        assert_ratio(ratio, dam, mlp)
    assert len(matches(r"load average (?:before|after): ", out)) == 2
    (packed, single, ratio), = matches(
        rf"packed {NUM}/s, one cell per call {NUM}/s -> packed/single = {NUM}x", out)
    assert_ratio(ratio, packed, single)  # rates: packed/single time ratio inverted


def check_packing(out: str) -> None:
    rows = matches(rf"(one trial per cell|packed \(one trial per seed\)) +(\d+) +(\d+) +{NUM} "
                   rf"+{NUM} +{NUM}\n", out)
    assert [(label, int(trials), int(cells)) for label, trials, cells, *_ in rows] == [
        ("one trial per cell", 50, 50), ("packed (one trial per seed)", 2, 50)]
    for *_, solve, wall, per_cell_s in rows:
        assert 0 < value(solve)[0] <= value(wall)[0]  # the cells' own time is part of the wall
        assert_ratio(per_cell_s, wall, "50")
    (ratio, per_cell, packed), = matches(
        rf"packed is {NUM}x faster \({NUM} s / {NUM} s; target >= 10x\)", out)
    assert (per_cell, packed) == (rows[0][4], rows[1][4])  # the table's wall times
    assert_ratio(ratio, per_cell, packed)
    assert len(matches(rf"load average (?:before|after): {NUM} {NUM} {NUM}", out)) == 2


def check_resonator(out: str) -> None:
    rows = matches(rf"\(a\) ours +{NUM} ms/it +\(b\) thesis +{NUM} ms/it +\(c\) dense +{NUM} ms/it\n"
                   rf" +ratio \(c\)/\(a\) +{NUM}x \(target >= 10x\) +ratio \(b\)/\(a\) +{NUM}x +"
                   r"\(identical next states: (True|False)\)", out)
    assert len(rows) == 2  # weights "overlap" and "noisy"
    for ours, thesis, dense, c_over_a, b_over_a, same in rows:
        assert_ratio(c_over_a, dense, ours)
        assert_ratio(b_over_a, thesis, ours)
        assert same == "True"  # three implementations of one network
    stages = matches(rf"(unbind|overlap|top-a|scatter|thinning) {NUM} ms \((\d+)%\)", out)
    assert [s[0] for s in stages] == ["unbind", "overlap", "top-a", "scatter", "thinning"]
    (total, step), = matches(rf"stages {NUM} ms, whole step {NUM} ms", out)
    parts = sum(value(ms)[0] for _, ms, _ in stages)
    assert abs(parts - value(total)[0]) <= 0.005 * len(stages) + 0.005, (parts, total)
    assert 0 < value(total)[0] and 0 < value(step)[0]
    assert len(matches(rf"load average (?:before|after): {NUM} {NUM} {NUM}", out)) == 2
    assert "same result up to sign(0): True" in out  # [2]: our dense step = torchhd's
    assert "time to solution" in out  # [3]


BENCHMARKS = [
    (["benchmarks/activation.py", "--quick", "--no-overhead"], check_activation),
    (["benchmarks/trial_overhead.py", "--quick"], check_trial_overhead),
    (["benchmarks/hopfield.py", "--quick"], check_hopfield),
    (["benchmarks/packing.py", "--quick"], check_packing),
    (["benchmarks/resonator.py", "--quick"], check_resonator),
]


def test_ratio_check_catches_a_wrong_ratio():
    assert_ratio("2.00", "4.0", "2.0")
    with pytest.raises(AssertionError):
        assert_ratio("2.50", "4.0", "2.0")


@pytest.mark.parametrize("argv, check", BENCHMARKS, ids=[b[0][0] for b in BENCHMARKS])
def test_benchmark_quick_run(argv, check, sweep_env):
    proc = run_script(argv, sweep_env, timeout=600)
    check(proc.stdout)
