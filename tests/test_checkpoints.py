"""Trained models as MLflow artifacts: the checkpoint layout, the source of an evaluation sweep
(which launch's checkpoints, refused naming the field), the download in the worker and the
model rebuilt from a checkpoint (in-process; the end-to-end path is in test_checkpoint_sweep)."""
import argparse
import os
import tempfile

import pytest
import torch
from torch.utils.data import TensorDataset

from dham_core.data import load_dataset
from dham_core.train import DHAMConfig, Trainer, model_from_state
from sweeps.plan import Sweep
from sweeps.sources import check_source, describe_source, resolve_source
from tracking import store
from tracking.checkpoints import CHECKPOINT_ARTIFACT, CheckpointRef, sweep_checkpoints
from trainables import checkpoints as trainable_checkpoints

TINY = dict(dataset="mnist_offline", arch="resnet18", width=8, blocks=(1, 1, 1, 1), epochs=1,
            limit_train_batches=2, batch_size=32, device="cpu", ell=2, t_init=1.0)


@pytest.fixture(scope="module")
def trained():
    """A tiny ResNet-18 after two SGD steps, with its state as a checkpoint would hold it."""
    train, val, test, classes, channels = load_dataset("mnist_offline", seed=0)
    data = (train, TensorDataset(*val[:64]), TensorDataset(*test[:64]), classes, channels)
    trainer = Trainer(DHAMConfig(**TINY), data=data)
    trainer.fit()
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(trainer.state_dict(), os.path.join(tmp, "state.pt"))
        state = torch.load(os.path.join(tmp, "state.pt"), map_location="cpu", weights_only=True)
    return trainer, state, test.tensors[0][:16]


def test_model_from_state_gives_the_trained_network_in_eval_mode(trained):
    trainer, state, images = trained
    model, cfg = model_from_state(state)
    assert not model.training and cfg.ell == 2 and cfg.blocks == (1, 1, 1, 1)
    trainer.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(images), trainer.model(images), rtol=0, atol=0)
    # a freshly initialised network of the same config answers differently: weights were loaded
    fresh = Trainer(DHAMConfig(**{**TINY, "seed": 1}), data=(trainer.train_ds, trainer.val_ds,
                                                              trainer.test_ds, 10, 1))
    fresh.model.eval()
    with torch.no_grad():
        assert not torch.allclose(fresh.model(images), model(images))


def test_model_from_state_refuses_a_mismatch_naming_the_field(trained):
    _, state, _ = trained
    model_from_state(state, expect={"arch": "resnet18", "ell": 2.0, "blocks": [1, 1, 1, 1]})
    with pytest.raises(ValueError, match=r"checkpoint has ell=2 but the evaluation expects ell=4"):
        model_from_state(state, expect={"ell": 4})
    with pytest.raises(ValueError, match=r"arch='resnet18' .* expects arch='resnet50'"):
        model_from_state(state, expect={"arch": "resnet50"})
    with pytest.raises(ValueError, match=r"unknown config field 'depth'"):
        model_from_state(state, expect={"depth": 3})
    with pytest.raises(ValueError, match=r"'config' and 'model'"):
        model_from_state({"model": state["model"]})


def test_the_trainables_artifact_path_is_the_trackers():
    assert trainable_checkpoints.SOURCE_ARTIFACT == CHECKPOINT_ARTIFACT == "checkpoint/state.pt"


# -- the source sweep in MLflow ----------------------------------------------------------------
def _launch(client, exp, status, children, start):
    """A parent run with ``children``: (status, with checkpoint) each; returns (parent id, ids)."""
    parent = client.create_run(exp, start_time=start, tags={
        store.TAG_ROLE: store.ROLE_PARENT, store.TAG_SWEEP: "ell"}).info.run_id
    ids = []
    for i, (child_status, with_checkpoint) in enumerate(children):
        run = client.create_run(exp, start_time=start + 1 + i, tags={
            store.TAG_ROLE: store.ROLE_TRIAL, store.TAG_PARENT: parent}).info.run_id
        client.log_param(run, "ell", str(2 ** i))
        client.log_metric(run, "test_acc", 0.5 + i / 10)
        if with_checkpoint:
            with tempfile.TemporaryDirectory() as tmp:
                torch.save({"epoch": i, "run": i}, os.path.join(tmp, "state.pt"))
                client.log_artifacts(run, tmp, "checkpoint")
        client.set_terminated(run, child_status)
        ids.append(run)
    client.set_terminated(parent, status)
    return parent, ids


