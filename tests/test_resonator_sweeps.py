"""Resonator sweeps end to end: packs per trial, per-cell MLflow steps, figures, Pareto front."""
import pytest

from tracking import store
from analysis.resonator import pareto_front
from conftest import run_script
from trainables.resonator import pack_cells


def test_pack_expands_list_axes_and_validates():
    cells = pack_cells({"D": 1024, "k": 64, "V": 3, "M": [5, 10], "a": [2, 3], "seed": 1})
    assert len(cells) == 4 and {(c.M, c.a) for c in cells} == {(5, 2), (5, 3), (10, 2), (10, 3)}
    dense = pack_cells({"kind": "dense", "D": 512, "k": 64, "V": 3, "M": [5, 10], "a": [2, 3]})
    assert len(dense) == 2 and all(c.a is None and c.k is None for c in dense)
    assert all("a" not in c.as_dict() and "k" not in c.as_dict() for c in dense)
    with pytest.raises(ValueError, match="k"):
        pack_cells({"D": 1000, "k": 64, "V": 3, "M": 5, "a": 2})
    with pytest.raises(ValueError, match="a"):
        pack_cells({"D": 1024, "k": 64, "V": 3, "M": 5, "a": 6})
    with pytest.raises(ValueError, match="unknown config key"):
        pack_cells({"D": 1024, "k": 64, "V": 3, "M": 5, "a": 2, "alpha": 1})


def test_pareto_front():
    import pandas as pd

    frame = pd.DataFrame({"accuracy": [1.0, 0.9, 1.0, 0.8], "iters_mean": [10, 5, 20, 6]})
    assert list(pareto_front(frame)) == [True, True, False, False]


def test_capacity_smoke_sweep(sweep_env):
    proc = run_script(["sweeps/resonator_capacity.py", "--preset", "smoke", "--set",
                       "M=[5,10]", "--set", "num_problems=32"], sweep_env)
    assert "4 trials finished, 0 failed" in proc.stdout
    client = store.client(sweep_env["MLFLOW_TRACKING_URI"])
    parent = store.find_parent_run(client, "resonator_capacity")
    frame = store.trial_histories(client, parent)
    assert len(frame) == 4 * 2  # 4 trials x 2 cells, one MLflow step per cell
    assert set(frame["problem_size"]) == {125.0, 1000.0}
    assert frame["accuracy"].between(0, 1).all()
    assert "Sparse resonator: accuracy and iterations vs problem size" in proc.stdout
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| sparse |")]
    assert len(rows) == 8
    names = {a.path.rsplit(".", 1)[-1] for a in client.list_artifacts(parent.info.run_id,
                                                                          "tables")}
    assert names == {"md", "parquet", "png"}


def test_pareto_tpe_multi_objective(sweep_env):
    proc = run_script(["sweeps/resonator_capacity.py", "--preset", "pareto", "--search", "tpe",
                       "--num-samples", "4", "--set", "num_problems=32"],
                      sweep_env)
    assert "4 trials finished, 0 failed" in proc.stdout
    assert "Pareto-optimal (k, a, noise):" in proc.stdout
    client = store.client(sweep_env["MLFLOW_TRACKING_URI"])
    parent = store.find_parent_run(client, "resonator_capacity")
    trials = store.trials_frame(client, parent)
    assert set(trials["k"]) <= {16, 32, 64, 128} and trials["a"].between(1, 32).all()
    assert trials["noise"].between(0.1, 1.5).all()
    assert (trials["D"] == 1024).all()  # pinned by the preset, not searched


def test_vs_dense_smoke_sweep(sweep_env):
    proc = run_script(["sweeps/resonator_vs_dense.py", "--preset", "smoke", "--set",
                       "M=[5,10]", "--set", "num_problems=32"], sweep_env)
    assert "2 trials finished, 0 failed" in proc.stdout
    assert "| M^V | dense/sparse iterations |" in proc.stdout


def test_attention_report_draws_both_traces(tmp_path):
    # the report of the fig3.2 preset, from the rows its trainable logs (one per iteration)
    import pandas as pd

    from analysis.resonator import attention_report
    from dham_core.resonator_pack import ResonatorCell
    from dham_core.resonator_trace import attention_trace_rows

    rows = attention_trace_rows(ResonatorCell(D=1280, k=40, a=5, V=3, M=10, num_problems=64,
                                              max_it=60, seed=1))
    frame = pd.DataFrame(rows)
    assert set(frame["trace_problem"]) == {0, 1}  # this seed has a problem it does not decode
    markdown, files = attention_report(frame, tmp_path / "trace")
    assert "| decoded |" in markdown and "| undecoded |" in markdown
    assert sorted(f.suffix for f in files) == [".md", ".parquet", ".png"]
    assert all(f.exists() for f in files)
