"""The Krotov–Hopfield and Gripon–Berrou reports (analysis/hopfield*.py, analysis/clique.py):
their tables from hand-made trial frames, and each report end to end, in process, from a
temporary MLflow store filled the way the tracking callback fills it (a parent run, nested
trial runs with params, metrics per step, FINISHED)."""
import math
import time

import pandas as pd
import pytest
import torch
from mlflow.entities import Metric, Param

from analysis import clique as clique_analysis
from analysis import hopfield, hopfield_adversarial, hopfield_capacity
from dham_core import formulas, published
from dham_core.hopfield_model import DenseAssociativeMemory
from tracking import store

# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------


def test_one_step_table_pools_counts_over_trials_and_flags_the_acceptance_cells():
    cells = pd.DataFrame([
        {"run_id": "a", "N": 100, "n": 2, "rect": 0.0, "K": 20, "errors": 40, "bits": 3000, "formula": 0.015},
        {"run_id": "b", "N": 100, "n": 2, "rect": 0.0, "K": 20, "errors": 20, "bits": 1000, "formula": 0.015},
        {"run_id": "a", "N": 100, "n": 2, "rect": 1.0, "K": 20, "errors": 10, "bits": 3000, "formula": 0.015},
        {"run_id": "a", "N": 100, "n": 3, "rect": 0.0, "K": 300, "errors": 49, "bits": 1000, "formula": 0.03},
    ])
    table = hopfield_capacity.one_step_table(cells).set_index(["n", "rect", "K"])
    row = table.loc[(2, 0.0, 20)]
    assert row["errors"] == 60 and row["bits"] == 4000 and row["rate"] == 0.015 and row["runs"] == 2
    assert row["checked"] and row["within_2x"]
    assert not table.loc[(2, 1.0, 20)]["checked"]  # rectified cells are not held to the formula
    assert not table.loc[(3, 0.0, 300)]["checked"]  # fewer than 50 errors


def test_half_recall_table_and_the_ln2_line():
    cells = pd.DataFrame([
        {"run_id": "a", "N": 50, "n": 3, "rect": 0.0, "k_half": 190.0, "k_formula": 106.5},
        {"run_id": "b", "N": 50, "n": 3, "rect": 0.0, "k_half": 200.0, "k_formula": 106.5},
        {"run_id": "a", "N": 200, "n": 5, "rect": 0.0, "k_half_lower_bound": 4e5, "k_formula": 1.4e6},
    ])
    table = hopfield_capacity.half_recall_table(cells).set_index(["n", "N"])
    assert table.loc[(3, 50), "k_half"] == 195.0 and table.loc[(3, 50), "runs"] == 2
    assert math.isnan(table.loc[(5, 200), "k_half"]) and table.loc[(5, 200), "lower_bound"] == 4e5
    k = formulas.ln2_memories(100, 3)
    assert 100 * formulas.one_step_error_probability(100, k, 3) == pytest.approx(math.log(2), rel=1e-6)


def test_wilson_interval_matches_scipy():
    from scipy.stats import binomtest

    for k, n in ((0, 200), (12, 200), (199, 200), (500, 1000)):
        ci = binomtest(k, n).proportion_ci(method="wilson")
        assert clique_analysis.wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_adversarial_table_puts_the_slides_beside_ours():
    trials = pd.DataFrame([{"status": "FINISHED", "err_genn2_clsn2": 1.0, "err_genn2_clsn8": 0.3,
                            "err_genn8_clsn2": 0.5, "err_genn8_clsn8": 0.9}] * 2)
    table = hopfield_adversarial.adversarial_table(trials).set_index(["generated_against", "classified_by"])
    assert table.loc[("n2", "n8"), "error"] == pytest.approx(30.0)
    assert table.loc[("n2", "n8"), "slides"] == published.KROTOV_ADVERSARIAL[(2, 8)] == 32.0
    assert table.loc[("n8", "n2"), "slides"] == 57.0 and table.loc[("n8", "n8"), "runs"] == 2


