import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """In-process tests use small tensors: on a shared 2-core CPU a second thread only adds
    OpenMP barrier waits (subprocess sweeps are unaffected; Ray gives each trial its CPUs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def sweep_env(tmp_path):
    """Environment for a sweep subprocess with its own MLflow store, Optuna DB and Ray results."""
    return _sweep_env(tmp_path)


def _sweep_env(tmp_path):
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env.update({
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "DHAM_STORAGE_PATH": str(tmp_path / "ray"),
        "DHAM_OPTUNA_STORAGE": str(tmp_path / "optuna.journal"),
        "DHAM_RESULTS_DIR": str(tmp_path / "results"),
        "RAY_USAGE_STATS_ENABLED": "0",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def run_script(args, env, timeout=600, check=True):
    """Run a repo script with the test's interpreter; return the CompletedProcess."""
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\nSTDOUT:\n{proc.stdout[-5000:]}"
                             f"\nSTDERR:\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="session")
def trained_dham_dir(tmp_path_factory):
    """The folder of :func:`trained_dham_sweep`'s stores (``mlflow.db``, ``ray/``, ...)."""
    return tmp_path_factory.mktemp("trained_dham")


@pytest.fixture(scope="session")
def trained_dham_sweep(trained_dham_dir):
    """``(tracking_uri, parent_run_id)`` of a tiny finished ``sweeps/ell.py`` smoke training
    (offline MNIST, ell in 1, 2, 4, 8, one epoch of 2 batches) whose trials logged their final
    checkpoints to MLflow (sweep name ``ell``): what evaluation tests resolve as their source.
    Run once per test session in its own MLflow store (:func:`trained_dham_dir`)."""
    root = trained_dham_dir
    env = _sweep_env(root)
    run_script(["sweeps/ell.py", "--preset", "smoke", "--set", "epochs=1",
                "--set", "limit_train_batches=2", "--no-table"], env)
    from tracking import store

    uri = env["MLFLOW_TRACKING_URI"]
    return uri, store.find_parent_run(store.client(uri), "ell").info.run_id


def wait_for_readable_tune_state(storage: Path, timeout: float = 10.0) -> None:
    """Wait until the newest ``experiment_state-*.json`` under ``storage`` parses. Ray Tune
    rewrites it in place, so a driver killed during that write leaves it truncated and the
    launch cannot be resumed (``sweeps.resume.unreadable_tune_state``, tested on its own in
    test_resume.py). Tests that kill a driver to test *resuming* call this just before the
    kill, leaving a window of milliseconds instead of the whole write."""
    import json
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        states = sorted(storage.glob("*/experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
        try:
            if states:
                json.loads(states[-1].read_text())
                return
        except (ValueError, OSError):
            pass
        time.sleep(0.02)
