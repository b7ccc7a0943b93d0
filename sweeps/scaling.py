"""Scaling experiment: a fixed workload run on 1, 2, ... workers; throughput and parallel efficiency.

    python sweeps/scaling.py                          # local: CPU slots 1..cores
    python sweeps/scaling.py --workers 1,2,4,8 --gpus-per-trial 1   # on a GPU cluster
    python sweeps/scaling.py --dry-run                # the launches it would make, validated

Each workload is a real sweep (its own MLflow parent run, tagged with this experiment's run)
launched through the shared runner with ``--max-concurrent W``; this script times each launch,
and logs one child run per (workload, W) under a ``scaling`` parent run with trials/hour,
problems/s and parallel efficiency = throughput(W) / (W x throughput(1)). The report (table +
plot) is rebuilt from MLflow by ``python -m analysis.report scaling``.

Workers are CPU slots of the local Ray here; on a cluster (``RAY_ADDRESS`` set, e.g. under
``ray job submit``) give ``--gpus-per-trial 1`` and W up to the cluster's GPUs.
"""
import argparse
import contextlib
import importlib
import io
import os
import sys

from tracking import store
from sweeps import launch, runner

# workload name -> (sweep module, runner flags fixing the work, problems per trial or None)
WORKLOADS = {
    "dham": ("sweeps.ell", ["--preset", "smoke", "--seeds", "2", "--set", "epochs=1"], None),
    "resonator": ("sweeps.resonator_capacity", ["--preset", "scaling", "--seeds", "2"],
                  "problems_done"),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", default=None,
                   help="comma-separated worker counts (default: 1..number of CPUs)")
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help=f"comma-separated, from {', '.join(WORKLOADS)}")
    p.add_argument("--gpus-per-trial", type=float, default=0.0)
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--no-table", action="store_true")
    p.add_argument("--dry-run", action="store_true",
                   help="validate every workload's launch, print the plans and exit, starting "
                        "nothing (no Ray, MLflow or Optuna)")
    args = p.parse_args(argv)
    try:
        args.workers = ([int(w) for w in args.workers.split(",")] if args.workers
                        else list(range(1, (os.cpu_count() or 1) + 1)))
    except ValueError:
        p.error(f"--workers must be comma-separated integers (got {args.workers!r})")
    if not args.workers or min(args.workers) < 1:
        p.error(f"--workers must be integers >= 1 (got {args.workers})")
    args.workloads = args.workloads.split(",")
    bad = [w for w in args.workloads if w not in WORKLOADS]
    if bad:
        p.error(f"--workloads must be from {', '.join(WORKLOADS)} (got {', '.join(bad)})")
    return args


def workload_sweep(name: str):
    """The workload's sweep. Plugin point: a workload is any sweep script, named by module, so
    this experiment imports no other sweep script (sweeps never import each other)."""
    return importlib.import_module(WORKLOADS[name][0]).SWEEP


def launch_argv(args, flags: list[str], workers: int) -> list[str]:
    """The runner's command line of one workload on ``workers`` workers."""
    return flags + ["--max-concurrent", str(workers), "--no-table", "--resume", "never",
                    "--cpus-per-trial", str(args.cpus_per_trial),
                    "--gpus-per-trial", str(args.gpus_per_trial)]


def dry_run(args) -> None:
    """``--dry-run``: every launch validated by the runner's own dry run (the plan of each
    workload printed once), then the total; nothing is started."""
    trials = 0
    for name in args.workloads:
        sweep, flags = workload_sweep(name), WORKLOADS[name][1]
        for workers in sorted(args.workers, reverse=True):
            argv = launch_argv(args, flags, workers)
            with contextlib.redirect_stdout(io.StringIO()) as plan:
                runner.main(sweep, argv + ["--dry-run"])
            if workers == max(args.workers):
                print(plan.getvalue(), end="")
            _, points = runner.planned_configs(sweep, runner.build_parser(sweep).parse_args(argv))
            trials += len(points)
    launches = len(args.workloads) * len(args.workers)
    print(f"[dry-run] scaling: {launches} launches ({', '.join(args.workloads)} on "
          f"{', '.join(map(str, sorted(args.workers)))} worker(s)), {trials} trials; nothing "
          "started")
    print(f"[dry-run] plan: script=scaling preset=- search=grid trials={trials} cells=- "
          f"resources={args.cpus_per_trial:g}CPU,{args.gpus_per_trial:g}GPU cost=-")