def test_search_table_lists_the_searched_temperatures_by_their_param_names():
    trials = pd.DataFrame([
        {"status": "FINISHED", "power": 3.0, "t_init": 300.0, "t_final": 50.0, "t_const": None, "m": 3,
         "lr": 0.02, "momentum": 0.9, "temperature": 50.0, "eval_error": e, "best_eval_error": e, "epoch": 4}
        for e in (0.05, 0.03)])
    text = hopfield.search_markdown(trials)
    header = next(line for line in text.splitlines() if line.startswith("| n |"))
    assert header == ("| n | t_init | t_final | m | lr | momentum | final error (%) | best error (%) "
                      "| epochs run |")
    assert text.index("| 3.00 |") < text.index("| 5.00 |")  # best trial first


# ---------------------------------------------------------------------------------------
# Reports end to end, from a temporary MLflow store
# ---------------------------------------------------------------------------------------


@pytest.fixture
def client(tmp_path):
    return store.client(f"sqlite:///{tmp_path / 'mlflow.db'}")


def sweep(client, tmp_path, name: str, trials: list[tuple[dict, list[dict]]], search: str = "grid"):
    """A parent run with one FINISHED child per (params, metrics per step) pair; returns the parent."""
    experiment = client.create_experiment(name, artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment, tags={store.TAG_ROLE: store.ROLE_PARENT, store.TAG_SEARCH: search})
    now = int(time.time() * 1000)
    for i, (params, steps) in enumerate(trials):
        run = client.create_run(experiment, tags={store.TAG_PARENT: parent.info.run_id,
                                                  store.TAG_ROLE: store.ROLE_TRIAL, store.TAG_TRIAL_ID: f"t{i}"})
        metrics = [Metric(k, float(v), now, step) for step, row in enumerate(steps, 1) for k, v in row.items()]
        client.log_batch(run.info.run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()])
        client.set_terminated(run.info.run_id)
    return client.get_run(parent.info.run_id)


def power_trial(power: float, seed: int):
    epochs = [{"eval_error": 0.1 / e, "train_error": 0.08 / e} for e in (1, 2, 3)]
    epochs[-1].update(best_eval_error=0.03, single_class_frac=0.2, single_contributor_frac=0.5,
                      contributors_median=2.0, epochs_to_threshold=3.0, contrib_frac_1=0.5, contrib_frac_2=0.3,
                      contrib_frac_3_4=0.2, votes_frac_0=0.1, votes_frac_1=0.2, votes_frac_2=0.7)
    return {"power": power, "seed": seed, "dataset": "mnist_offline", "num_memories": 20, "epochs": 3}, epochs


def test_power_report_writes_its_table_and_figures(client, tmp_path):
    parent = sweep(client, tmp_path, "hopfield_power", [power_trial(p, s) for p in (2, 30) for s in (0, 1)])
    markdown, files = hopfield.report_power(client, parent, tmp_path / "power")
    names = sorted(f.name for f in files)
    assert names == ["power-curves.png", "power-histograms.png", "power.md", "power.parquet"]
    table = pd.read_parquet(tmp_path / "power.parquet").set_index("n")
    assert table.loc[2, "eval_error"] == pytest.approx(100 * 0.1 / 3) and table.loc[30, "runs"] == 2
    assert table.loc[2, "reached"] == 2 and table.loc[2, "epochs_to_threshold_min"] == 3
    assert "| 2 | 3.33 ± 0.00 (n=2) | 3.00 | 3–3 (2/2) |" in markdown
    assert f"| {published.KROTOV_MNIST_ERROR[2]} | 179–312 |" in markdown
    assert "not drawn" in markdown  # no trial logged a checkpoint


def test_capacity_report_has_the_four_experiments(client, tmp_path):
    p_err = formulas.one_step_error_probability(100, 600, 3)
    trials = [
        ({"experiment": "one_step"}, [{"N": 100, "n": 3, "rect": r, "K": 600, "errors": round(1e5 * p_err),
                                       "bits": 1e5, "formula": p_err} for r in (0, 1)]),
        ({"experiment": "half_recall"}, [{"N": 100, "n": 3, "rect": 0, "k_half": 556.0,
                                          "k_formula": formulas.perfect_recall_capacity(100, 3)}]),
        ({"experiment": "random_starts"}, [{"N": 100, "K": 2000, "n": 5, "rect": 0, "starts": 100, "stored": 1.0,
                                            "negated": 0.0, "converged": 1.0}]),
        ({"experiment": "xor"}, [{"n": 3, "rect": 1, "correct": 8, "presentations": 8, "solved": 1}]),
    ]
    parent = sweep(client, tmp_path, "hopfield_capacity", trials)
    markdown, files = hopfield_capacity.report_capacity(client, parent, tmp_path / "capacity")
    assert sorted(f.name for f in files) == sorted(
        ["capacity.md"] + [f"capacity-{e}.{x}" for e in ("one_step", "half_recall", "random_starts")
                           for x in ("parquet", "png")])
    assert "Checked cells within ×2: 1/1" in markdown
    assert f"| 3 | plain | 100 | 556.0 (n=1) | {formulas.perfect_recall_capacity(100, 3):.1f} |" in markdown
    assert "| 5 | plain | 100 | 2000 | 100 | 100.0 | 0.0 | 100.0 | all recalled |" in markdown
    assert "| 3 | rectified | 8/8 | solved | solved |" in markdown


