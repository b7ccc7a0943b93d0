"""Regenerate a paper table from a sweep's MLflow runs, with the published numbers beside ours.

    python -m analysis.tables temperature            # latest sweep of experiment "temperature"
    python -m analysis.tables ell --run-id <parent>  # a named sweep

Reads MLflow only. Aggregates the finished trials over seeds (mean and 95% confidence
interval, Student t), prints the table, writes Markdown, Parquet (pyarrow) and a PNG plot to
``results/tables/`` (under ``DHAM_RESULTS_DIR`` when set) and logs all three to the sweep's parent run. A row the paper has but the
sweep did not run prints "—", never a number.
"""
from __future__ import annotations

import argparse
import importlib
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dham_core import published
from tracking import store

MISSING = "—"


@dataclass
class TableSpec:
    """How one paper table is rebuilt from trial runs."""

    title: str
    keys: tuple[str, ...]
    """Trial params that index the rows (the seed is averaged over)."""
    ours: dict[str, str]
    """Our columns: metric key in MLflow -> column label."""
    published: list[dict]
    """Published rows: the keys plus the published columns."""
    published_labels: dict[str, str]
    """Published column -> label."""
    percent: tuple[str, ...] = ()
    """Metrics stored as fractions that print as percentages."""
    plot_metric: str | None = None
    """Our metric drawn against ``plot_published`` in the PNG."""
    plot_published: tuple[str, ...] = ()
    context: tuple[str, ...] = ("dataset", "arch", "width", "epochs")
    """Trial params printed above the table (what 'ours' was run on)."""


DECISIVENETS_ACC = {"r18_c10_acc": "paper R18/C10 (%)", "r50_c100_acc": "paper R50/C100 (%)"}

TABLES: dict[str, TableSpec] = {
    "decisivenets.table1": TableSpec(
        title="DecisiveNets Table 1 - accuracy and multiplications vs ell",
        keys=("ell",),
        ours={"test_acc": "ours test acc (%)", "mults_analytic": "ours mults (analytic)",
              "mults_measured": "ours mults (measured)"},
        published=published.DECISIVENETS_TABLE1,
        published_labels={"r18_c10_acc": "paper R18/C10 (%)", "r18_mults": "paper R18 mults",
                           "r50_c100_acc": "paper R50/C100 (%)", "r50_mults": "paper R50 mults"},
        percent=("test_acc",), plot_metric="test_acc",
        plot_published=("r18_c10_acc", "r50_c100_acc")),
    "decisivenets.table2": TableSpec(
        title="DecisiveNets Table 2 - accuracy vs c (groups per layer)",
        keys=("groups",), ours={"test_acc": "ours test acc (%)"},
        published=published.DECISIVENETS_TABLE2, published_labels=DECISIVENETS_ACC,
        percent=("test_acc",), plot_metric="test_acc",
        plot_published=("r18_c10_acc", "r50_c100_acc")),
    "decisivenets.table3": TableSpec(
        title="DecisiveNets Table 3 - accuracy vs temperatures",
        keys=("ell", "t_init", "t_final"), ours={"test_acc": "ours test acc (%)"},
        published=published.DECISIVENETS_TABLE3, published_labels=DECISIVENETS_ACC,
        percent=("test_acc",), plot_metric="test_acc",
        plot_published=("r18_c10_acc", "r50_c100_acc")),
}


# Figure-style reports that are not one paper table: table id -> "module:function". The
# function takes (mlflow_client, parent_run, out_stem: Path) and returns (markdown, files),
# files being the Markdown/Parquet/PNG paths it wrote; report() prints and logs them.
REPORTERS: dict[str, str] = {
    "platform.scaling": "analysis.platform:scaling_report",
    "resonator.capacity": "analysis.resonator:capacity_report",
    "resonator.vs_dense": "analysis.resonator:vs_dense_report",
    "krotov.mnist_power": "analysis.dam:report_power",
    "krotov.capacity": "analysis.dam:report_capacity",
    "krotov.adversarial": "analysis.dam:report_adversarial",
    "gripon.clique_capacity": "analysis.clique:report_clique",
}


def mean_ci(values) -> tuple[float, float, int]:
    """Mean, half-width of the 95% Student-t confidence interval (nan for n < 2), n."""
    from scipy import stats

    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(vals)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(vals) / n
    if n < 2:
        return mean, math.nan, n
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    return mean, stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n), n


