"""Per-trial overhead of the sweep platform, and where it goes: N no-op trials through the
runner (Ray Tune + Optuna + MLflow parent/child tracking), repeated, beside the same N
evaluations in a plain Python loop.

    python benchmarks/trial_overhead.py            # 100 trials x 3 repeats; target <= 0.03 s/trial
    python benchmarks/trial_overhead.py --quick    # 10 trials x 3 repeats

Every repeat is a whole launch of the no-op grid (``sweeps/noop.py``, one epoch, no checkpoint)
in a temporary MLflow store, Optuna journal and Ray results folder, on one Ray started before
(its start-up is printed apart: it is paid once per sweep). The breakdown is measured, not
estimated: the driver-side calls are wrapped with timers (Optuna's ask and tell with their
storage writes, the MLflow callback's enqueue, Tune's result loggers, Tune's experiment-state
save, Tune's actor start/reset/stop calls, the waits for Ray events), and the trainable stamps
the wall time when it is entered and when it reports, so the latency from Tune scheduling a
trial to the trainable running on its actor (started or reused) and from the report to the
driver's callback are read per trial. The driver rows add up to the total (Tuner.fit); the
latencies and the MLflow thread overlap them (trials run while the driver works), and the
MLflow queue drained after the fit is printed apart. The median of the repeats is printed with
the min and max, so one noisy repeat cannot pass or fail the target.
"""
from __future__ import annotations

import argparse
import collections
import functools
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from machine import machine_load  # benchmarks/ is sys.path[0] when run as a script

TARGET_S = 0.03


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="10 trials per repeat")
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3, help="launches measured (default 3)")
    args = p.parse_args()
    with machine_load():
        trial_overhead(10 if args.quick else args.trials, args.repeats)


class Timers:
    """Seconds spent in wrapped callables, by label, exclusive of wrapped calls made inside
    them (Tune's stop of a trial runs the searcher's tell and the loggers: each is counted
    once, in its own row); plus per-trial stamps and counts."""

    def __init__(self):
        self._local = threading.local()  # per thread: the open calls' time spent in children
        self.reset()

    def reset(self):
        self.spent = collections.Counter()
        self.stamps: dict[str, dict] = collections.defaultdict(dict)  # trial id -> {what: t}
        self.counts = collections.Counter()

    def wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)
        local = self._local

        @functools.wraps(original)
        def timed(*a, **kw):
            stack = local.__dict__.setdefault("stack", [])
            stack.append(0.0)
            t0 = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                elapsed = time.perf_counter() - t0
                self.spent[label] += elapsed - stack.pop()
                if stack:
                    stack[-1] += elapsed

        setattr(owner, name, timed)


DRIVER_ROWS = [  # the driver thread's time, each wrapped call counted in one row
    "Optuna ask (enqueue + ask, storage writes)",  # GridSearch.suggest
    "Optuna tell (storage write)",  # OptunaSearch.on_trial_complete
    "MLflow callback (enqueue only)",  # MLflowTrialCallback._put
    "Tune result loggers (result.json, csv, ...)",  # Tune's LoggerCallback hooks
    "Tune experiment-state save (checkpoint)",  # TuneController.checkpoint
    "Tune actor start/reset/stop calls",  # actor scheduling on the driver
    "waiting for Ray events (ray.wait)",  # idle, or the trials' IPC
]
BACKGROUND = "MLflow delivery thread (busy, in the background)"
DRAIN = "after the fit: MLflow queue drain (not in total)"


def instrument(timers: Timers) -> None:
    """Wrap the driver-side calls (once per process; ``timers.reset()`` between launches)."""
    import ray
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback
    from ray.tune.search.optuna import OptunaSearch

    from sweeps.search import GridSearch
    from tracking.callback import MLflowTrialCallback
    from tracking.delivery import Delivery

    rows = DRIVER_ROWS
    timers.wrap(GridSearch, "suggest", rows[0])
    timers.wrap(OptunaSearch, "on_trial_complete", rows[1])
    timers.wrap(MLflowTrialCallback, "_put", rows[2])
    for cls in (JsonLoggerCallback, CSVLoggerCallback, TBXLoggerCallback):
        for hook in ("log_trial_start", "log_trial_result", "log_trial_end"):
            timers.wrap(cls, hook, rows[3])
    timers.wrap(TuneController, "checkpoint", rows[4])
    for name in ("_schedule_trial_actor", "_on_trial_reset", "_schedule_trial_stop",
                 "_cleanup_cached_actors"):
        timers.wrap(TuneController, name, rows[5])
    timers.wrap(ray, "wait", rows[6])  # the actor manager's wait for the next event
    timers.wrap(Delivery, "deliver", BACKGROUND)
    timers.wrap(MLflowTrialCallback, "close", DRAIN)

    reset, started = TuneController._schedule_trial_reset, TuneController._actor_started

    def stamped_reset(self, trial, *a, **kw):  # a cached actor is handed this trial
        timers.stamps[trial.trial_id]["ready"] = time.time()
        return reset(self, trial, *a, **kw)

    def stamped_start(self, tracked_actor, log="STARTED"):  # an actor is up (new or reset)
        timers.counts[log.lower()] += 1
        if log == "STARTED":
            timers.stamps[self._actor_to_trial[tracked_actor].trial_id]["ready"] = time.time()
        return started(self, tracked_actor, log)

    TuneController._schedule_trial_reset = stamped_reset
    TuneController._actor_started = stamped_start
    on_result = MLflowTrialCallback.on_trial_result

    def stamped_result(self, iteration, trials, trial, result, **info):
        stamps = timers.stamps[trial.trial_id]
        stamps.update(received=time.time(), entered=result.get("t_enter"),
                      reported=result.get("t_report"), pid=result.get("pid"))
        return on_result(self, iteration, trials, trial, result, **info)

    MLflowTrialCallback.on_trial_result = stamped_result


