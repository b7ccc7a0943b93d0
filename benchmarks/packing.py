"""Packing, measured: one resonator grid run end to end through the runner twice, as one Ray
trial per cell and as packed trials (many cells per trial), wall times printed side by side.

    python benchmarks/packing.py            # 1,000 cells (per-cell trials: many minutes)
    python benchmarks/packing.py --quick    # 50 cells (the test suite's smoke run)

Both launches are real ``resonator_capacity`` sweeps (``sweeps.runner.main``: Ray Tune, Optuna
grid, MLflow parent and child runs) in a temporary MLflow store, Optuna journal and Ray folder,
on one Ray started beforehand. The grid is ``a`` x ``noise`` x seed at D = 256, k = 16, V = 3,
M = 5, 8 problems per cell, max_it 100 (a cell costs about 15 ms). Per cell: ``a`` and
``noise`` are grid axes and ``--seeds`` repeats them, one trial per cell. Packed: ``a`` and
``noise`` are list-valued config keys (pack axes, ``trainables.resonator``), one trial per
seed, whose cells go to Tune in one result (``trainables.pack.report_pack``; MLflow still
gets one step per cell, ``tracking.cells``). The cells each launch logged and their own solve
time (``seconds``) are read back from MLflow, and the machine's load average is printed before
and after, since it may be shared.
"""
import argparse
import os
import tempfile
import time
from pathlib import Path

from machine import machine_load  # benchmarks/ is sys.path[0] when run as a script

CELL = {"D": 256, "k": 16, "V": 3, "M": 5, "num_problems": 8, "max_it": 100}
A_VALUES = [1, 2, 3, 4, 5]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="50 cells instead of 1,000")
    args = p.parse_args()
    with machine_load():
        packing(noises=5, seeds=2) if args.quick else packing(noises=20, seeds=10)


def noise_values(n: int) -> list[float]:
    """``n`` attention-noise scales inside the sweep's space (0.1 .. 1.5)."""
    return [round(0.1 + 1.3 * i / max(n - 1, 1), 4) for i in range(n)]


def packing(noises: int, seeds: int) -> float:
    """Run both launches and print the comparison; return the speed-up (per-cell / packed)."""
    tmp = Path(tempfile.mkdtemp(prefix="dham-packing-"))
    os.environ["DHAM_RESULTS_DIR"] = str(tmp / "results")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"

    import ray

    from sweeps import resonator_capacity
    from sweeps.runner import Preset, main as run_sweep

    noise = noise_values(noises)
    cells = len(A_VALUES) * len(noise) * seeds
    presets = resonator_capacity.SWEEP.presets
    presets["bench-cells"] = Preset(dict(CELL), grid={"a": A_VALUES, "noise": noise})
    presets["bench-packed"] = Preset({**CELL, "a": A_VALUES, "noise": noise}, grid={})

    ray.init(address="local", include_dashboard=False)
    rows = []
    try:
        for label, preset in [("one trial per cell", "bench-cells"),
                              ("packed (one trial per seed)", "bench-packed")]:
            t0 = time.perf_counter()
            parent_id = run_sweep(resonator_capacity.SWEEP, [
                "--preset", preset, "--seeds", str(seeds), "--no-table", "--resume", "never",
                "--storage-path", str(tmp / "ray"),
                "--optuna-storage", str(tmp / "optuna.journal")])
            wall = time.perf_counter() - t0
            rows.append((label, *logged_cells(parent_id), wall))
    finally:
        ray.shutdown()

    print(f"\npacking benchmark: {cells} resonator cells (a x noise x seed = "
          f"{len(A_VALUES)} x {len(noise)} x {seeds}), {CELL}")
    print(f"\n{'launch':30s} {'trials':>7s} {'cells':>7s} {'solve s':>9s} {'wall s':>9s} "
          f"{'s/cell':>9s}")
    for label, trials, logged, solve, wall in rows:
        print(f"{label:30s} {trials:7d} {logged:7d} {solve:9.2f} {wall:9.2f} {wall / cells:9.4f}")
    print("(solve s: the cells' own resonator time as logged, summed; the rest of the wall time "
          "is Ray Tune, Optuna and MLflow)")
    (*_, per_cell), (*_, packed) = rows
    ratio = per_cell / packed
    print(f"packed is {ratio:.2f}x faster ({per_cell:.2f} s / {packed:.2f} s; target >= 10x): "
          f"{'MET' if ratio >= 10 else 'NOT MET'}")
    return ratio


def logged_cells(parent_id: str) -> tuple[int, int, float]:
    """Read back from MLflow: (trials, cells logged by finished trials, the cells' summed
    ``seconds``). A one-cell trial's last values are its cell; a pack's are read per step."""
    from tracking import store

    client = store.client()
    runs = store.child_runs(client, client.get_run(parent_id))
    cells, solve = 0, 0.0
    for run in runs:
        if run.info.status != "FINISHED":
            continue
        cells += int(run.data.metrics["cell"])
        if run.data.metrics["cell"] == 1:
            solve += run.data.metrics["seconds"]
        else:
            solve += sum(m.value for m in client.get_metric_history(run.info.run_id, "seconds"))
    return len(runs), cells, solve


if __name__ == "__main__":
    main()
