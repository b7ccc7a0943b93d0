"""Report of ``sweeps/hopfield_capacity.py``: the capacity of dense associative memories on random
±1 memories (Krotov & Hopfield 2016; docs/krotov_hopfield.md, "Capacity" and "Random starts
and XOR"), read from MLflow only.

Four experiments, each pooled over trials (seeds hold disjoint memory sets):

* (a) per-bit one-step error vs K beside P_err (docs/krotov_hopfield.md, eq. 11);
* (b) the K at which half of the memories are recalled perfectly vs N, beside the
  perfect-recall capacity (eq. 10) and our N·P_err = ln 2 line (eq. 12, "Readings we chose");
* (c) where random starts end (stored memory, its negative, spurious state);
* (d) XOR with 3 units and 4 memories.

The closed forms come from the torch-free :mod:`dham_core.formulas`.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from analysis.render import MISSING, finished, markdown_table, mean_ci, number, pyplot, save_figure, sci
from dham_core import published
from dham_core.formulas import ln2_memories, one_step_error_probability, perfect_recall_capacity
from tracking import store

EXPERIMENTS = ("one_step", "half_recall", "random_starts", "xor")


def one_step_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Pooled over trials: per (N, n, rect, K) errors, bits, rate, the P_err formula, their ratio
    and whether the acceptance check applies (plain energy, formula ≥ 1e-3, ≥ 50 errors)."""
    if cells.empty:
        return pd.DataFrame()
    pooled = cells.groupby(["N", "n", "rect", "K"], sort=True).agg(
        errors=("errors", "sum"), bits=("bits", "sum"), formula=("formula", "first"),
        runs=("run_id", "nunique")).reset_index()
    pooled["rate"] = pooled["errors"] / pooled["bits"]
    pooled["ratio"] = pooled["rate"] / pooled["formula"]
    pooled["checked"] = (pooled["rect"] == 0) & (pooled["formula"] >= 1e-3) & (pooled["errors"] >= 50)
    pooled["within_2x"] = pooled["checked"] & (pooled["ratio"] > 0.5) & (pooled["ratio"] < 2.0)
    return pooled


def half_recall_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Per (n, rect, N): K_half mean ± CI over trials (or the largest lower bound), the formula."""
    rows = []
    if cells.empty:
        return pd.DataFrame()
    for (n, rect, big_n), group in cells.groupby(["n", "rect", "N"], sort=True):
        found = group["k_half"].dropna() if "k_half" in group else pd.Series([], dtype=float)
        bound = group["k_half_lower_bound"].dropna() if "k_half_lower_bound" in group else pd.Series([], dtype=float)
        mean, ci, count = mean_ci(found)
        rows.append({"n": int(n), "rect": int(rect), "N": int(big_n), "k_half": mean, "k_half_ci": ci,
                     "runs": count, "lower_bound": float(bound.max()) if len(bound) else math.nan,
                     "k_formula": float(group["k_formula"].iloc[0])})
    out = pd.DataFrame(rows)
    out["ratio"] = out["k_half"] / out["k_formula"]
    return out


def random_start_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Per (n, rect): start-weighted fractions ending in a stored memory, its negative, converged."""
    if cells.empty:
        return pd.DataFrame()
    rows = []
    for (n, rect), group in cells.groupby(["n", "rect"], sort=True):
        w = group["starts"]
        rows.append({"n": int(n), "rect": int(rect), "N": int(group["N"].iloc[0]), "K": int(group["K"].iloc[0]),
                     "starts": int(w.sum()), **{k: float((group[k] * w).sum() / w.sum())
                                                for k in ("stored", "negated", "converged")}})
    return pd.DataFrame(rows)


