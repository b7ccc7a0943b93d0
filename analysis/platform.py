"""Reports about the platform itself (reads MLflow only): the scaling experiment."""
from __future__ import annotations

from pathlib import Path

from tracking import store
from analysis.render import MISSING, finished, markdown_table, number, pyplot, save_figure, \
    write_table

COLUMNS = ["workload", "workers", "trials", "wall_s", "trials_per_hour", "problems_per_s",
           "efficiency"]


def scaling_report(client, parent, stem: Path):
    """Throughput and parallel efficiency per workload and worker count; table and plot."""
    frame = finished(store.trials_frame(client, parent)).sort_values(["workload", "workers"])
    table = frame[[c for c in COLUMNS if c in frame]].reset_index(drop=True)
    rows = []
    for _, r in table.iterrows():
        problems = r.get("problems_per_s", 0)
        rows.append([r["workload"], int(r["workers"]), int(r["trials"]),
                     number(r["wall_s"], digits=1), number(r["trials_per_hour"], digits=0),
                     number(problems, digits=0) if problems else MISSING,
                     number(r["efficiency"])])
    markdown = markdown_table(
        ["workload", "workers", "trials", "wall (s)", "trials/hour", "problems/s", "efficiency"],
        rows, title="Scaling: fixed workload on 1, 2, ... workers")
    markdown += "\nefficiency = throughput(W) / (W x throughput(1))\n"
    files = write_table(stem, markdown, table)
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for name, group in table.groupby("workload"):
        w, tp = group["workers"], group["trials_per_hour"]
        ax1.plot(w, tp, "o-", label=name)
        ax1.plot(w, tp.iloc[0] / w.iloc[0] * w, ":", color="grey")
        ax2.plot(w, group["efficiency"], "o-", label=name)
    ax1.set(xlabel="workers", ylabel="trials / hour", title="throughput (dotted: linear)")
    ax2.set(xlabel="workers", ylabel="parallel efficiency", ylim=(0, 1.2),
            title="efficiency")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    return markdown, files + [save_figure(fig, stem.with_suffix(".png"))]
