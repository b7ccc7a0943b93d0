"""Resonator figures from MLflow (thesis Figs 3.4-3.7; docs/resonator.md, "Published claims"):
accuracy and iterations vs problem size, sparse vs dense, and the (k, a, noise) Pareto front of
a multi-objective TPE sweep.

Each trial of these sweeps is a pack that reports one MLflow step per cell, with the cell's
coordinates (``D``, ``k``, ``a``, ``noise``, ``V``, ``M``, ...) among its metrics, so
``store.trial_histories`` gives one row per cell and those columns hold the cell's values (a
trial's param ``a`` may be a whole list, ``"[3, 5, 8]"``).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.render import (compact, finished, is_missing, markdown_table, non_dominated, pyplot,
                             save_figure, write_table)
from tracking import store

CELL = ["kind", "D", "k", "a", "a_kept", "noise", "V", "M", "problem_size"]
OUT = ["accuracy", "iters_mean", "iters_median", "iters_p95", "converged_frac",
       "seconds_per_problem"]


def cells_frame(client, parent) -> pd.DataFrame:
    """One row per finished cell; the dense cells' ``k``, ``a``, ``noise`` are NaN."""
    frame = store.trial_histories(client, parent)
    if frame.empty:
        return frame
    frame = finished(frame).copy()
    if "kind" not in frame:
        # The kind is a trial param (a string, never a metric); the store may prefix it.
        frame["kind"] = frame["param.kind"] if "param.kind" in frame else "sparse"
    for col in ("k", "a", "noise"):
        if col not in frame:
            frame[col] = float("nan")
        frame[col] = frame[col].astype(float)
        frame.loc[frame["kind"] == "dense", col] = float("nan")  # the dense network has no k, a
    if "param.a" in frame and (frame["param.a"] == "M").any():
        # Fig 3.6's a = M line: the trial's a is "M", each cell's a its M (no sparsification)
        frame["a_kept"] = ["M" if p == "M" else compact(a) for p, a in zip(frame["param.a"],
                                                                        frame["a"])]
    return frame


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of each cell's outputs (n = number of seeds)."""
    keys = [c for c in CELL if c in frame]
    out = [c for c in OUT if c in frame]
    grouped = frame.groupby(keys, dropna=False)[out]
    table = grouped.mean().reset_index()
    table["n"] = grouped.size().values
    return table.sort_values(keys, ignore_index=True)


def pareto_front(frame: pd.DataFrame) -> pd.Series:
    """True for cells no other cell beats on both accuracy (higher) and iterations (lower)."""
    return pd.Series(non_dominated(frame["accuracy"].to_numpy(), frame["iters_mean"].to_numpy()),
                     index=frame.index)


def _cell_text(column: str, value) -> str:
    """:func:`analysis.render.compact`, but the problem size M^V always to 3 significant digits."""
    if column == "problem_size" and isinstance(value, float) and not is_missing(value):
        return f"{value:.3g}"
    return compact(value)


def _markdown(table: pd.DataFrame, title: str, notes: list[str]) -> str:
    cols = [c for c in CELL + OUT + ["n"] if c in table]
    rows = [[_cell_text(c, r[c]) for c in cols] for _, r in table.iterrows()]
    return markdown_table(cols, rows, title=title, notes=notes)


def _plot_vs_size(table: pd.DataFrame, series: list[str], path: Path, title: str,
                  panels=("accuracy", "iters_mean")) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2))
    for label, group in table.groupby(series, dropna=False):
        label = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in zip(series, label if isinstance(label, tuple) else (label,))
                          if not (isinstance(v, float) and pd.isna(v)))
        group = group.sort_values("problem_size")
        for ax, metric in zip(axes, panels):
            ax.plot(group["problem_size"], group[metric], "o-", label=label, ms=3)
    for ax, metric in zip(axes, panels):
        ax.set_xscale("log")
        if metric != "accuracy":
            ax.set_yscale("log")
        ax.set(xlabel="problem size M^V", ylabel=metric)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def _plot_pareto(table: pd.DataFrame, path: Path) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter(table["iters_mean"], table["accuracy"], c="lightgrey", label="trials")
    front = table[table["pareto"]].sort_values("iters_mean")
    ax.plot(front["iters_mean"], front["accuracy"], "o-", color="C3", label="Pareto front")
    for _, r in front.iterrows():
        ax.annotate(f"k={r['k']:g}, a={r['a']:g}, noise={r['noise']:.2f}",
                    (r["iters_mean"], r["accuracy"]), fontsize=7)
    ax.set(xlabel="mean iterations", ylabel="accuracy", xscale="log",
           title="(k, a, noise) trade-off, multi-objective TPE")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def capacity_report(client, parent, stem: Path):
    frame = cells_frame(client, parent)
    if frame.empty:
        return "### Resonator capacity: no finished trials\n", []
    if "trace_problem" in frame:
        return attention_report(frame, stem)
    table = summarise(frame)
    notes = ["Thesis (Figs 3.4-3.6): accuracy 1.0 up to M^V > 1e9 with suitable D, k, a; larger k "
             "is more accurate; at D = 1280, k = 40, V = 2/M = 32 decodes every input and "
             "V = 3/M = 10 does not. Means over seeds; iterations count max_it for unconverged "
             "problems."]
    files = []
    if parent.data.tags.get(store.TAG_SEARCH) == "tpe":
        table["pareto"] = pareto_front(table)
        notes.append(f"Pareto-optimal (k, a, noise): {int(table['pareto'].sum())} of {len(table)} "
                     "points (accuracy up, iterations down).")
        files.append(_plot_pareto(table, stem.with_name(stem.name + "-pareto.png")))
    markdown = _markdown(table, "Sparse resonator: accuracy and iterations vs problem size", notes)
    figure = _plot_vs_size(table, ["D", "k", "a_kept" if "a_kept" in table else "a", "V"],
                           stem.with_suffix(".png"),
                           "Sparse resonator capacity (thesis Figs 3.4-3.6)")
    return markdown, write_table(stem, markdown, table) + [figure] + files


