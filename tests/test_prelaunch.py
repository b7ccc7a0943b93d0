"""Refused before launch, not after: ``--warm-start`` without a grid study, ``--resume`` with
nothing to resume and CPU requests no machine or node can place exit with status 2, naming the
flag, before anything exists: no Ray, no MLflow experiment or run, no Optuna study, no results
folder. Also: data folders resolved on the driver, and one dataset download per root."""
import os
import threading
import time
from pathlib import Path

import optuna
import pytest
import ray

from dham_core import data
from sweeps import noop, temperature
from sweeps.cli import build_parser
from sweeps.runner import main, planned_configs
from tracking import store


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory):
    """One SQLite store for the module (creating one costs seconds); no test leaves a run in
    it, and each checks that it holds none."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def isolated(tmp_path, monkeypatch, mlflow_uri):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("DHAM_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return tmp_path


def journal(tmp_path) -> Path:
    return tmp_path / "optuna.journal"


def study_names(path: Path) -> list[str]:
    if not path.exists():
        return []
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    return sorted(s.study_name for s in optuna.get_all_study_summaries(storage))


def refused(sweep, argv, tmp_path, capsys, studies_before=()) -> str:
    """Run ``main``; check exit 2 and that nothing was created. Return stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(sweep, argv + ["--storage-path", str(tmp_path / "ray"),
                            "--optuna-storage", str(journal(tmp_path)), "--no-table"])
    assert exit_info.value.code == 2
    assert not ray.is_initialized()
    assert not (tmp_path / "ray").exists()
    assert not (tmp_path / "results").exists()
    assert study_names(journal(tmp_path)) == sorted(studies_before)
    client = store.client(os.environ["MLFLOW_TRACKING_URI"])
    assert client.get_experiment_by_name(sweep.name) is None or not client.search_runs(
        [client.get_experiment_by_name(sweep.name).experiment_id])
    assert all(not client.search_runs([e.experiment_id]) for e in client.search_experiments())
    return capsys.readouterr().err


def test_warm_start_without_any_study(isolated, capsys):
    err = refused(noop.SWEEP, ["--search", "tpe", "--warm-start"], isolated, capsys)
    assert "--warm-start needs a grid study of sweep 'noop', preset 'smoke'" in err
    assert "run --search grid --preset smoke first" in err
    assert not journal(isolated).exists()  # not even an empty journal file


def test_warm_start_with_only_another_presets_grid_study(isolated, capsys):
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal(isolated))))
    others = ["noop.bench.grid.0123abcd", "noop.smoke.tpe.89abcdef"]
    for name in others:
        optuna.create_study(study_name=name, storage=storage)
    err = refused(noop.SWEEP, ["--search", "tpe", "--warm-start"], isolated, capsys,
                  studies_before=others)
    assert "--warm-start needs a grid study of sweep 'noop', preset 'smoke'" in err


def test_warm_start_with_grid_search(isolated, capsys):
    err = refused(noop.SWEEP, ["--search", "grid", "--warm-start"], isolated, capsys)
    assert "--warm-start applies to --search tpe (got --search grid)" in err


def test_resume_with_an_empty_store(isolated, capsys):
    err = refused(noop.SWEEP, ["--resume"], isolated, capsys)
    assert "--resume: no unfinished sweep with this plan" in err
    client = store.client(os.environ["MLFLOW_TRACKING_URI"])
    assert client.get_experiment_by_name("noop") is None  # not created by the check


