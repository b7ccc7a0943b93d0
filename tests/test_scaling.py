"""The scaling experiment end to end (resonator workload, 1 and 2 workers)."""
import pytest

from tracking import store
from conftest import run_script


def test_scaling_resonator_workload(sweep_env):
    proc = run_script(["sweeps/scaling.py", "--workloads", "resonator", "--workers", "1,2"],
                      sweep_env)
    client = store.client(sweep_env["MLFLOW_TRACKING_URI"])
    parent = store.find_parent_run(client, "scaling")
    frame = store.trials_frame(client, parent).sort_values("workers")
    assert list(frame["workers"]) == [1, 2] and set(frame["status"]) == {"FINISHED"}
    assert list(frame["trials"]) == [8, 8]
    # Throughput recomputed from each measured sweep's own MLflow record (its Tuner.fit wall
    # time and its finished child runs), not from what scaling.py logged: trials per second,
    # and problems per second from the preset's workload (2 cells x 128 problems per trial).
    measured = {}
    for row in store.child_runs(client, parent):
        sub = client.get_run(row.data.tags["scaling.sweep_run"])
        done = [r for r in store.child_runs(client, sub) if r.info.status == "FINISHED"]
        wall = sub.data.metrics["sweep_seconds"]
        measured[int(row.data.metrics["workers"])] = (len(done) / wall, 256 * len(done) / wall)
    assert sorted(measured) == [1, 2]
    efficiency_2 = measured[2][0] / (2 * measured[1][0])
    assert frame["efficiency"].iloc[1] == pytest.approx(efficiency_2, rel=1e-9)
    assert efficiency_2 != 1.0  # W = 2: a ratio of two measured throughputs
    assert list(frame["problems_per_s"]) == pytest.approx([measured[w][1] for w in (1, 2)],
                                                          rel=1e-9)
    assert "| resonator | 2 | 8 |" in proc.stdout
    # each measurement is a real sweep with its own parent run, tagged with the scaling run
    sweeps = client.search_runs(
        [client.get_experiment_by_name("resonator_capacity").experiment_id],
        filter_string=f"tags.`scaling.parent` = '{parent.info.run_id}'")
    assert len(sweeps) == 2
    names = {a.path.rsplit(".", 1)[-1] for a in client.list_artifacts(parent.info.run_id,
                                                                          "tables")}
    assert names == {"md", "parquet", "png"}
