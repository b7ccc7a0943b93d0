import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def sweep_env(tmp_path):
    """Environment for a sweep subprocess with its own MLflow store, Optuna DB and Ray results."""
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env.update({
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "DHAM_STORAGE_PATH": str(tmp_path / "ray"),
        "DHAM_OPTUNA_STORAGE": f"sqlite:///{tmp_path / 'optuna.db'}",
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