def _norm_key(value):
    """Row keys compare as numbers (MLflow gives '1' back as 1, the paper writes 1.0)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def aggregate(trials: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """One row per key combination: n, and mean/ci of each of our metrics."""
    columns = list(spec.keys) + ["n"] + [c for m in spec.ours for c in (m, f"{m}_ci")]
    if trials.empty or not set(spec.keys) <= set(trials.columns):
        return pd.DataFrame(columns=columns)
    done = trials[trials["status"] == "FINISHED"]
    rows = []
    for key, group in done.groupby(list(spec.keys), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = {k: _norm_key(v) for k, v in zip(spec.keys, key)}
        for i, metric in enumerate(spec.ours):
            values = group[metric] if metric in group else []
            scale = 100.0 if metric in spec.percent else 1.0
            mean, ci, n = mean_ci(values)
            row[metric], row[f"{metric}_ci"] = mean * scale, ci * scale
            if i == 0:  # n counts the trials behind the table's first (main) metric
                row["n"] = n
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def build_table(trials: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Published rows (always present) joined with ours; our extra rows are appended."""
    ours = aggregate(trials, spec)
    paper = pd.DataFrame(spec.published)
    for k in spec.keys:
        paper[k] = paper[k].map(_norm_key)
        ours[k] = ours[k].map(_norm_key)
    return paper.merge(ours, on=list(spec.keys), how="outer").sort_values(list(spec.keys),
                                                                           ignore_index=True)


def _fmt_number(value, ci=None, n=None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    text = f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.2f}"
    if ci is not None and not math.isnan(ci):
        text += f" ± {ci:.2f}"
    if n is not None and not (isinstance(n, float) and math.isnan(n)):
        text += f" (n={int(n)})"
    return text


def to_markdown(table: pd.DataFrame, spec: TableSpec, context: str = "") -> str:
    header = list(spec.keys) + [spec.ours[m] for m in spec.ours] + list(
        spec.published_labels.values())
    lines = [f"### {spec.title}", ""]
    if context:
        lines += [context, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = [f"{row[k]:g}" if isinstance(row[k], (int, float)) else str(row[k])
                 for k in spec.keys]
        for i, m in enumerate(spec.ours):
            cells.append(_fmt_number(row.get(m), row.get(f"{m}_ci"),
                                     row.get("n") if i == 0 else None))
        cells += [_fmt_number(row.get(c)) for c in spec.published_labels]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(table: pd.DataFrame, spec: TableSpec, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [", ".join(f"{k}={row[k]:g}" for k in spec.keys) for _, row in table.iterrows()]
    x = range(len(labels))
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(labels) + 2), 4.5))
    m = spec.plot_metric
    ci = table[f"{m}_ci"].fillna(0)
    ax.errorbar(x, table[m], yerr=ci, fmt="o", capsize=3, label=spec.ours[m] + " (95% CI)")
    for col in spec.plot_published:
        ax.plot(x, table[col], "s--", alpha=0.7, label=spec.published_labels[col])
    ax.set_xticks(list(x), labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)" if m in spec.percent else m)
    ax.set_title(spec.title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _context(trials: pd.DataFrame, spec: TableSpec) -> str:
    parts = []
    for key in spec.context:
        if key in trials:
            values = sorted({str(v) for v in trials[key].dropna()})
            if values:
                parts.append(f"{key}={'/'.join(values)}")
    finished = int((trials["status"] == "FINISHED").sum()) if "status" in trials else 0
    failed = int((trials["status"] == "FAILED").sum()) if "status" in trials else 0
    return (f"ours: {', '.join(parts) or 'see run params'}; {finished} finished trials, "
            f"{failed} failed; mean ± 95% CI over seeds")


def report(sweep: str, run_id: str | None = None, tracking_uri: str | None = None,
           out_dir: Path | None = None, log: bool = True) -> str:
    """Rebuild the table of a sweep's parent run; print it and write/log the files."""
    client = store.client(tracking_uri)
    parent = store.find_parent_run(client, sweep, run_id)
    table_id = parent.data.tags.get(store.TAG_TABLE)
    trials = store.trials_frame(client, parent)
    spec = TABLES.get(table_id)
    out_dir = Path(out_dir or store.results_dir() / "tables")
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{sweep}-{parent.info.run_id[:8]}"
    if table_id in REPORTERS:
        module, function = REPORTERS[table_id].split(":")
        markdown, files = getattr(importlib.import_module(module), function)(client, parent, stem)
        print(markdown)
        if log:
            for f in files:
                client.log_artifact(parent.info.run_id, str(f), artifact_path="tables")
        print(f"[analysis] wrote {', '.join(str(f) for f in files)}; "
              f"logged to run {parent.info.run_id}")
        return markdown
    if spec is None:  # no paper table (e.g. the noop sweep): the trials themselves
        table = trials
        markdown = f"### {sweep}: {len(trials)} trials (no paper table)\n\n" + (
            trials.drop(columns=["run_id"], errors="ignore").to_string(index=False) + "\n")
    else:
        table = build_table(trials, spec)
        markdown = to_markdown(table, spec, _context(trials, spec))
    print(markdown)
    stem.with_suffix(".md").write_text(markdown)
    table.to_parquet(stem.with_suffix(".parquet"), engine="pyarrow", index=False)
    files = [stem.with_suffix(".md"), stem.with_suffix(".parquet")]
    if spec is not None and spec.plot_metric and not table.empty:
        plot(table, spec, stem.with_suffix(".png"))
        files.append(stem.with_suffix(".png"))
    if log:
        for f in files:
            client.log_artifact(parent.info.run_id, str(f), artifact_path="tables")
    print(f"[analysis] wrote {', '.join(str(f) for f in files)}; logged to run {parent.info.run_id}")
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
