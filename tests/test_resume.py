"""Resume helpers: driver liveness (PID reuse), orphaned child runs, and which dead launch
is resumable (a Tune state truncated by the kill is not)."""
import os
import socket
import subprocess
import sys

from mlflow.entities import ViewType

from tracking import store
from sweeps.resume import driver_alive, driver_tag, drop_orphans, find_unfinished


def test_driver_alive_for_this_process_and_not_for_a_dead_one():
    assert driver_alive(driver_tag())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    tag = f"{socket.gethostname()}:{child.pid}:"
    child.wait()  # reaped: the pid names no process now
    assert not driver_alive(tag)
    assert not driver_alive(None) and not driver_alive("garbage")


def test_a_reused_pid_is_not_the_driver():
    """A live process with the driver's pid but a different start time took the pid over."""
    host, pid, start = driver_tag().split(":")
    assert int(pid) == os.getpid() and start.isdigit()
    with open(f"/proc/{pid}/stat") as f:  # the start time as the kernel reports it
        assert f.read().split(")")[-1].split()[19] == start
    assert driver_alive(f"{host}:{pid}:{start}")
    assert not driver_alive(f"{host}:{pid}:{int(start) + 1}")
    assert driver_alive(f"{host}:{pid}")  # a tag written before start times were recorded


def test_a_driver_on_another_host_is_assumed_alive():
    assert driver_alive("some-other-host.invalid:1:1")


def test_drop_orphans_deletes_exactly_the_runs_of_unknown_trials(tmp_path):
    client = store.client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = store.ensure_experiment(client, "noop")
    parent = client.create_run(experiment, tags={store.TAG_ROLE: store.ROLE_PARENT}).info.run_id
    other = client.create_run(experiment, tags={store.TAG_ROLE: store.ROLE_PARENT}).info.run_id
    child = {}
    for trial in ("a", "b", "c", "d"):
        child[trial] = client.create_run(experiment, tags={
            store.TAG_PARENT: parent, store.TAG_TRIAL_ID: trial}).info.run_id
    stranger = client.create_run(experiment, tags={store.TAG_PARENT: other,
                                                   store.TAG_TRIAL_ID: "c"}).info.run_id

    deleted = drop_orphans(client, parent, {"a", "b"})

    assert sorted(deleted) == sorted([child["c"], child["d"]])
    gone = {r.info.run_id for r in client.search_runs([experiment],
                                                      run_view_type=ViewType.DELETED_ONLY)}
    assert gone == {child["c"], child["d"]}
    for trial in ("c", "d"):
        run = client.get_run(child[trial])
        assert run.info.status == "KILLED" and run.info.lifecycle_stage == "deleted"
        assert "orphaned" in run.data.tags[store.TAG_STATUS_REASON]
    for run_id in (child["a"], child["b"], stranger, parent, other):
        run = client.get_run(run_id)
        assert run.info.lifecycle_stage == "active" and run.info.status == "RUNNING"
        assert store.TAG_STATUS_REASON not in run.data.tags
    assert drop_orphans(client, parent, {"a", "b"}) == []  # nothing left to delete


def _report_once(config):
    from ray import tune

    tune.report({"x": config["x"]})


def test_a_tune_state_truncated_by_the_kill_is_not_resumed(tmp_path):
    """Ray Tune rewrites experiment_state-*.json in place: a driver killed mid-write leaves it
    truncated, which Tuner.can_restore accepts. find_unfinished resumes a readable state and,
    once the file is truncated, marks the launch FAILED with the reason and returns nothing."""
    import ray
    from ray import tune

    ray.init(num_cpus=1, include_dashboard=False)
    try:
        tune.Tuner(_report_once, param_space={"x": tune.grid_search([1, 2])},
                   run_config=tune.RunConfig(name="noop-dead", storage_path=str(tmp_path / "ray"),
                                             verbose=0)).fit()
    finally:
        ray.shutdown()
    client = store.client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = store.ensure_experiment(client, "noop")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a driver that is gone
    parent = client.create_run(experiment, tags={
        store.TAG_ROLE: store.ROLE_PARENT, store.TAG_PLAN: "p", store.TAG_TUNE_DIR: "noop-dead",
        store.TAG_DRIVER: f"{socket.gethostname()}:{child.pid}:"}).info.run_id

    run, path = find_unfinished(client, experiment, "p", str(tmp_path / "ray"))
    assert run.info.run_id == parent and path == str(tmp_path / "ray" / "noop-dead")

    states = sorted((tmp_path / "ray" / "noop-dead").glob("experiment_state-*.json"))
    assert states
    states[-1].write_text('{"trial_data": [')  # what a kill during json.dump leaves
    assert find_unfinished(client, experiment, "p", str(tmp_path / "ray")) == (None, None)
    run = client.get_run(parent)
    assert run.info.status == "FAILED"
    assert "experiment state, which is now unreadable" in run.data.tags[store.TAG_STATUS_REASON]
    assert find_unfinished(client, experiment, "p", str(tmp_path / "ray")) == (None, None)
