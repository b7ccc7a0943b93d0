"""DecisiveNets Tables 1-3 rebuilt from a sweep's trial runs, with the published numbers beside.

Each table is a :class:`TableSpec`: the trial params that index its rows, our metrics, and the
published rows (:mod:`dham_core.published`). Our finished trials are averaged over seeds
(mean and 95% Student-t confidence interval, :func:`analysis.render.mean_ci`) and joined with
the published rows; a published row the sweep did not run prints "—", never a number.

Tables 1 and 2 used "the best temperatures of a grid search": when a launch of the ell or c
sweep grids the temperatures too (the ``*-tuned`` presets), :func:`report_table` prints the
tuned table instead (:func:`best_cells`): per ell (c), the (t_init, t_final) cell with the best
mean validation accuracy over seeds, its test accuracy ± CI beside the paper's number. Trials
without a validation split (``val_size=0``, the paper's protocol) are selected on test
accuracy, and the table says so (optimistic, as the paper's own selection).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dham_core import published
from tracking import store
from analysis.render import markdown_table, mean_ci, number, pyplot, save_figure, write_table


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
    tuned_over: tuple[str, ...] = ()
    """Params a launch may also grid per row (the temperatures): then each row reports its best
    cell (:func:`best_cells`)."""


TEMPERATURES = ("t_init", "t_final")
ACCURACY_LABELS = {"r18_c10_acc": "paper R18/C10 (%)", "r50_c100_acc": "paper R50/C100 (%)"}

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
        plot_published=("r18_c10_acc", "r50_c100_acc"), tuned_over=TEMPERATURES),
    "decisivenets.table2": TableSpec(
        title="DecisiveNets Table 2 - accuracy vs c (groups per layer)",
        keys=("groups",), ours={"test_acc": "ours test acc (%)"},
        published=published.DECISIVENETS_TABLE2, published_labels=ACCURACY_LABELS,
        percent=("test_acc",), plot_metric="test_acc",
        plot_published=("r18_c10_acc", "r50_c100_acc"), tuned_over=TEMPERATURES),
    "decisivenets.table3": TableSpec(
        title="DecisiveNets Table 3 - accuracy vs temperatures",
        keys=("ell", "t_init", "t_final"), ours={"test_acc": "ours test acc (%)"},
        published=published.DECISIVENETS_TABLE3, published_labels=ACCURACY_LABELS,
        percent=("test_acc",), plot_metric="test_acc",
        plot_published=("r18_c10_acc", "r50_c100_acc")),
}


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


def to_markdown(table: pd.DataFrame, spec: TableSpec, context: str = "") -> str:
    """The table as Markdown: keys, ours (mean ± CI, n on the main metric), published."""
    header = list(spec.keys) + [spec.ours[m] for m in spec.ours] + list(
        spec.published_labels.values())
    rows = []
    for _, row in table.iterrows():
        cells = [f"{row[k]:g}" if isinstance(row[k], (int, float)) else str(row[k])
                 for k in spec.keys]
        for i, m in enumerate(spec.ours):
            cells.append(number(row.get(m), ci=row.get(f"{m}_ci"),
                                n=row.get("n") if i == 0 else None))
        cells += [number(row.get(c)) for c in spec.published_labels]
        rows.append(cells)
    return markdown_table(header, rows, title=spec.title, notes=[context] if context else ())


def plot(table: pd.DataFrame, spec: TableSpec, path: Path) -> Path:
    """Our plot metric (with its 95% CI) beside the published columns, one x tick per row."""
    plt = pyplot()
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
    return save_figure(fig, path)


def context_line(trials: pd.DataFrame, spec: TableSpec) -> str:
    """What 'ours' was run on (the spec's context params) and how many trials finished."""
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


def is_tuned(trials: pd.DataFrame, spec: TableSpec) -> bool:
    """Did the launch grid ``spec.tuned_over`` too (more than one cell for some row)?"""
    done = trials[trials["status"] == "FINISHED"] if "status" in trials else trials
    cols = list(spec.keys) + list(spec.tuned_over)
    if not spec.tuned_over or done.empty or not set(cols) <= set(done.columns):
        return False
    return bool((done.groupby(list(spec.keys))[list(spec.tuned_over)].nunique() > 1).any(axis=None))


def selection_metric(trials: pd.DataFrame) -> str:
    """``val_acc`` when every finished trial measured it, else ``test_acc`` (no validation
    split, ``val_size=0``: the only held-out accuracy there is)."""
    done = trials[trials["status"] == "FINISHED"]
    return "val_acc" if "val_acc" in done and done["val_acc"].notna().all() else "test_acc"


def best_cells(trials: pd.DataFrame, spec: TableSpec) -> tuple[pd.DataFrame, str]:
    """(per row key, the ``spec.tuned_over`` cell with the highest mean selection metric over
    seeds, with our test accuracy ± CI and the paper's accuracy; the metric selected on).
    Ties go to the first cell in sorted order (lowest t_init, then t_final)."""
    metric = selection_metric(trials)
    done = trials[trials["status"] == "FINISHED"]
    cells = list(spec.keys) + list(spec.tuned_over)
    rows = []
    for key, group in done.groupby(list(spec.keys), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        best = None
        for cell, runs in group.groupby(list(spec.tuned_over), sort=True):
            score = mean_ci(runs[metric])[0]
            if best is None or score > best[0]:
                best = (score, cell, runs)
        score, cell, runs = best
        test, ci, n = mean_ci(runs["test_acc"])
        rows.append({**{k: _norm_key(v) for k, v in zip(spec.keys, key)},
                     **dict(zip(spec.tuned_over, cell)), "selected_on": 100 * score,
                     "cells": group[list(spec.tuned_over)].drop_duplicates().shape[0],
                     "n": n, "test_acc": 100 * test, "test_acc_ci": 100 * ci})
    ours = pd.DataFrame(rows, columns=cells + ["selected_on", "cells", "n", "test_acc",
                                               "test_acc_ci"])
    paper = pd.DataFrame(spec.published)[list(spec.keys) + list(ACCURACY_LABELS)]
    for k in spec.keys:
        paper[k] = paper[k].map(_norm_key)
    table = paper.merge(ours, on=list(spec.keys), how="outer")
    return table.sort_values(list(spec.keys), ignore_index=True), metric


def tuned_markdown(table: pd.DataFrame, spec: TableSpec, metric: str, context: str) -> str:
    """The tuned table: key, chosen temperatures, the selection score, ours, the paper's."""
    header = list(spec.keys) + [f"best {t}" for t in spec.tuned_over] + [
        f"{metric} of best (%)", "ours test acc (%)", *ACCURACY_LABELS.values()]
    rows = []
    for _, row in table.iterrows():
        cells = [f"{row[k]:g}" for k in spec.keys]
        cells += [f"{row[t]:g}" if not pd.isna(row[t]) else "—" for t in spec.tuned_over]
        cells += [number(row["selected_on"]),
                  number(row["test_acc"], ci=row["test_acc_ci"], n=row["n"])]
        cells += [number(row[c]) for c in ACCURACY_LABELS]
        rows.append(cells)
    how = ("mean validation accuracy" if metric == "val_acc" else
           "mean TEST accuracy: the trials have no validation split (val_size=0), so the "
           "choice is optimistic, as the paper's own grid search")
    notes = [context, f"per {', '.join(spec.keys)}: the ({', '.join(spec.tuned_over)}) cell "
             f"with the best {how} over seeds; ties go to the lowest temperatures"]
    return markdown_table(header, rows, title=spec.title + " (best temperatures per row)",
                          notes=notes)


def report_table(spec: TableSpec, client, parent, stem: Path) -> tuple[str, list[Path]]:
    """Build ``spec``'s table from ``parent``'s trials (the tuned table when the launch also
    gridded ``spec.tuned_over``); write Markdown, Parquet and PNG."""
    trials = store.trials_frame(client, parent)
    if is_tuned(trials, spec):
        table, metric = best_cells(trials, spec)
        markdown = tuned_markdown(table, spec, metric, context_line(trials, spec))
        files = write_table(stem, markdown, table)
        files.append(plot(table, spec, stem.with_suffix(".png")))
        return markdown, files
    table = build_table(trials, spec)
    markdown = to_markdown(table, spec, context_line(trials, spec))
    files = write_table(stem, markdown, table)
    if spec.plot_metric and not table.empty:
        files.append(plot(table, spec, stem.with_suffix(".png")))
    return markdown, files