def main(argv=None) -> str | None:
    """Run the scaling experiment; return its MLflow parent run id (None for ``--dry-run``)."""
    args = parse_args(argv)
    uri = store.default_tracking_uri()
    try:
        launch.check_local_gpus(args.gpus_per_trial)
        if not args.dry_run:  # opening the store may create it
            launch.check_tracking(uri)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    if args.dry_run:
        dry_run(args)
        return None
    client = store.client(uri)
    experiment_id = store.ensure_experiment(client, "scaling")
    parent_id = client.create_run(
        experiment_id, run_name="scaling",
        tags={store.TAG_ROLE: store.ROLE_PARENT, store.TAG_SWEEP: "scaling",
              store.TAG_TABLE: "platform.scaling", store.TAG_GIT_COMMIT: launch.git_commit(),
              "mlflow.source.name": "sweeps/scaling.py"}).info.run_id
    client.log_param(parent_id, "workers", ",".join(map(str, args.workers)))
    client.log_param(parent_id, "workloads", ",".join(args.workloads))
    client.log_param(parent_id, "ray_address", os.environ.get("RAY_ADDRESS", "local"))
    launch.init_ray()  # start-up is not part of any measurement
    status = "FAILED"
    try:
        for name in args.workloads:
            _, flags, problems_key = WORKLOADS[name]
            sweep = workload_sweep(name)
            base = None
            for workers in sorted(args.workers):
                print(f"[scaling] {name}: {workers} worker(s)")
                sub_id = runner.main(sweep, launch_argv(args, flags, workers))
                client.set_tag(sub_id, "scaling.parent", parent_id)
                wall = client.get_run(sub_id).data.metrics["sweep_seconds"]  # Tuner.fit time
                sub = store.trials_frame(client, client.get_run(sub_id))
                done = sub[sub["status"] == "FINISHED"]
                problems = float(done[problems_key].sum()) if problems_key in done else 0.0
                throughput = len(done) / wall * 3600
                base = base or throughput / workers
                metrics = {"workers": workers, "wall_s": wall, "trials": len(done),
                           "trials_per_hour": throughput,
                           "problems_per_s": problems / wall if problems else 0.0,
                           "efficiency": throughput / (workers * base)}
                child = client.create_run(experiment_id, run_name=f"{name}-w{workers}",
                                          tags={store.TAG_PARENT: parent_id,
                                                store.TAG_ROLE: store.ROLE_TRIAL,
                                                store.TAG_TRIAL_ID: f"{name}-w{workers}",
                                                "scaling.sweep_run": sub_id})
                client.log_param(child.info.run_id, "workload", name)
                client.log_param(child.info.run_id, "workers", workers)
                for key, value in metrics.items():
                    client.log_metric(child.info.run_id, key, float(value))
                client.set_terminated(child.info.run_id, "FINISHED")
                print(f"[scaling] {name} x{workers}: {wall:.1f} s, "
                      f"{throughput:.0f} trials/h, efficiency {metrics['efficiency']:.2f}")
        status = "FINISHED"
    finally:
        client.set_terminated(parent_id, status)
    if not args.no_table:
        from analysis.report import report  # the one way from sweeps into analysis

        report("scaling", run_id=parent_id, tracking_uri=uri)
    return parent_id


if __name__ == "__main__":
    main()
