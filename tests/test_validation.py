"""Validation before launch: every bad sweep input is refused with a message naming the field and
what is allowed, before any Ray job, trial or MLflow run exists."""
import socket

import pytest
import ray

from sweeps import c as c_sweep
from sweeps import ell as ell_sweep
from sweeps import noop
from sweeps import resonator_capacity, resonator_vs_dense
from sweeps import temperature
from sweeps.runner import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BAD_INPUTS = [
    # (sweep, argv, text the message must contain)
    (temperature.SWEEP, ["--set", "width=6"], "ell must divide the number of channels (got channels=6, ell=4)"),
    (c_sweep.SWEEP, ["--set", "width=12"], "groups must divide the number of channels"),
    (ell_sweep.SWEEP, ["--set", "t_init=0"], "t_init must be a finite number > 0"),
    (ell_sweep.SWEEP, ["--set", "t_init=10", "--set", "t_final=1"], "t_final must be a finite "
                                                                    "number >= t_init=10"),
    (temperature.SWEEP, ["--preset", "gigantic"], "--preset must be one of smoke, paper, "
                                                  "paper-r50 (got 'gigantic')"),
    (temperature.SWEEP, ["--search", "bayes"], "--search must be one of grid, tpe (got 'bayes')"),
    (temperature.SWEEP, ["--seeds", "-1"], "--seeds must be an integer >= 1 (got -1)"),
    (temperature.SWEEP, ["--gpus-per-trial", "64"], "--gpus-per-trial 64.0 exceeds the GPUs"),
    (temperature.SWEEP, ["--set", "dataset=imagenet"], "dataset must be one of"),
    (temperature.SWEEP, ["--set", "arch=vgg"], "arch must be one of"),
    (temperature.SWEEP, ["--set", "wta=soft"], "wta must be one of"),
    (temperature.SWEEP, ["--set", "epochs=0"], "epochs must be an integer >= 1"),
    (temperature.SWEEP, ["--set", "lr=-0.1"], "lr must be a finite number > 0"),
    (temperature.SWEEP, ["--set", "learning_rate=0.1"], "unknown config key(s) learning_rate"),
    (temperature.SWEEP, ["--search", "tpe", "--seeds", "3"], "--seeds applies to --search grid"),
    (temperature.SWEEP, ["--cpus-per-trial", "0"], "--cpus-per-trial must be > 0"),
    (noop.SWEEP, ["--search", "tpe", "--num-samples", "0"], "--num-samples must be >= 1"),
    (resonator_capacity.SWEEP, ["--set", "k=60"], "k=60"),
    (resonator_capacity.SWEEP, ["--set", "a=100"], "a must satisfy 1 <= a <= M"),
    (resonator_capacity.SWEEP, ["--set", "V=1"], "V must be"),
    (resonator_capacity.SWEEP, ["--set", "M=[1,5]", "--set", "a=1"], "M must be"),
    (resonator_vs_dense.SWEEP, ["--set", "max_it=0"], "max_it must be an integer >= 1"),
    (resonator_vs_dense.SWEEP, ["--set", "kind=quantum"], "kind"),
]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("DHAM_STORAGE_PATH", str(tmp_path / "ray"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return tmp_path


def _refused(sweep, argv, tmp_path, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(sweep, argv + ["--storage-path", str(tmp_path / "ray"),
                            "--optuna-storage", str(tmp_path / "optuna.journal")])
    assert exit_info.value.code == 2
    assert not ray.is_initialized()  # no Ray job, so no trial
    assert not (tmp_path / "ray").exists()
    assert not (tmp_path / "optuna.journal").exists()
    return capsys.readouterr().err


def _no_mlflow_runs(tmp_path):
    db = tmp_path / "mlflow.db"
    if db.exists():
        from tracking import store

        client = store.client(f"sqlite:///{db}")
        assert all(not client.search_runs([e.experiment_id])
                   for e in client.search_experiments())


@pytest.mark.parametrize("dry_run", [False, True], ids=["launch", "dry-run"])
@pytest.mark.parametrize("sweep, argv, message", BAD_INPUTS,
                         ids=[f"{s.name}:{' '.join(a)}" for s, a, _ in BAD_INPUTS])
def test_bad_input_refused_before_launch(sweep, argv, message, dry_run, isolated, capsys):
    err = _refused(sweep, argv + ["--dry-run"] * dry_run, isolated, capsys)
    assert message in err, err
    _no_mlflow_runs(isolated)


def test_unreachable_mlflow_server_refused(isolated, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_free_port()}")
    err = _refused(noop.SWEEP, ["--preset", "smoke"], isolated, capsys)
    assert "is not reachable" in err and "MLFLOW_TRACKING_URI" in err


def test_unopenable_mlflow_store_refused(isolated, capsys, monkeypatch):
    (isolated / "a-file").write_text("not a folder")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{isolated / 'a-file' / 'mlflow.db'}")
    err = _refused(noop.SWEEP, ["--preset", "smoke"], isolated, capsys)
    assert "cannot be opened" in err
