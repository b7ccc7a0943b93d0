"""Report of ``sweeps/hopfield_adversarial.py``: adversarial images made against an n = 2 and an
n = 8 dense associative memory and classified by both (Krotov's slides; docs/krotov_hopfield.md,
"Adversarial transfer"), read from MLflow only: the 2×2 error table beside the slides'.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from analysis.render import finished, markdown_table, mean_ci, number, write_table
from dham_core import published
from tracking import store

_CELL = re.compile(r"err_gen(n[\d.]+)_cls(n[\d.]+)")
"""The trainable's metric of one cell: error of model ``cls`` on images made against ``gen``."""
CONTEXT = ("dataset", "num_memories", "epochs", "attack_mode", "attack_step_size", "attack_images")
"""The params the report names in its "ours:" line."""


def adversarial_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (generated against, classified by): error mean ± CI over trials (%), the slides' value."""
    done = finished(trials)
    rows = []
    for col in sorted(c for c in done.columns if _CELL.fullmatch(c)):
        gen, cls = _CELL.fullmatch(col).groups()
        mean, ci, count = mean_ci(done[col])
        key = (float(gen[1:]), float(cls[1:]))  # 2.0 finds the published (2, 8) as 2 == 2.0
        rows.append({"generated_against": gen, "classified_by": cls, "error": mean * 100, "error_ci": ci * 100,
                     "runs": count, "slides": published.KROTOV_ADVERSARIAL.get(key, math.nan)})
    return pd.DataFrame(rows)


def report_adversarial(mlflow_client, parent, out_stem: Path):
    """The transfer report: ``out_stem.md`` and ``out_stem.parquet`` (one row per cell)."""
    trials = store.trials_frame(mlflow_client, parent)
    table = adversarial_table(trials)
    done = finished(trials)
    lines = ["### Krotov's slides - adversarial images transferred between n = 2 and n = 8 memories\n"]
    if table.empty:
        lines.append("no finished trial attacked any image (each model must classify some test images "
                     "correctly)\n")
    else:
        names = sorted(set(table["generated_against"]), key=lambda s: float(s[1:]))
        header = ["generated against \\ classified by"] + [f"ours {c}" for c in names] + [f"slides {c}" for c in names]
        rows = []
        for gen in names:
            row = [gen]
            sub = table[table["generated_against"] == gen].set_index("classified_by")
            row += [number(sub.loc[c, "error"], 1, sub.loc[c, "error_ci"], n=sub.loc[c, "runs"]) for c in names]
            row += [number(sub.loc[c, "slides"], 0) for c in names]
            rows.append(row)
        clean = ", ".join(f"{c}: {number(done[f'eval_error_{c}'].mean() * 100)}%" for c in names
                          if f"eval_error_{c}" in done)
        extra = ", ".join(f"{c}: {number(done[f'linf_{c}'].mean(), 3)} / {number(done[f'steps_{c}'].mean(), 1)}"
                          for c in names if f"linf_{c}" in done)
        context = ", ".join(f"{k}={'/'.join(sorted({str(v) for v in done[k].dropna()}))}" for k in CONTEXT if k in done)
        lines += [f"ours: {context}; clean test error {clean}; mean L∞ perturbation / steps {extra}.\n",
                  "Error rate (%) of the classifying model on images made against the generating model "
                  "(diagonal: the attack's own success).\n", markdown_table(header, rows)]
    markdown = "\n".join(lines)
    return markdown, write_table(out_stem, markdown, table)
