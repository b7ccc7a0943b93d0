"""Report of ``sweeps/clique_capacity.py`` (Gripon & Berrou 2011; docs/gripon_berrou.md), from
MLflow only.

Pools every trial's cells per (rule, iterations, M): retrieval error rate with a 95% Wilson
interval, the counted density beside ``d = 1 − (1 − 1/ℓ²)^M`` (docs/gripon_berrou.md, eq. 3) and
the one-iteration error ``P_e = 1 − (1 − d^(c−c_e))^(c_e(ℓ−1))`` (eq. 4, from the torch-free
:mod:`dham_core.formulas`); checks the acceptance (one iteration within ±0.05 of P_e for
5,000 ≤ M ≤ 30,000; more iterations fewer errors than one) and draws the error vs M with the
theory curve.
"""
from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist

import pandas as pd

from analysis.render import finished, markdown_table, number, pyplot, save_figure, write_table
from dham_core.formulas import clique_density, clique_one_iteration_error
from tracking import store

TOLERANCE = 0.05
"""One iteration's measured error must lie within ± this of P_e (eq. 4)."""
CHECK_RANGE = (5000, 30000)
"""The M range (inclusive) where that check applies: the paper's classic setting's range."""


def wilson(errors: int, tests: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (errors / tests)."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    if tests == 0:
        return math.nan, math.nan
    p = errors / tests
    centre = (p + z * z / (2 * tests)) / (1 + z * z / tests)
    half = z * math.sqrt(p * (1 - p) / tests + z * z / (4 * tests * tests)) / (1 + z * z / tests)
    return max(0.0, centre - half), min(1.0, centre + half)


def clique_table(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per (rule, iters, M) pooled over trials (seeds)."""
    if cells.empty:
        return pd.DataFrame()
    rows = []
    keys = ["c", "ell", "c_e", "rule", "iters", "M"]
    for key, group in cells.groupby(keys, sort=True):
        errors, tests = int(group["errors"].sum()), int(group["tests"].sum())
        low, high = wilson(errors, tests)
        rows.append({**dict(zip(keys, key, strict=True)), "errors": errors, "tests": tests, "error_rate": errors / tests,
                     "ci_low": low, "ci_high": high, "runs": group["run_id"].nunique(),
                     "density": float(group["density"].mean()), "density_formula": float(group["density_formula"].iloc[0]),
                     "error_formula": float(group["error_formula"].iloc[0])})
    out = pd.DataFrame(rows)
    out["gap"] = out["error_rate"] - out["error_formula"]
    return out


def acceptance(table: pd.DataFrame) -> dict:
    """The checks the report prints: one iteration within ±TOLERANCE of P_e in CHECK_RANGE; fewer errors
    after the most iterations than after one (where one iteration's error is strictly between 0
    and 1, i.e. where fewer is possible and informative)."""
    one = table[(table["iters"] == 1) & table["M"].between(*CHECK_RANGE)]
    within = int((one["gap"].abs() <= TOLERANCE).sum())
    pivot = table.pivot_table(index=["rule", "M"], columns="iters", values="error_rate")
    better = total = 0
    if 1 in pivot and pivot.shape[1] > 1:
        most = max(c for c in pivot.columns)
        sub = pivot[(pivot[1] > 0) & (pivot[1] < 1)]  # where one iteration neither never nor always fails
        total = len(sub)
        better = int((sub[most] < sub[1]).sum())
    return {"within": within, "checked": len(one), "fewer_errors": better, "compared": total}


def report_clique(mlflow_client, parent, out_stem: Path):
    cells = finished(store.trial_histories(mlflow_client, parent))
    table = clique_table(cells)
    title = "### Gripon & Berrou - clique network retrieval error vs stored messages M\n"
    if table.empty:
        markdown = title + "\nno finished trials\n"
        return markdown, write_table(out_stem, markdown, table)
    first = table.iloc[0]
    c, ell, ce = int(first["c"]), int(first["ell"]), int(first["c_e"])
    rows = []
    for _, r in table.iterrows():
        rows.append([r["rule"], f"{int(r['iters'])}", f"{int(r['M']):,}",
                     f"{number(r['error_rate'], 3)} [{number(r['ci_low'], 3)}, {number(r['ci_high'], 3)}]",
                     f"{r['errors']}/{r['tests']}", number(r["error_formula"], 3),
                     number(r["gap"], 3) if r["iters"] == 1 else "",
                     number(r["density"], 4), number(r["density_formula"], 4)])
    check = acceptance(table)
    markdown = "\n".join([
        title,
        f"c = {c} clusters of ℓ = {ell} neurons, c_e = {ce} erased; error = a stored message not recovered "
        f"exactly (ambiguous clusters count as errors); pooled over {int(table['runs'].max())} network(s) per "
        "rule, 95% Wilson interval. Paper formulas: d = 1 − (1 − 1/ℓ²)^M, "
        "P_e(1 iteration) = 1 − (1 − d^(c−c_e))^(c_e(ℓ−1)) (independent edges: a faithful simulation sits "
        "slightly above).\n",
        markdown_table(["rule", "iterations", "M", "ours error [95% CI]", "errors/tests", "paper P_e (1 it.)",
                        "ours − paper (1 it.)", "ours density", "paper density"], rows),
        f"Acceptance: one iteration within ±{TOLERANCE} of P_e for {CHECK_RANGE[0]:,} ≤ M ≤ {CHECK_RANGE[1]:,}: "
        f"{check['within']}/{check['checked']} cells; more iterations fewer errors than one: "
        f"{check['fewer_errors']}/{check['compared']} cells.\n",
    ])
    png = save_figure(_figure(table, c, ell, ce), Path(f"{out_stem}-clique.png"))
    return markdown, [*write_table(out_stem, markdown, table), png]


def _figure(table: pd.DataFrame, c: int, ell: int, ce: int):
    """Error rate vs M per (rule, iterations) with P_e (top); counted density beside d (bottom)."""
    import numpy as np

    plt = pyplot()
    fig, (ax, dx) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    m = np.linspace(0, max(table["M"].max() * 1.05, 1), 400)
    ax.plot(m, [clique_one_iteration_error(x, c, ell, ce) for x in m], "k-", lw=1.2, label="paper P_e, 1 iteration")
    for (rule, iters), g in table.groupby(["rule", "iters"], sort=True):
        yerr = [(g["error_rate"] - g["ci_low"]).clip(lower=0), (g["ci_high"] - g["error_rate"]).clip(lower=0)]
        ax.errorbar(g["M"], g["error_rate"], yerr=yerr, fmt="o-" if iters == 1 else "s--", ms=4, capsize=2,
                    label=f"ours {rule}, {int(iters)} iteration{'s' if iters > 1 else ''}")
    ax.axvspan(*CHECK_RANGE, color="grey", alpha=0.08, lw=0)
    ax.set_ylabel("retrieval error rate")
    ax.set_title(f"Clique network: c = {c}, ℓ = {ell}, {ce} erased clusters", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    dx.plot(m, [clique_density(x, ell) for x in m], "k-", lw=1, label="paper d")
    dens = table.groupby("M")["density"].mean()
    dx.plot(dens.index, dens.values, "o", ms=4, label="ours (counted)")
    dx.set_xlabel("M (stored messages)")
    dx.set_ylabel("density")
    dx.grid(alpha=0.3)
    dx.legend(fontsize=7)
    return fig
