"""The accuracy–multiplications front of the per-stage ell sweep (``sweeps/dham_pareto.py``;
docs/decisivenets.md, "Beyond the paper: the accuracy–multiplications front").

From the sweep's finished trial runs in MLflow: the non-dominated trials on the sweep's two
objectives (validation accuracy up, analytic multiplications down), their table (ell per
stage, temperatures, validation and test accuracy, multiplications and their ratio to the
same network with ell = 1), and a plot of every trial, the front and the paper's single-ell
points (DecisiveNets Table 1, ResNet-18 on CIFAR-10). The x axis is the multiplication
*ratio* to ell = 1: the paper's ResNet-18 counts are not our network's (docs/decisivenets.md,
"The multiplication counter"), but each count's ratio to its own ell = 1 is comparable; the
paper's accuracies are CIFAR-10 ones and say nothing about a run on another dataset.

Non-domination is computed by hand (:func:`analysis.render.non_dominated`), not with Optuna's
``study.best_trials``: the report reads MLflow, which holds every finished trial of the
launch whatever became of the Optuna study (another storage, a resumed driver), and needs no
study to be opened.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.render import (finished, markdown_table, non_dominated, number, pyplot,
                             save_figure, write_table)
from dham_core import published
from tracking import store

ACC, MULTS = "val_acc", "mults"  # the sweep's objectives (max, min)


def stage_columns(frame: pd.DataFrame) -> list[str]:
    """``ell_stage1``, ``ell_stage2``, ... in stage order."""
    found = [c for c in frame if re.fullmatch(r"ell_stage\d+", c)]
    return sorted(found, key=lambda c: int(c[len("ell_stage"):]))


def paper_points() -> pd.DataFrame:
    """DecisiveNets Table 1's ResNet-18 / CIFAR-10 rows: accuracy (%) and mults ratio to ell = 1."""
    rows = published.DECISIVENETS_TABLE1
    base = rows[0]["r18_mults"]
    return pd.DataFrame({"ell": [r["ell"] for r in rows], "acc": [r["r18_c10_acc"] for r in rows],
                         "mults": [r["r18_mults"] for r in rows],
                         "mults_ratio": [r["r18_mults"] / base for r in rows]})


def front_table(trials: pd.DataFrame) -> pd.DataFrame:
    """The finished trials with a ``pareto`` column and ``stage_ell`` ("2-4-8-16"), sorted
    by multiplications."""
    done = finished(trials)
    if done.empty or ACC not in done or MULTS not in done:
        return pd.DataFrame()
    done = done[done[ACC].notna() & done[MULTS].notna()].copy()
    if done.empty:
        return done
    stages = stage_columns(done)
    done["stage_ell"] = done[stages].astype(int).astype(str).agg("-".join, axis=1) if stages else ""
    done["pareto"] = non_dominated(done[ACC].to_numpy(), done[MULTS].to_numpy())
    return done.sort_values([MULTS, ACC], ascending=[True, False], ignore_index=True)


def _markdown(table: pd.DataFrame, context: str) -> str:
    front = table[table["pareto"]]
    header = ["ell per stage", "t_init", "t_final", "val acc (%)", "test acc (%)",
              "mults (analytic)", "mults / ell=1"]
    rows = [[r["stage_ell"], f"{r['t_init']:.3g}", f"{r['t_final']:.4g}", number(100 * r[ACC]),
             number(100 * r["test_acc"]) if "test_acc" in r else "—", number(r[MULTS]),
             f"{r['mults_ratio']:.3f}"] for _, r in front.iterrows()]
    notes = [context, f"{len(front)} of {len(table)} finished trials are Pareto-optimal "
             "(validation accuracy up, analytic multiplications per image down)."]
    paper = paper_points()
    ref = ", ".join(f"ell={r.ell}: {r.acc:.2f}% at {r.mults_ratio:.3f}" for r in paper.itertuples())
    notes.append("Paper, one ell everywhere (Table 1, ResNet-18 / CIFAR-10; accuracy at "
                 f"mults / ell=1): {ref}.")
    return markdown_table(header, rows, title="DHAM per-stage ell: the accuracy–multiplications front",
                          notes=notes)


def _plot(table: pd.DataFrame, path: Path, dataset: str) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    ax.scatter(table["mults_ratio"], 100 * table[ACC], c="lightgrey", label="trials (ours)")
    stages = stage_columns(table)
    uniform = table[table[stages].nunique(axis=1) == 1] if stages else table.iloc[0:0]
    if len(uniform):
        ax.scatter(uniform["mults_ratio"], 100 * uniform[ACC], marker="D", facecolors="none",
                   edgecolors="C0", label="ours, one ell in every stage")
    front = table[table["pareto"]].sort_values("mults_ratio")
    ax.step(front["mults_ratio"], 100 * front[ACC], "o-", where="post", color="C3",
            label="Pareto front (ours)")
    for _, r in front.iterrows():
        ax.annotate(r["stage_ell"], (r["mults_ratio"], 100 * r[ACC]), fontsize=7)
    paper = paper_points()
    comparable = dataset == "cifar10"
    label = "paper, one ell (R18/CIFAR-10)" if comparable else "paper (CIFAR-10), not comparable"
    ax.plot(paper["mults_ratio"], paper["acc"], "s--", color="C2", alpha=0.7, label=label)
    ax.set(xlabel="multiplications / same network with ell = 1", ylabel="accuracy (%): ours validation, paper test",
           title=f"Per-stage ell, multi-objective TPE ({dataset})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def report_pareto(client, parent, stem: Path) -> tuple[str, list[Path]]:
    """The front's Markdown table, every trial (with ``pareto``) as Parquet, and the PNG."""
    table = front_table(store.trials_frame(client, parent))
    if table.empty:
        markdown = "### DHAM per-stage ell: no finished trials\n"
        return markdown, write_table(stem, markdown, table)
    dataset = "/".join(sorted({str(d) for d in table.get("dataset", pd.Series(["?"]))}))
    arch = "/".join(sorted({str(d) for d in table.get("arch", pd.Series(["?"]))}))
    epochs = f", {int(table['epochs'].max())} epochs" if "epochs" in table else ""
    context = f"ours: {arch} on {dataset}{epochs}"
    markdown = _markdown(table, context)
    files = write_table(stem, markdown, table)
    return markdown, files + [_plot(table, stem.with_suffix(".png"), dataset)]
