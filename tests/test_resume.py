"""Resume helpers without Ray: driver liveness (PID reuse), orphaned child runs."""
import os
import socket
import subprocess
import sys

from mlflow.entities import ViewType

from tracking import store
from sweeps.resume import driver_alive, driver_tag, drop_orphans


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