def test_adversarial_report_writes_the_transfer_table(client, tmp_path):
    cells = {"err_genn2_clsn2": 1.0, "err_genn2_clsn8": 0.25, "err_genn8_clsn2": 0.5, "err_genn8_clsn8": 1.0,
             "eval_error_n2": 0.04, "eval_error_n8": 0.05, "linf_n2": 0.3, "linf_n8": 0.4, "steps_n2": 20,
             "steps_n8": 30}
    parent = sweep(client, tmp_path, "hopfield_adversarial", [({"dataset": "mnist_offline"}, [cells])])
    markdown, files = hopfield_adversarial.report_adversarial(client, parent, tmp_path / "adv")
    assert sorted(f.name for f in files) == ["adv.md", "adv.parquet"]
    assert "| n2 | 100.0 (n=1) | 25.0 (n=1) | 100 | 32 |" in markdown
    assert "clean test error n2: 4.00%, n8: 5.00%" in markdown


def test_clique_report_checks_the_formula_and_draws_it(client, tmp_path):
    c, ell, ce = 8, 16, 4
    rows = []
    for m in (5000, 10000):
        formula = formulas.clique_one_iteration_error(m, c, ell, ce)
        for iters, errors in ((1, round(200 * formula)), (4, round(100 * formula))):
            rows.append({"c": c, "ell": ell, "c_e": ce, "M": m, "iters": iters, "errors": errors, "tests": 200,
                         "density": formulas.clique_density(m, ell),
                         "density_formula": formulas.clique_density(m, ell), "error_formula": formula})
    parent = sweep(client, tmp_path, "clique_capacity", [({"rule": "sum_of_sum"}, rows)])
    markdown, files = clique_analysis.report_clique(client, parent, tmp_path / "clique")
    assert sorted(f.name for f in files) == ["clique-clique.png", "clique.md", "clique.parquet"]
    assert "one iteration within ±0.05 of P_e for 5,000 ≤ M ≤ 30,000: 2/2 cells" in markdown


def test_memory_images_come_from_a_checkpoint_artifact_when_one_is_logged(tmp_path):
    client = store.client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("hopfield_power", artifact_location=(tmp_path / "artifacts").as_uri())
    run = client.create_run(experiment).info.run_id
    assert hopfield.checkpoint_memories(client, run) is None
    model = DenseAssociativeMemory(784, 10, 12, 30, 500.0, generator=torch.Generator().manual_seed(0))
    (tmp_path / "ckpt").mkdir()
    torch.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "ckpt" / "state.pt")
    client.log_artifact(run, str(tmp_path / "ckpt" / "state.pt"), artifact_path="checkpoint")
    memories = hopfield.checkpoint_memories(client, run)
    assert torch.equal(memories, model.memories.detach())
    png = tmp_path / "memories.png"
    hopfield._plot_memories({2: memories, 30: memories}, png, per_model=12)
    assert png.stat().st_size > 5000


def test_clique_error_is_one_once_every_link_is_present():
    # ℓ = 4 and a million messages: d rounds to 1, so every erased cluster's rivals tie (the
    # report's theory curve runs past the stored M, so it must not raise there)
    assert formulas.clique_density(1e6, 4) == 1.0
    assert formulas.clique_one_iteration_error(1e6, 8, 4, 4) == 1.0
    assert 0 < formulas.clique_one_iteration_error(2e4, 8, 256, 4) < 1