def vs_dense_report(client, parent, stem: Path):
    frame = cells_frame(client, parent)
    if frame.empty:
        return "### Sparse vs dense: no finished trials\n", []
    table = summarise(frame)
    sparse = table[table["kind"] == "sparse"].set_index("problem_size")
    dense = table[table["kind"] == "dense"].set_index("problem_size")
    both = sparse.index.intersection(dense.index)
    ratio = pd.DataFrame({
        "problem_size": both,
        "iters_dense_over_sparse": (dense.loc[both, "iters_mean"] /
                                    sparse.loc[both, "iters_mean"]).values,
        "time_dense_over_sparse": (dense.loc[both, "seconds_per_problem"] /
                                   sparse.loc[both, "seconds_per_problem"]).values,
        "acc_sparse": sparse.loc[both, "accuracy"].values,
        "acc_dense": dense.loc[both, "accuracy"].values})
    notes = ["Thesis (Fig 3.7, D = 512, k = 64): the sparse network needs about 2x the iterations "
             "of the dense one for small problems, fewer from M^V > 1e7, >= 10x fewer at 1e9.",
             "", "| M^V | dense/sparse iterations | dense/sparse time | acc sparse | acc dense |",
             "|---|---|---|---|---|"]
    notes += [f"| {r.problem_size:.3g} | {r.iters_dense_over_sparse:.2f} | "
              f"{r.time_dense_over_sparse:.2f} | {r.acc_sparse:.3f} | {r.acc_dense:.3f} |"
              for r in ratio.itertuples()]
    markdown = _markdown(table, "Sparse vs dense resonator", notes)
    figure = _plot_vs_size(table, ["kind"], stem.with_suffix(".png"),
                           "Sparse vs dense resonator, D = 512, k = 64 (thesis Fig 3.7)",
                           panels=("accuracy", "iters_mean", "seconds_per_problem"))
    return markdown, write_table(stem, markdown, table) + [figure]


TRACE_OUTCOMES = ("decoded", "undecoded")  # trace_problem 0 and 1 (dham_core.resonator_trace)


def _plot_attention(frame: pd.DataFrame, V: int, path: Path) -> Path:
    """Thesis Fig 3.2 (each factor's attention entries over the iterations) and Fig 3.3 (their
    mean and standard deviation), one row per traced problem."""
    plt = pyplot()
    traces = list(frame.groupby("trace_problem"))
    fig, axes = plt.subplots(len(traces), 2, figsize=(11, 3.6 * len(traces)), squeeze=False)
    for row, (trace, group) in zip(axes, traces):
        group = group.sort_values("iteration")
        outcome = TRACE_OUTCOMES[int(trace)]
        entries = [c for v in range(V) for c in sorted(
            (c for c in group if c.startswith(f"w_{v}_")), key=lambda c: int(c.rsplit("_", 1)[1]))]
        if entries:
            image = row[0].imshow(group[entries].to_numpy().T, aspect="auto", origin="lower",
                                  vmin=0, vmax=1, interpolation="nearest")
            fig.colorbar(image, ax=row[0], label="attention w'/k")
            row[0].set(xlabel="iteration", ylabel="factor x codeword",
                       title=f"{outcome} problem: attention vectors (Fig 3.2)")
        for v in range(V):
            row[1].plot(group["iteration"], group[f"mean_{v}"], "-", color=f"C{v}",
                        label=f"mean, factor {v}")
            row[1].plot(group["iteration"], group[f"std_{v}"], "--", color=f"C{v}",
                        label=f"std, factor {v}")
        row[1].set(xlabel="iteration", ylabel="attention w'/k",
                   title=f"{outcome} problem: mean and std (Fig 3.3)")
        row[1].grid(alpha=0.3)
        row[1].legend(fontsize=7)
    return save_figure(fig, path)



def attention_report(frame: pd.DataFrame, stem: Path):
    """The attention traces of a ``trace_attention`` trial (thesis Figs 3.2-3.3)."""
    V = sum(1 for c in frame if c.startswith("mean_"))
    rows = []
    for trace, group in frame.groupby("trace_problem"):
        last = group.sort_values("iteration").iloc[-1]
        rows.append([TRACE_OUTCOMES[int(trace)], int(last["iterations"]),
                     "yes" if last["converged"] else "no"]
                    + [f"{last[f'mean_{v}']:.3f} / {last[f'std_{v}']:.3f}" for v in range(V)])
    notes = ["Thesis Fig 3.3: near 0 at the start (no estimate resembles a codeword), then both "
             "rise when one codeword's attention approaches 1. Last iteration's mean / std of "
             "each factor's attention w'/k over its M codewords:"]
    markdown = markdown_table(["problem", "iterations", "converged"]
                              + [f"factor {v}" for v in range(V)], rows,
                              title="Sparse resonator: attention traces", notes=notes)
    table = frame[[c for c in frame if c == "trace_problem" or c == "iteration"
                   or c.startswith(("mean_", "std_", "w_"))]]
    figure = _plot_attention(frame, V, stem.with_name(stem.name + "-attention.png"))
    return markdown, write_table(stem, markdown, table.reset_index(drop=True)) + [figure]
