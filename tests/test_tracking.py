"""The MLflow schema's readers (tracking.store) against a real local SQLite store."""
from tracking import store


def _parent_with_child(client, params: dict, metrics: dict[str, list[float]]):
    experiment_id = store.ensure_experiment(client, "cells")
    parent = client.create_run(experiment_id, tags={store.TAG_ROLE: store.ROLE_PARENT})
    child = client.create_run(experiment_id, tags={store.TAG_PARENT: parent.info.run_id,
                                                   store.TAG_ROLE: store.ROLE_TRIAL})
    for key, value in params.items():
        client.log_param(child.info.run_id, key, value)
    for key, values in metrics.items():
        for step, value in enumerate(values):
            client.log_metric(child.info.run_id, key, value, step=step)
    client.set_terminated(child.info.run_id, "FINISHED")
    return client.get_run(parent.info.run_id)


def test_trial_histories_keeps_the_cell_metric_and_the_param_beside_it(tmp_path):
    client = store.client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    parent = _parent_with_child(client, {"a": "[3, 5, 8]", "D": "1024"},
                                {"a": [3.0, 5.0, 8.0], "accuracy": [1.0, 0.9, 0.5]})
    frame = store.trial_histories(client, parent)
    assert list(frame["step"]) == [0, 1, 2]
    assert list(frame["a"]) == [3, 5, 8]  # the cell's coordinate, per step
    assert list(frame["param.a"]) == ["[3, 5, 8]"] * 3  # the trial's param, kept
    assert list(frame["D"]) == [1024] * 3 and "param.D" not in frame  # no clash, no rename
    assert list(frame["accuracy"]) == [1.0, 0.9, 0.5]
    assert set(frame["status"]) == {"FINISHED"}