@pytest.fixture(scope="module")
def source_store(tmp_path_factory):
    """Sweep "ell" with three launches: an old finished one with checkpoints (the second child
    FAILED, the third without a checkpoint), a newer finished one without any checkpoint and a
    newest one still running."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('src') / 'mlflow.db'}"
    client = store.client(uri)
    exp = store.ensure_experiment(client, "ell")
    store.ensure_experiment(client, "temperature")
    good, ids = _launch(client, exp, "FINISHED",
                        [("FINISHED", True), ("FAILED", True), ("FINISHED", False),
                         ("FINISHED", True)], 1000)
    empty, _ = _launch(client, exp, "FINISHED", [("FINISHED", False)], 2000)
    running, _ = _launch(client, exp, "RUNNING", [("FINISHED", True)], 3000)
    return uri, client, {"good": good, "ids": ids, "empty": empty, "running": running}


def test_newest_finished_launch_with_checkpoints_is_the_source(source_store):
    _, client, runs = source_store
    refs = sweep_checkpoints(client, "ell")
    # only FINISHED children holding state.pt, of the one finished launch that has any
    assert [r.run_id for r in refs] == [runs["ids"][0], runs["ids"][3]]
    assert refs[1] == CheckpointRef(runs["ids"][3], {"ell": "8"}, {"test_acc": pytest.approx(0.8)})
    assert [r.run_id for r in sweep_checkpoints(client, "ell", runs["good"])] == \
        [runs["ids"][0], runs["ids"][3]]


def test_a_source_without_checkpoints_is_refused_naming_the_field(source_store):
    _, client, runs = source_store
    with pytest.raises(ValueError, match=r"source_sweep='wins'.*experiments there: ell, temperature"):
        sweep_checkpoints(client, "wins")
    with pytest.raises(ValueError, match=r"source_sweep='temperature': none of its 0 finished"):
        sweep_checkpoints(client, "temperature")
    with pytest.raises(ValueError, match=r"source_run='.*' \(sweep 'ell'\) has no finished trial"):
        sweep_checkpoints(client, "ell", runs["empty"])
    with pytest.raises(ValueError, match=r"source_run='.*' is not a parent run of sweep 'ell'"):
        sweep_checkpoints(client, "ell", runs["ids"][0])
    with pytest.raises(ValueError, match=r"source_run='nope': no such MLflow run"):
        sweep_checkpoints(client, "ell", "nope")


def _eval_sweep():
    from optuna.distributions import CategoricalDistribution

    from sweeps.runner import Preset

    return Sweep(name="evaluate", table="trials", trainable=lambda c: None,
                 space={"severity": CategoricalDistribution([1, 2])}, grid={"severity": [1, 2]},
                 presets={"smoke": Preset({"source_sweep": "ell"}, searches=("grid",))},
                 metric="acc", mode="max", validate=lambda c: None,
                 checkpoints_from="source_sweep")


def test_resolution_makes_every_point_run_once_per_checkpoint(source_store, monkeypatch):
    uri, _, runs = source_store
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    sweep = _eval_sweep()
    points = [{"severity": 1, "seed": 0}, {"severity": 2, "seed": 0}]
    resolved, out = resolve_source(sweep, {"source_sweep": "ell"}, points, uri)
    a, b = runs["ids"][0], runs["ids"][3]
    assert out == [{"severity": 1, "seed": 0, "checkpoint_run": a},
                   {"severity": 1, "seed": 0, "checkpoint_run": b},
                   {"severity": 2, "seed": 0, "checkpoint_run": a},
                   {"severity": 2, "seed": 0, "checkpoint_run": b}]
    assert resolved.space["checkpoint_run"].choices == (a, b) and "checkpoint_run" not in sweep.space
    assert os.environ["MLFLOW_TRACKING_URI"] == uri  # what the workers of a local Ray inherit
    # ... and a worker downloads that trial's state from it
    assert trainable_checkpoints.load_source_state({"checkpoint_run": b}) == {"epoch": 3, "run": 3}


def test_static_source_checks_and_dry_run_line():
    sweep = _eval_sweep()
    grid = argparse.Namespace(search="grid")
    check_source(sweep, grid, {"source_sweep": "ell"})
    with pytest.raises(ValueError, match=r"source_sweep must name the training sweep .*got source_sweep=None"):
        check_source(sweep, grid, {})
    with pytest.raises(ValueError, match=r"source_run must be None or an MLflow parent run id"):
        check_source(sweep, grid, {"source_sweep": "ell", "source_run": 3})
    with pytest.raises(ValueError, match=r"--search must be grid"):
        check_source(sweep, argparse.Namespace(search="tpe"), {"source_sweep": "ell"})
    line = describe_source(sweep, {"source_sweep": "ell", "source_run": "abc"})
    assert "from sweep 'ell' (parent run abc)" in line and "checkpoint_run" in line