def test_resume_when_the_last_launch_finished(isolated, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{isolated / 'own.db'}")  # keeps a run
    client = store.client(os.environ["MLFLOW_TRACKING_URI"])
    experiment_id = store.ensure_experiment(client, "noop")
    args = build_parser(noop.SWEEP).parse_args(["--resume"])
    fixed, points = planned_configs(noop.SWEEP, args)
    from sweeps.resume import plan_hash

    run = client.create_run(experiment_id, tags={store.TAG_ROLE: store.ROLE_PARENT,
                                                 store.TAG_PLAN: plan_hash(noop.SWEEP, args,
                                                                           fixed, points)})
    client.set_terminated(run.info.run_id, "FINISHED")
    with pytest.raises(SystemExit) as exit_info:
        main(noop.SWEEP, ["--resume", "--storage-path", str(isolated / "ray"),
                          "--optuna-storage", str(journal(isolated)), "--no-table"])
    assert exit_info.value.code == 2
    assert "--resume: no unfinished sweep with this plan" in capsys.readouterr().err
    assert not ray.is_initialized() and not (isolated / "results").exists()
    assert [r.info.run_id for r in client.search_runs([experiment_id])] == [run.info.run_id]


@pytest.mark.parametrize("argv, message", [
    (["--num-cpus", "0"], "--num-cpus must be an integer >= 1 (got 0)"),
    (["--num-cpus", "2", "--cpus-per-trial", "3"],
     "--cpus-per-trial 3 exceeds the 2 CPUs local Ray gets (--num-cpus 2); use at most 2"),
    (["--cpus-per-trial", str((os.cpu_count() or 1) + 1)],
     f"exceeds the {os.cpu_count() or 1} CPUs local Ray gets (this machine's CPUs)"),
])
def test_local_cpus(argv, message, isolated, capsys):
    assert message in refused(noop.SWEEP, argv, isolated, capsys)


def test_cluster_resources_refused_after_connecting(isolated, monkeypatch, capsys):
    """A one-CPU, no-GPU Ray joined as a cluster (``RAY_ADDRESS`` set): the local checks step
    aside and the cluster's nodes are checked right after connecting, before any MLflow run."""
    context = ray.init(num_cpus=1, num_gpus=0, include_dashboard=False)
    monkeypatch.setenv("RAY_ADDRESS", context.address_info["address"])
    try:
        for argv, message in [
                (["--cpus-per-trial", "2"], "--cpus-per-trial 2 exceeds the CPUs of every node "
                                            "of the Ray cluster (largest node has 1)"),
                (["--gpus-per-trial", "1"], "--gpus-per-trial 1 exceeds the GPUs of every node "
                                            "of the Ray cluster (largest node has 0)")]:
            with pytest.raises(SystemExit) as exit_info:
                main(noop.SWEEP, argv + ["--storage-path", str(isolated / "ray"), "--optuna-storage",
                                         str(journal(isolated)), "--no-table"])
            assert exit_info.value.code == 2
            assert message in capsys.readouterr().err
            assert ray.is_initialized()  # the driver's own connection is left to its owner
    finally:
        ray.shutdown()
    assert not (isolated / "results").exists() and not (isolated / "ray").exists()
    assert not journal(isolated).exists()
    client = store.client(os.environ["MLFLOW_TRACKING_URI"])
    assert all(not client.search_runs([e.experiment_id]) for e in client.search_experiments())


def test_planned_data_root_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parse = build_parser(temperature.SWEEP).parse_args
    fixed, _ = planned_configs(temperature.SWEEP, parse(["--preset", "paper"]))  # CIFAR-10
    assert fixed["data_root"] == str(tmp_path / "data")
    fixed, _ = planned_configs(temperature.SWEEP, parse(["--preset", "paper", "--set",
                                                         "data_root=sets/cifar"]))
    assert fixed["data_root"] == str(tmp_path / "sets" / "cifar")
    fixed, _ = planned_configs(temperature.SWEEP, parse(["--preset", "smoke"]))
    assert "data_root" not in fixed  # the offline digits need no folder


class FakeMNIST:
    """torchvision's download contract: ``download=True`` fetches only what is missing."""
    downloads = 0

    def __init__(self, root, train=True, download=False):
        files = Path(root) / "MNIST" / "raw"
        if download and not (files / "done").exists():
            time.sleep(0.5)  # a slow network: a second trial would start its own download
            files.mkdir(parents=True, exist_ok=True)
            FakeMNIST.downloads += 1
            (files / "done").write_text("x")
        if not (files / "done").exists():
            raise RuntimeError("Dataset not found")


def test_concurrent_trials_download_once(tmp_path, monkeypatch):
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    FakeMNIST.downloads = 0
    results, errors = [], []

    def trial():
        try:
            results.append(data._torchvision_mnist(tmp_path / "data", download=True))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=trial) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 3 and FakeMNIST.downloads == 1
