"""Trials that share a Ray actor (``reuse_actors=True``) start from a fresh process's state:
nothing one trial sets process-wide (torch threads, RNG seeds, default dtype, environment)
reaches the next (:mod:`trainables.isolation`)."""
import os
import random
import sys

import numpy as np
import pytest
import torch

from trainables import isolation

LEAK_ENV = "DHAM_TEST_LEAKED"


def seen_state() -> dict:
    """What a trial sees of the process-wide state at its start."""
    return {"threads": float(torch.get_num_threads()), "torch_draw": torch.rand(()).item(),
            "numpy_draw": float(np.random.rand()), "python_draw": random.random(),
            "float64": float(torch.get_default_dtype() == torch.float64),
            "leaked_env": float(LEAK_ENV in os.environ),
            "deterministic": float(torch.are_deterministic_algorithms_enabled())}


def leak(seed: int) -> None:
    """What a careless trainable does to its process."""
    torch.set_num_threads(torch.get_num_threads() + 1)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    torch.set_default_dtype(torch.float64)
    torch.use_deterministic_algorithms(True)
    os.environ[LEAK_ENV] = "1"


def probe(config: dict) -> None:
    """Trainable: report what it saw, then leak; also the actor's pid (to prove reuse)."""
    from ray import tune

    seen = seen_state()
    leak(int(config["x"] * 1000) + 7)
    tune.report({**seen, "actor_pid": float(os.getpid()), "epoch": 1, "score": config["x"]})


@pytest.fixture
def clean_process(monkeypatch):
    """Undo what the in-process test leaks into the test process."""
    state = isolation.capture()
    monkeypatch.setattr(isolation, "_baseline", None)
    yield
    isolation.restore(state)


def test_second_call_sees_the_state_before_the_first(clean_process):
    threads, rng = torch.get_num_threads(), torch.get_rng_state()
    np_rng, py_rng = np.random.get_state(), random.getstate()
    seen = []

    @isolation.fresh_state
    def trial(config):
        seen.append(seen_state())
        leak(config["seed"])

    trial({"seed": 1})
    trial({"seed": 2})
    # the oracle: draws from the states recorded before the first call
    torch.set_rng_state(rng)
    torch_draw = torch.rand((), dtype=torch.float32).item()  # the last trial left float64
    np_gen = np.random.RandomState()
    np_gen.set_state(np_rng)
    py_gen = random.Random()
    py_gen.setstate(py_rng)
    expected = {"threads": float(threads), "torch_draw": torch_draw,
                "numpy_draw": float(np_gen.rand()), "python_draw": py_gen.random(),
                "float64": 0.0, "leaked_env": 0.0, "deterministic": 0.0}
    assert seen == [expected, expected]


def test_without_the_reset_the_state_leaks(clean_process):
    """The check above can fail: the same two trials, unwrapped, see different states."""
    seen = []

    def trial(config):
        seen.append(seen_state())
        leak(config["seed"])

    trial({"seed": 1})
    trial({"seed": 2})
    first, second = seen
    assert second["threads"] == first["threads"] + 1
    assert second["float64"] == second["leaked_env"] == second["deterministic"] == 1.0


def test_trials_on_one_reused_actor_share_no_state(tmp_path, monkeypatch):
    """Three trials through the runner on one CPU, so one actor at a time: Tune reuses the
    actor (one pid), and each trial sees what the first saw on the fresh actor."""
    import ray.cloudpickle
    from optuna.distributions import FloatDistribution

    from sweeps.plan import Preset, Sweep
    from sweeps.runner import main as run_sweep
    from tracking import store

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # tests/ is not on workers' path
    for key, value in {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
                       "DHAM_RESULTS_DIR": str(tmp_path / "results"),
                       "RAY_USAGE_STATS_ENABLED": "0"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    sweep = Sweep(name="actor_reuse", table="trials", trainable=probe,
                  space={"x": FloatDistribution(0.0, 1.0)}, grid={"x": [0.1, 0.2, 0.3]},
                  presets={"smoke": Preset({"epochs": 1})}, metric="score", mode="max",
                  validate=lambda config: None)
    try:
        parent = run_sweep(sweep, ["--no-table", "--num-cpus", "1", "--max-concurrent", "1",
                                   "--storage-path", str(tmp_path / "ray"),
                                   "--optuna-storage", str(tmp_path / "optuna.journal")])
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    client = store.client()
    runs = sorted(store.child_runs(client, client.get_run(parent)),
                  key=lambda r: r.info.start_time)
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    seen = [{k: r.data.metrics[k] for k in seen_state()} for r in runs]
    assert len({r.data.metrics["actor_pid"] for r in runs}) == 1, "the actor was not reused"
    assert seen[0]["float64"] == seen[0]["leaked_env"] == 0.0  # a fresh actor
    assert seen[1] == seen[0] and seen[2] == seen[0]
