"""The scaling experiment end to end (resonator workload, 1 and 2 workers)."""
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
    assert frame["efficiency"].iloc[0] == 1.0
    # efficiency is what the definition says: throughput(2) / (2 * throughput(1))
    tp = list(frame["trials_per_hour"])
    assert abs(frame["efficiency"].iloc[1] - tp[1] / (2 * tp[0])) < 1e-9
    assert (frame["problems_per_s"] > 0).all()
    assert "| resonator | 2 | 8 |" in proc.stdout
    # each measurement is a real sweep with its own parent run, tagged with the scaling run
    sweeps = client.search_runs(
        [client.get_experiment_by_name("resonator_capacity").experiment_id],
        filter_string=f"tags.`scaling.parent` = '{parent.info.run_id}'")
    assert len(sweeps) == 2
    names = {a.path.rsplit(".", 1)[-1] for a in client.list_artifacts(parent.info.run_id,
                                                                          "tables")}
    assert names == {"md", "parquet", "png"}
