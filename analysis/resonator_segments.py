"""Corrupted-segment report (thesis Tables 4.3, 4.6; docs/resonator.md, "Corrupted segments"):
resonator vs nearest-target accuracy against the fraction of corrupted segments, per (k, V).

Each trial reports one MLflow step per corrupted fraction (``trainables.resonator_segments``);
the corruption kind is a trial param. Means ± 95% CI over seeds.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.render import MISSING, finished, markdown_table, mean_ci, number, pyplot, save_figure, write_table
from dham_core.published import RESONATOR_HEAD_TABLES
from tracking import store

KEYS = ["corruption", "k", "V", "M", "fraction"]
DECODERS = {"resonator_accuracy": "resonator", "overlap_accuracy": "nearest target"}


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (corruption, k, V, M, fraction): mean, CI half-width and n of each accuracy,
    and the mean unused-slot rate and iterations."""
    rows = []
    for key, group in frame.groupby(KEYS, sort=True):
        row = dict(zip(KEYS, key))
        for col in DECODERS:
            row[col], row[col + "_ci"], row["n"] = mean_ci(group[col])
        row["gap"] = row["overlap_accuracy"] - row["resonator_accuracy"]
        row["unused_slot_rate"] = float(group["unused_slot_rate"].mean())
        row["iters_mean"] = float(group["iters_mean"].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def _plot(table: pd.DataFrame, path: Path) -> Path:
    plt = pyplot()
    panels = list(table.groupby(["k", "V"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(max(6.5, 4.2 * len(panels)), 3.8),
                             squeeze=False)
    for ax, ((k, V), group) in zip(axes[0], panels):
        for c, (corruption, sub) in enumerate(group.groupby("corruption")):
            for col, style in zip(DECODERS, ("o-", "s--")):
                ax.errorbar(sub["fraction"], sub[col], yerr=sub[col + "_ci"].fillna(0), fmt=style,
                            color=f"C{c}", ms=3, label=f"{DECODERS[col]} ({corruption})")
        M = int(group["M"].iloc[0])
        ax.set(title=f"k = {k:g}, V = {V:g}, M = {M}", xlabel="fraction of segments corrupted",
               ylabel="accuracy", ylim=(-0.03, 1.03))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Corrupted class targets: resonator vs nearest target", fontsize=10)
    return save_figure(fig, path)


def report_segments(client, parent, stem: Path):
    frame = finished(store.trial_histories(client, parent))
    if frame.empty:
        return "### Corrupted segments: no finished trials\n", []
    if "corruption" not in frame:  # a param; the store prefixes it only if it is also a metric
        frame["corruption"] = frame.get("param.corruption", "random")
    table = summarise(frame)
    cols = ["corruption", "k", "V", "M", "fraction", "resonator", "nearest target", "gap",
            "unused slot", "iterations", "n"]
    rows = [[r.corruption, f"{r.k:g}", f"{r.V:g}", f"{r.M:g}", f"{r.fraction:.2f}",
             number(r.resonator_accuracy, 3, r.resonator_accuracy_ci),
             number(r.overlap_accuracy, 3, r.overlap_accuracy_ci), number(r.gap, 3),
             number(r.unused_slot_rate, 3), number(r.iters_mean, 1), int(r.n)]
            for r in table.itertuples()]
    notes = ["Inputs: class targets with a fraction of their segments corrupted (`random`: moved "
             "to another position; `class`: copied from another class's target); fraction 0 is "
             "decoding a correct target. Thesis Table 4.6 (trained heads on ImageNet, resonator / "
             "overlap / segment-wise accuracy, %):"]
    for (V, k), res, ovl, seg in RESONATOR_HEAD_TABLES["4.6"]["rows"]:
        notes.append(f"- V = {V}, k = {k}: {number(res, 1)} / {number(ovl, 1)} / "
                     f"{MISSING if seg is None else number(seg, 1)} (gap {number(ovl - res, 1)})")
    markdown = markdown_table(cols, rows, title="Corrupted segments: resonator vs nearest target",
                              notes=notes)
    figure = _plot(table, stem.with_suffix(".png"))
    return markdown, write_table(stem, markdown, table) + [figure]
