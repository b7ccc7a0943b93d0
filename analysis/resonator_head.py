"""Thesis Tables 4.1-4.6 (the resonator classifier head) rebuilt from a sweep's trial runs.

First our configurations (one row per distinct head set-up, mean ± 95% CI over seeds of the three
test accuracies — resonator, overlap, segment-wise — and the head's parameter count), then each
thesis table with its published accuracies beside ours where our ImageNet trials match the
table's settings ("—" otherwise, never a made-up number), then the baselines (MobileNet-V2 with
its FC layer, the identity classifier) and the parameter counts. Published numbers:
``dham_core.published.RESONATOR_HEAD_*``.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from dham_core import published
from tracking import store
from analysis.render import (MISSING, finished, markdown_table, mean_ci, number, pyplot, save_figure,
                             write_table)

ACCURACIES = {"resonator_acc": "resonator", "overlap_acc": "overlap", "segment_acc": "segment-wise"}
GROUP = ("dataset", "factors", "size", "k", "pooling", "loss", "training", "epochs")


def ours(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct head set-up: the ``GROUP`` params, n, mean/ci (%) of each accuracy,
    the head's parameter count."""
    done = finished(trials)
    keys = [k for k in GROUP if k in done.columns]
    columns = keys + ["n"] + [c for m in ACCURACIES for c in (m, f"{m}_ci")] + ["head_params"]
    if done.empty or not keys:
        return pd.DataFrame(columns=columns)
    rows = []
    for key, group in done.fillna({k: MISSING for k in keys}).groupby(keys, sort=True):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        for metric in ACCURACIES:
            mean, ci, n = mean_ci(group[metric] if metric in group else [])
            row[metric], row[f"{metric}_ci"] = mean * 100, ci * 100
            row["n"] = max(row.get("n", 0), n)
        row["head_params"] = group["head_params"].max() if "head_params" in group else None
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def _same(a, b) -> bool:
    """Params compare as numbers when both are (MLflow gives 64 back as 64 or "64")."""
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def _matches(row, conditions: dict) -> bool:
    return all(k in row and _same(row[k], v) for k, v in conditions.items())


def _cells(row) -> list[str]:
    if row is None:
        return [MISSING] * len(ACCURACIES)
    return [number(row[m], 1, row[f"{m}_ci"], row["n"] if m == "resonator_acc" else None)
            for m in ACCURACIES]


def thesis_tables(table: pd.DataFrame) -> tuple[list[str], pd.DataFrame]:
    """Each thesis table as Markdown, ours matched on its settings; and the long frame."""
    out, long = [], []
    imagenet = [r for _, r in table.iterrows() if r.get("dataset") == "imagenet"]
    for tid, spec in published.RESONATOR_HEAD_TABLES.items():
        rows = []
        for key_value, *paper in spec["rows"]:
            key = dict(zip(spec["key"], key_value if isinstance(key_value, tuple) else (key_value,)))
            want = {**spec["fixed"], **key}
            mine = next((r for r in imagenet if _matches(r, want)), None)
            shown = []
            for name, value in zip(ACCURACIES.values(), paper):
                bound = published.RESONATOR_HEAD_BOUNDS.get((tid, key_value, name.split("-")[0]), "")
                shown.append(MISSING if value is None else f"{bound}{value:.1f}")
            rows.append([", ".join(f"{k}={v}" for k, v in key.items()), *_cells(mine), *shown])
            long.append({"table": tid, **key, **dict(zip([f"paper_{m}" for m in ACCURACIES], paper)),
                         **({m: mine[m] for m in ACCURACIES} if mine is not None else {})})
        header = ["row"] + [f"ours {n} (%)" for n in ACCURACIES.values()] + [
            f"thesis {n} (%)" for n in ACCURACIES.values()]
        out.append(markdown_table(header, rows, title=f"Thesis Table {tid} - {spec['title']}"))
    return out, pd.DataFrame(long)


def _plot(table: pd.DataFrame, path: Path) -> Path:
    plt = pyplot()
    keys = [k for k in GROUP if k in table.columns and k != "dataset"]
    labels = [", ".join(f"{k}={r[k]}" for k in keys)
              for _, r in table.iterrows()]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(labels) + 2), 4.5))
    width = 0.8 / len(ACCURACIES)
    for i, (m, name) in enumerate(ACCURACIES.items()):
        xs = [j + (i - 1) * width for j in range(len(labels))]
        ax.bar(xs, table[m], width, yerr=table[f"{m}_ci"].fillna(0), capsize=2, label=name)
    ax.axhline(published.RESONATOR_HEAD_BASELINES["fc"], ls="--", c="k", lw=1,
               label="thesis FC head (ImageNet)")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Resonator head: our three accuracies (95% CI)", fontsize=10)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def report_head(client, parent, stem: Path) -> tuple[str, list[Path]]:
    """Our set-ups, Tables 4.1-4.6 with the thesis beside ours, baselines and parameter counts."""
    trials = store.trials_frame(client, parent)
    table = ours(trials)
    header = [k for k in GROUP if k in table.columns] + ["n"] + [
        f"{n} (%)" for n in ACCURACIES.values()] + ["head params"]
    rows = [[r[k] for k in GROUP if k in table.columns] + [int(r["n"])]
            + [number(r[m], 1, r[f"{m}_ci"]) for m in ACCURACIES] + [number(r["head_params"], 0)]
            for _, r in table.iterrows()]
    n_done = len(finished(trials))
    parts = [markdown_table(header, rows, title="Resonator head - our set-ups",
                            notes=[f"{n_done} finished trials of {len(trials)}; test accuracies, "
                                   "mean ± 95% CI over seeds"])]
    tables, long = thesis_tables(table)
    parts += tables
    base, params = published.RESONATOR_HEAD_BASELINES, published.RESONATOR_HEAD_PARAMS
    parts.append(
        f"Baselines (thesis, ImageNet): MobileNet-V2 with its FC layer {base['fc']:.1f}%, identity "
        f"classifier {base['identity']:.1f}%. Parameters: FC layer {params['fc']:,}; the thesis's best "
        f"head (V = 2, k = 40, weighted pooling) {params['best_head']:,} "
        f"(−{params['reduction_percent']}%); ours: "
        + (", ".join(sorted({f"{int(p):,}" for p in table["head_params"].dropna()})) or MISSING) + ".\n")
    markdown = "\n".join(parts)
    # One frame for ours and the thesis rows; mixed-type key columns are written as text.
    frame = pd.concat([table.assign(table="ours"), long], ignore_index=True).astype(str)
    files = write_table(stem, markdown, frame)
    if not table.empty:
        files.append(_plot(table, stem.with_suffix(".png")))
    return markdown, files
