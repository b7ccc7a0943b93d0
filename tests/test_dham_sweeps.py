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


def _tuned_trials(with_val=True):
    """ell 2 and 8, each on a 2 x 2 temperature grid x 3 seeds; accuracies from a formula."""
    rows = []
    for ell in (2, 8):
        for t_init in (0.1, 10.0):
            for t_final in (100.0, 10000.0):
                for seed in range(3):
                    val = 0.5 + 0.01 * seed + (0.2 if (ell, t_init, t_final) in
                                               {(2, 10.0, 100.0), (8, 0.1, 10000.0)} else 0)
                    row = {"ell": ell, "t_init": t_init, "t_final": t_final, "seed": seed,
                           "test_acc": 1 - val / 2}
                    if with_val:
                        row["val_acc"] = val
                    rows.append(row)
    return _fake_trials(rows)


def test_tuned_table_picks_each_rows_best_temperatures_on_validation():
    from analysis.decisivenets import best_cells, is_tuned, tuned_markdown

    spec = TABLES["decisivenets.table1"]
    trials = _tuned_trials()
    assert is_tuned(trials, spec)
    assert not is_tuned(trials[(trials.t_init == 0.1) & (trials.t_final == 100.0)], spec)
    table, metric = best_cells(trials, spec)
    assert metric == "val_acc"
    # brute force: per ell, the cell whose 3 validation accuracies have the largest mean
    for ell, (t_init, t_final) in ((2, (10.0, 100.0)), (8, (0.1, 10000.0))):
        row = table[table["ell"] == ell].iloc[0]
        assert (row["t_init"], row["t_final"], row["n"], row["cells"]) == (t_init, t_final, 3, 4)
        vals = [0.7, 0.71, 0.72]
        assert row["selected_on"] == pytest.approx(100 * sum(vals) / 3)
        tests = [1 - v / 2 for v in vals]
        mean = sum(tests) / 3
        sd = math.sqrt(sum((t - mean) ** 2 for t in tests) / 2)
        assert row["test_acc"] == pytest.approx(100 * mean)
        assert row["test_acc_ci"] == pytest.approx(100 * 4.3026527 * sd / math.sqrt(3), rel=1e-6)
    md = tuned_markdown(table, spec, metric, "")
    line = next(ln for ln in md.splitlines() if ln.startswith("| 2 |"))
    assert line.startswith("| 2 | 10 | 100 | 71.00 | 64.50 ± ") and "95.25" in line
    assert next(ln for ln in md.splitlines() if ln.startswith("| 16 |")).startswith("| 16 | — | — | — | — |")
    assert "mean validation accuracy" in md


def test_tuned_table_without_validation_selects_on_test_and_says_so():
    from analysis.decisivenets import best_cells, tuned_markdown

    spec = TABLES["decisivenets.table1"]
    table, metric = best_cells(_tuned_trials(with_val=False), spec)
    assert metric == "test_acc"
    # the lowest val-formula cells have the highest test accuracy (1 - val / 2): the ties
    # among the three 0.5-cells go to the lowest temperatures
    row = table[table["ell"] == 2].iloc[0]
    assert (row["t_init"], row["t_final"]) == (0.1, 100.0)
    assert "TEST accuracy" in tuned_markdown(table, spec, metric, "")


def test_paper_presets_train_on_every_image_and_launch(capsys):
    """The paper's protocol (val_size=0) in the paper presets of all three sweeps; the c
    presets no longer inherit ell; with no val_acc a grid records train_acc, TPE is refused.
    (tests/test_dry_run.py launches every preset with --dry-run.)"""
    from sweeps import c, ell, temperature
    from sweeps.runner import main

    for sweep in (ell.SWEEP, c.SWEEP, temperature.SWEEP):
        for name in ("paper", "paper-r50"):
            preset = sweep.presets[name]
            assert preset.config["val_size"] == 0 and preset.searches == ("grid",)
            assert sweep.for_argv(["--preset", name]).metric == "train_acc"
        assert sweep.for_argv(["--preset", "smoke"]).metric == "val_acc"
    assert "ell" not in c.SWEEP.presets["paper"].config
    with pytest.raises(SystemExit) as exit_info:
        main(ell.SWEEP, ["--preset", "smoke", "--set", "val_size=0", "--search", "tpe",
                         "--dry-run"])
    assert exit_info.value.code == 2 and "val_size=0" in capsys.readouterr().err


def test_tuned_presets_grid_the_temperatures_per_row():
    from sweeps import c, ell
    from sweeps.dham_presets import T_FINALS, T_INITS
    from sweeps.plan import grid_points

    for sweep, axis in ((ell.SWEEP, "ell"), (c.SWEEP, "groups")):
        points = grid_points(sweep, sweep.presets["paper-tuned"], seeds=1)
        assert len(points) == 7 * 3 * 3
        assert {(p["t_init"], p["t_final"]) for p in points} == {(a, b) for a in T_INITS
                                                                 for b in T_FINALS}
        assert {p[axis] for p in points} == set(published.ELLS)
        assert sweep.presets["paper-tuned"].config.get("val_size", 5000) > 0  # selects on val
