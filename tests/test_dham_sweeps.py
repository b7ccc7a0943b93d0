"""DecisiveNets sweeps end to end (real tiny trainings on offline MNIST) and the table analysis."""
import math

import pandas as pd
import pytest

from dham_core import published
from tracking import store
from analysis.decisivenets import TABLES, build_table, to_markdown
from analysis.render import mean_ci
from conftest import run_script


def test_temperature_smoke_sweep_prints_table3(sweep_env, tmp_path):
    proc = run_script(["sweeps/temperature.py", "--preset", "smoke", "--set", "epochs=1",
                       "--set", "limit_train_batches=3"], sweep_env)
    assert "18 trials finished, 0 failed" in proc.stdout
    client = store.client(sweep_env["MLFLOW_TRACKING_URI"])
    parent = store.find_parent_run(client, "temperature")
    assert parent.data.tags[store.TAG_TABLE] == "decisivenets.table3"
    trials = store.trials_frame(client, parent)
    assert len(trials) == 18 and set(trials["status"]) == {"FINISHED"}
    for key in ("test_acc", "val_acc", "train_loss", "temperature", "mults_analytic",
                "mults_measured", "num_params"):
        assert trials[key].notna().all(), key
    assert (trials["mults_measured"] <= trials["mults_analytic"]).all()
    # the reported temperature is the one of the last of the 3 steps: t(2/3) of the schedule
    expected = trials["t_init"] * (trials["t_final"] / trials["t_init"]) ** (2 / 3)
    assert (abs(trials["temperature"] / expected - 1) < 1e-6).all()
    # the printed table: one row per published cell, ours beside the paper's
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ")]
    assert len(lines) == 1 + 18
    for row in published.DECISIVENETS_TABLE3:
        cell = f"| {row['ell']:g} | {row['t_init']:g} | {row['t_final']:g} | "
        match = [ln for ln in lines if ln.startswith(cell)]
        assert len(match) == 1 and "(n=1)" in match[0] and f"{row['r18_c10_acc']:.2f}" in match[0]
    files = {a.path.rsplit(".", 1)[-1] for a in client.list_artifacts(parent.info.run_id,
                                                                          "tables")}
    assert files == {"md", "parquet", "png"}


def _fake_trials(rows):
    return pd.DataFrame([{"status": "FINISHED", **r} for r in rows])


def test_aggregation_mean_and_95ci_over_seeds():
    accs = [0.90, 0.92, 0.94, 0.91, 0.93]
    trials = _fake_trials([{"ell": 2, "seed": s, "test_acc": a} for s, a in enumerate(accs)])
    table = build_table(trials, TABLES["decisivenets.table1"])
    row = table[table["ell"] == 2].iloc[0]
    mean = sum(accs) / 5
    sd = math.sqrt(sum((a - mean) ** 2 for a in accs) / 4)
    assert row["test_acc"] == pytest.approx(100 * mean)
    assert row["test_acc_ci"] == pytest.approx(100 * 2.7764451 * sd / math.sqrt(5), rel=1e-6)
    assert row["n"] == 5
    assert mean_ci([0.5]) [1] != mean_ci([0.5])[1]  # n = 1: no interval (nan)


def test_cells_not_run_print_a_dash_never_a_number():
    trials = _fake_trials([{"ell": 4, "seed": 0, "test_acc": 0.5, "mults_analytic": 10.0,
                            "mults_measured": 8.0},
                           {"ell": 4, "seed": 1, "test_acc": 0.6, "mults_analytic": 10.0,
                            "mults_measured": 9.0},
                           {"ell": 8, "seed": 0, "test_acc": 0.7, "status": "FAILED"}])
    spec = TABLES["decisivenets.table1"]
    md = to_markdown(build_table(trials, spec), spec)
    rows = {ln.split("|")[1].strip(): ln for ln in md.splitlines() if ln.startswith("| ")}
    assert "55.00 ± " in rows["4"] and "(n=2)" in rows["4"]
    for ell in ("1", "2", "8", "16", "32", "64"):  # not run, or only a failed trial
        ours = rows[ell].split("|")[2].strip()
        assert ours == "—", rows[ell]
    assert "95.21" in rows["1"] and "1,297,809,408" in rows["1"]
