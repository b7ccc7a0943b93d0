"""Per-trial overhead of the sweep platform: 100 no-op trials through the runner (Ray Tune +
Optuna + MLflow parent/child tracking) vs the same 100 evaluations in a plain Python loop.

    python benchmarks/trial_overhead.py            # target: <= 0.1 s per trial
    python benchmarks/trial_overhead.py --quick    # 10 trials

Runs in a temporary MLflow store / Optuna storage / Ray results folder. Ray start-up is timed
separately (it is paid once per sweep, not per trial).
"""
import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--trials", type=int, default=100)
    args = p.parse_args()
    trial_overhead(10 if args.quick else args.trials)


def trial_overhead(n: int) -> float:
    """Run the measurement, print the side-by-side lines; return the overhead per trial (s)."""
    tmp = Path(tempfile.mkdtemp(prefix="dham-bench-"))
    os.environ["DHAM_RESULTS_DIR"] = str(tmp / "results")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"

    import ray

    from tracking import store
    from sweeps import noop
    from sweeps.runner import Preset, main as run_sweep
    from trainables.noop import noop_objective

    noop.SWEEP.presets["bench"] = Preset({"epochs": 1, "checkpoint": False},
                                         grid={"x": [i / n for i in range(n)], "y": [0.0]})
    t0 = time.perf_counter()
    ray.init(address="local", include_dashboard=False)
    ray_start = time.perf_counter() - t0

    t0 = time.perf_counter()
    for i in range(n):
        noop_objective(i / n, 0.0, 1)
    plain = time.perf_counter() - t0

    t0 = time.perf_counter()
    parent_id = run_sweep(noop.SWEEP, ["--preset", "bench", "--no-table",
                                       "--storage-path", str(tmp / "ray"),
                                       "--optuna-storage", str(tmp / "optuna.journal")])
    launch = time.perf_counter() - t0
    fit = store.client().get_run(parent_id).data.metrics["sweep_seconds"]
    ray.shutdown()
    print(f"\n{'what':44s} {'total s':>9s} {'s/trial':>9s}")
    print(f"{'plain loop, ' + str(n) + ' evaluations':44s} {plain:9.4f} {plain / n:9.6f}")
    print(f"{'runner, Tuner.fit (Tune+Optuna+MLflow)':44s} {fit:9.2f} {fit / n:9.3f}")
    print(f"{'runner, whole launch (MLflow setup + fit)':44s} {launch:9.2f} {launch / n:9.3f}")
    print(f"{'Ray start-up (once per sweep)':44s} {ray_start:9.2f}")
    overhead = (fit - plain) / n
    print(f"overhead per trial: {overhead:.3f} s (target <= 0.1 s): "
          f"{'MET' if overhead <= 0.1 else 'NOT MET'}")
    return overhead


if __name__ == "__main__":
    main()