def stamped_noop(config: dict) -> None:
    """``trainables.noop.train_noop``'s work at one epoch without a checkpoint, with the wall
    time of its entry and of its report (and the pid of its actor) in the result, for the
    latency rows."""
    from ray import tune

    from trainables.noop import noop_objective

    entered = time.time()
    score = noop_objective(float(config["x"]), float(config["y"]), 1)
    tune.report({"epoch": 1, "score": score, "train_loss": 1.0 - score, "t_enter": entered,
                 "t_report": time.time(), "pid": os.getpid()})


TIMERS = Timers()


def one_launch(n: int, tmp: Path) -> dict:
    """One launch of ``n`` no-op trials; returns its per-trial figures (seconds)."""
    from sweeps import noop
    from sweeps.plan import Preset
    from sweeps.runner import main as run_sweep
    from tracking import store

    timers = TIMERS
    timers.reset()
    sweep = noop.SWEEP
    sweep.presets["bench"] = Preset({"epochs": 1}, grid={"x": [i / n for i in range(n)],
                                                          "y": [0.0]})
    saved_trainable, sweep.trainable = sweep.trainable, stamped_noop
    try:
        parent_id = run_sweep(sweep, [
            "--preset", "bench", "--no-table", "--resume", "never",
            "--storage-path", str(tmp / "ray"), "--optuna-storage", str(tmp / "optuna.journal")])
    finally:
        sweep.trainable = saved_trainable
    fit = store.client().get_run(parent_id).data.metrics["sweep_seconds"]
    row = {"total": fit / n}
    for label in DRIVER_ROWS:
        row[label] = timers.spent[label] / n
    row["rest of Tune's loop (scheduling, results, callbacks)"] = (
        fit - sum(timers.spent[label] for label in DRIVER_ROWS)) / n
    stamps = [s for s in timers.stamps.values() if s.get("entered") and s.get("ready")]
    row["latency: actor up or reset sent -> trainable entered"] = statistics.median(
        s["entered"] - s["ready"] for s in stamps)
    row["latency: report -> driver callback"] = statistics.median(
        s["received"] - s["reported"] for s in stamps)
    row[BACKGROUND] = timers.spent[BACKGROUND] / n
    row[DRAIN] = timers.spent[DRAIN] / n
    row["actors started / reused"] = (timers.counts["started"], timers.counts["reused"])
    row["processes that ran trials"] = len({s.get("pid") for s in stamps})
    return row


def plain_loop(n: int) -> float:
    from trainables.noop import noop_objective

    t0 = time.perf_counter()
    for i in range(n):
        noop_objective(i / n, 0.0, 1)
    return time.perf_counter() - t0


def trial_overhead(n: int, repeats: int = 3) -> float:
    """Run the measurement and print the breakdown; return the median overhead per trial (s)."""
    tmp = Path(tempfile.mkdtemp(prefix="dham-bench-"))
    os.environ["DHAM_RESULTS_DIR"] = str(tmp / "results")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"

    import ray

    t0 = time.perf_counter()
    ray.init(address="local", include_dashboard=False)
    ray_start = time.perf_counter() - t0
    plain = plain_loop(n)
    try:
        instrument(TIMERS)
        rows = [one_launch(n, tmp) for _ in range(repeats)]
    finally:
        ray.shutdown()
    print(f"\nper-trial breakdown, {n} no-op trials per launch, {repeats} launches "
          f"(ms per trial: median [min, max] over the launches)")
    print(f"{'what':54s} {'median':>8s} {'min':>8s} {'max':>8s}")
    for key in rows[0]:
        values = [r[key] for r in rows]
        if isinstance(values[0], tuple) or isinstance(values[0], int):
            print(f"{key:54s} {'  '.join(str(v) for v in values):>26s}  (per launch)")
            continue
        ms = [v * 1e3 for v in values]
        print(f"{key:54s} {statistics.median(ms):8.2f} {min(ms):8.2f} {max(ms):8.2f}")
    totals = sorted(r["total"] for r in rows)
    fit = statistics.median(totals)
    print(f"\n{'what':44s} {'total s':>9s} {'s/trial':>9s}")
    print(f"{'plain loop, ' + str(n) + ' evaluations':44s} {plain:9.4f} {plain / n:9.6f}")
    print(f"{'runner, Tuner.fit (Tune+Optuna+MLflow)':44s} {fit * n:9.3f} {fit:9.4f}  "
          f"(median of {repeats} launches)")
    print(f"{'Ray start-up (once per sweep)':44s} {ray_start:9.2f}")
    overhead = (fit * n - plain) / n
    print(f"overhead per trial: {overhead:.4f} s (median of {repeats}; min {totals[0]:.4f}, max "
          f"{totals[-1]:.4f}) (target <= {TARGET_S} s): "
          f"{'MET' if overhead <= TARGET_S else 'NOT MET'}")
    sys.stdout.flush()
    return overhead


if __name__ == "__main__":
    main()
