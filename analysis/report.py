"""The one entry to a sweep's report: build it from MLflow, print it, write it, log it.

    python -m analysis.report temperature            # latest sweep of experiment "temperature"
    python -m analysis.report ell --run-id <parent>  # a named sweep

Reads MLflow only. The sweep's parent run names its report by table id (tag ``sweep.table``);
:data:`REPORTS` maps each id to a report function ``(mlflow_client, parent_run, out_stem)``
that returns ``(markdown, files)``, the files being what it wrote (Markdown, Parquet, PNG) under
``results/tables/`` (under ``DHAM_RESULTS_DIR`` when set). :func:`report` prints the Markdown
and logs the files to the parent run under ``tables/``. A sweep without a registered report
(e.g. the no-op sweep, table id ``trials``) gets the list of its trials.

The runner calls :func:`report` at the end of every sweep; it is the only name of ``analysis``
that ``sweeps`` uses.
"""
from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path
from typing import Callable

from tracking import store
from analysis import (clique, decisivenets, hopfield, hopfield_adversarial, hopfield_capacity,
                      platform, resonator, resonator_segments)
from analysis import wins
from analysis import robustness
from analysis import fewshot
from analysis import dham_pareto
from analysis import resonator_head
from analysis.render import write_table


def trials_report(client, parent, stem: Path) -> tuple[str, list[Path]]:
    """No paper table: the sweep's trials themselves (params and last metric values)."""
    trials = store.trials_frame(client, parent)
    sweep = parent.data.tags.get(store.TAG_SWEEP, parent.info.run_name)
    markdown = f"### {sweep}: {len(trials)} trials (no paper table)\n\n" + (
        trials.drop(columns=["run_id"], errors="ignore").to_string(index=False) + "\n")
    return markdown, write_table(stem, markdown, trials)


# Table id (a sweep's ``sweep.table`` tag) -> report function.
REPORTS: dict[str, Callable] = {
    **{table_id: partial(decisivenets.report_table, spec)
       for table_id, spec in decisivenets.TABLES.items()},
    "decisivenets.pareto": dham_pareto.report_pareto,
    "platform.scaling": platform.scaling_report,
    "resonator.capacity": resonator.capacity_report,
    "resonator.vs_dense": resonator.vs_dense_report,
    "resonator.head": resonator_head.report_head,
    "resonator.segments": resonator_segments.report_segments,
    "krotov.mnist_power": hopfield.report_power,
    "krotov.capacity": hopfield_capacity.report_capacity,
    "krotov.adversarial": hopfield_adversarial.report_adversarial,
    "gripon.clique_capacity": clique.report_clique,
    "decisivenets.wins": wins.report_wins,
    "decisivenets.table5": robustness.report_robustness,
    "decisivenets.table4": fewshot.report_fewshot,
    "trials": trials_report,
}


def report(sweep: str, run_id: str | None = None, tracking_uri: str | None = None,
           out_dir: Path | None = None, log: bool = True) -> str:
    """Build the report of sweep ``sweep`` (its latest parent run, or ``run_id``); print it,
    write its files to ``out_dir`` (default ``results/tables``), log them to the parent run
    unless ``log`` is false; return the Markdown."""
    client = store.client(tracking_uri)
    parent = store.find_parent_run(client, sweep, run_id)
    table_id = parent.data.tags.get(store.TAG_TABLE)
    out_dir = Path(out_dir or store.results_dir() / "tables")
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{sweep}-{parent.info.run_id[:8]}"
    build = REPORTS.get(table_id, trials_report)
    markdown, files = build(client, parent, stem)
    print(markdown)
    if log:
        for f in files:
            client.log_artifact(parent.info.run_id, str(f), artifact_path="tables")
    print(f"[analysis] wrote {', '.join(str(f) for f in files)}; "
          f"logged to run {parent.info.run_id}")
    return markdown


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("sweep", help="sweep (MLflow experiment) name, e.g. temperature, ell, c")
    p.add_argument("--run-id", help="parent run id (default: the latest sweep)")
    p.add_argument("--out-dir", type=Path, default=None)
    p.add_argument("--no-log", action="store_true", help="do not log the files to MLflow")
    args = p.parse_args(argv)
    report(args.sweep, args.run_id, out_dir=args.out_dir, log=not args.no_log)


if __name__ == "__main__":
    main()