def xor_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Per (n, rect): presentations answered correctly (of 8) and whether every one was."""
    if cells.empty:
        return pd.DataFrame()
    out = cells.groupby(["n", "rect"], sort=True).agg(correct=("correct", "min"), presentations=("presentations", "first"),
                                                        solved=("solved", "min")).reset_index()
    return out


def _xor_claim(n, rect) -> str:
    n = float(n)
    if rect:
        return "solved" if n >= 2 else "not solved"
    return "solved" if n >= 3 and n % 2 == 1 else "not solved"


def _energy(rect) -> str:
    return "rectified" if int(rect) else "plain"


def _capacity_markdown(one: pd.DataFrame, half: pd.DataFrame, starts: pd.DataFrame,
                       xor: pd.DataFrame | None = None) -> str:
    parts = ["### Krotov & Hopfield - capacity of dense associative memories (random ±1 memories)\n"]
    if not one.empty:
        rows = []
        for _, r in one.iterrows():
            check = ("yes" if r["within_2x"] else "NO") if r["checked"] else "n/a"
            rows.append([f"{int(r['N'])}", f"{int(r['n'])}", _energy(r["rect"]), f"{int(r['K'])}",
                         sci(r["rate"]), f"{int(r['errors'])}/{int(r['bits'])}", sci(r["formula"]),
                         number(r["ratio"]), check])
        checked = one[one["checked"]]
        plain = one[one["rect"] == 0].set_index(["n", "K"])["rate"]
        rect = one[one["rect"] == 1].set_index(["n", "K"])["rate"]
        both = plain.index.intersection(rect.index)
        below = int((rect[both] <= plain[both]).sum())
        parts += ["**(a) Per-bit one-step error vs K** (pooled over all memory sets) beside the paper's "
                  "P_err ≈ sqrt((2n−3)!!/(2π)·K/N^(n−1))·exp(−N^(n−1)/(2K(2n−3)!!)); acceptance: plain energy "
                  "within ×2 wherever P_err ≥ 1e-3 with ≥ 50 observed errors.\n",
                  markdown_table(["N", "n", "energy", "K", "ours error/bit", "errors/bits", "paper P_err",
                                  "ours/paper", "within ×2"], rows),
                  f"Checked cells within ×2: {int(checked['within_2x'].sum())}/{len(checked)}; rectified ≤ plain "
                  f"at equal K in {below}/{len(both)} cells.\n"]
    if not half.empty:
        rows = []
        for _, r in half.iterrows():
            n, big_n = int(r["n"]), int(r["N"])
            paper = published.KROTOV_CAPACITY_N100.get(n) if big_n == 100 else None
            ours = (number(r["k_half"], 1, r["k_half_ci"], n=r["runs"]) if r["runs"]
                    else f"> {r['lower_bound']:,.0f} (cap)")
            rows.append([f"{n}", _energy(r["rect"]), f"{big_n}", ours, number(r["k_formula"], 1),
                         number(r["ratio"]), f"{paper:,}" if paper else MISSING])
        parts += ["**(b) K at which half of the stored memories are recalled perfectly** beside the "
                  "perfect-recall formula N^(n−1)/(2(2n−3)!! ln N) (paper: the measurement follows it at n = 3; "
                  "rectified slightly above). Mean ± 95% CI over trials.\n",
                  markdown_table(["n", "energy", "N", "ours K_half", "formula", "ours/formula",
                                  "paper capacity (N=100)"], rows)]
    if not starts.empty:
        rows = []
        for _, r in starts.iterrows():
            claim = published.KROTOV_RANDOM_STARTS.get(int(r["n"]), MISSING)
            if claim == MISSING and r["n"] >= 5:
                claim = "all recalled (n ≥ 5)"
            rows.append([f"{int(r['n'])}", _energy(r["rect"]), f"{int(r['N'])}", f"{int(r['K'])}",
                         f"{int(r['starts']):,}", number(r["stored"] * 100, 1), number(r["negated"] * 100, 1),
                         number(r["converged"] * 100, 1), claim])
        parts += ["**(c) Random starts run to a fixed point** (asynchronous updates): where they end.\n",
                  markdown_table(["n", "energy", "N", "K", "starts", "stored memory (%)", "negated memory (%)",
                                  "converged (%)", "paper (N=100, K=2000)"], rows)]
    if xor is not None and not xor.empty:
        rows = [[f"{int(r['n'])}", _energy(r["rect"]), f"{int(r['correct'])}/{int(r['presentations'])}",
                 "solved" if r["solved"] else "not solved", _xor_claim(r["n"], r["rect"])] for _, r in xor.iterrows()]
        parts += ["**(d) XOR** with N = 3 units and the 4 truth-table rows as memories (K = 4 > N): z updated "
                  "with (x, y) clamped, starting at −1 and at +1. Paper: "
                  f"plain energy {published.KROTOV_XOR['plain']}, rectified {published.KROTOV_XOR['rectified']}.\n",
                  markdown_table(["n", "energy", "correct", "ours", "paper"], rows)]
    return "\n".join(parts)


def _one_step_figure(one: pd.DataFrame):
    """Error per bit vs K (log-log): ours (plain filled, rectified open) and P_err (eq. 11)."""
    import numpy as np

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (n, group) in enumerate(one.groupby("n", sort=True)):
        c = colors[i % len(colors)]
        big_n = int(group["N"].iloc[0])
        ks = np.geomspace(group["K"].min() * 0.7, group["K"].max() * 1.4, 100)
        ax.plot(ks, [one_step_error_probability(big_n, k, int(n)) for k in ks], "-", color=c, lw=1,
                label=f"n = {int(n)}: paper P_err")
        for rect, marker, fill in ((0, "o", c), (1, "s", "none")):
            g = group[(group["rect"] == rect) & (group["errors"] > 0)]
            ax.plot(g["K"], g["rate"], marker, color=c, mfc=fill, ls="none",
                    label=f"n = {int(n)}: ours, {_energy(rect)}")
    ax.axhline(1e-3, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("K (stored memories)")
    ax.set_ylabel("one-step error per bit")
    ax.set_title(f"One-step error vs K, N = {int(one['N'].iloc[0])}", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    return fig


def _half_recall_figure(half: pd.DataFrame):
    """K_half vs N (log-log) beside eq. 10 (solid) and eq. 12 (dotted); ▲ marks a lower bound."""
    import numpy as np
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (n, group) in enumerate(half.groupby("n", sort=True)):
        c = colors[i % len(colors)]
        big = np.geomspace(group["N"].min() * 0.9, group["N"].max() * 1.1, 50)
        ax.plot(big, [perfect_recall_capacity(x, int(n)) for x in big], "-", color=c, lw=1,
                label=f"n = {int(n)}: N^(n−1)/(2(2n−3)!! ln N)")
        ax.plot(big, [ln2_memories(x, int(n)) for x in big], ":", color=c, lw=1,
                label=f"n = {int(n)}: N·P_err(K) = ln 2 (ours)")
        for rect, marker, fill in ((0, "o", c), (1, "s", "none")):
            g = group[group["rect"] == rect]
            ax.errorbar(g["N"], g["k_half"], yerr=g["k_half_ci"].fillna(0), fmt=marker, color=c, mfc=fill,
                        capsize=2, label=f"n = {int(n)}: ours K_half, {_energy(rect)}")
            capped = g[g["runs"] == 0]
            if len(capped):
                ax.plot(capped["N"], capped["lower_bound"], "^", color=c, mfc="none", ls="none")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sorted(half["N"].unique()))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("N (neurons)")
    ax.set_ylabel("K (memories)")
    ax.set_title("Half-recall capacity vs N (▲: lower bound, K cap reached)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6, ncol=2)
    return fig


def _random_starts_figure(starts: pd.DataFrame):
    """Stacked bars: random starts ending in a stored memory or its negative."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = [f"n={int(r['n'])}\n{_energy(r['rect'])[:4]}" for _, r in starts.iterrows()]
    x = range(len(starts))
    ax.bar(x, starts["stored"] * 100, label="stored memory")
    ax.bar(x, starts["negated"] * 100, bottom=starts["stored"] * 100, label="negated memory")
    ax.set_xticks(list(x), labels, fontsize=7)
    ax.set_ylabel("random starts (%)")
    ax.set_title(f"Where random starts end (N = {int(starts['N'].iloc[0])}, K = {int(starts['K'].iloc[0])}); "
                 "the rest: spurious states", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def report_capacity(mlflow_client, parent, out_stem: Path):
    """The capacity report: Markdown at ``out_stem.md``, per experiment a Parquet table and a
    PNG beside it (``out_stem-one_step.*``, ``-half_recall.*``, ``-random_starts.*``)."""
    cells = finished(store.trial_histories(mlflow_client, parent))  # one row per reported cell
    by_exp = {e: cells[cells["experiment"] == e] if not cells.empty else cells for e in EXPERIMENTS}
    one = one_step_table(by_exp["one_step"])
    half = half_recall_table(by_exp["half_recall"])
    starts = random_start_table(by_exp["random_starts"])
    xor = xor_table(by_exp["xor"])
    markdown = _capacity_markdown(one, half, starts, xor)
    if one.empty and half.empty and starts.empty and xor.empty:
        markdown += "\nno finished capacity trials\n"
    md = out_stem.with_suffix(".md")
    md.write_text(markdown)
    files = [md]
    for name, frame, plot in (("one_step", one, _one_step_figure), ("half_recall", half, _half_recall_figure),
                              ("random_starts", starts, _random_starts_figure)):
        if frame.empty:
            continue
        pq = Path(f"{out_stem}-{name}.parquet")
        frame.to_parquet(pq, engine="pyarrow", index=False)
        files += [pq, save_figure(plot(frame), Path(f"{out_stem}-{name}.png"))]
    return markdown, files
