"""Reports about the platform itself (reads MLflow only): the scaling experiment."""
from __future__ import annotations

from pathlib import Path

from tracking import store

COLUMNS = ["workload", "workers", "trials", "wall_s", "trials_per_hour", "problems_per_s",
           "efficiency"]


def scaling_report(client, parent, stem: Path):
    """Throughput and parallel efficiency per workload and worker count; table and plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = store.trials_frame(client, parent)
    frame = frame[frame["status"] == "FINISHED"].sort_values(["workload", "workers"])
    table = frame[[c for c in COLUMNS if c in frame]].reset_index(drop=True)
    lines = ["### Scaling: fixed workload on 1, 2, ... workers", "",
             "| workload | workers | trials | wall (s) | trials/hour | problems/s | efficiency |",
             "|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        problems = r.get("problems_per_s", 0)
        lines.append(f"| {r['workload']} | {int(r['workers'])} | {int(r['trials'])} | "
                     f"{r['wall_s']:.1f} | {r['trials_per_hour']:.0f} | "
                     f"{f'{problems:.0f}' if problems else '—'} | {r['efficiency']:.2f} |")
    markdown = "\n".join(lines) + "\n\nefficiency = throughput(W) / (W x throughput(1))\n"
    stem.with_suffix(".md").write_text(markdown)
    table.to_parquet(stem.with_suffix(".parquet"), engine="pyarrow", index=False)
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
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=120)
    plt.close(fig)
    return markdown, [stem.with_suffix(s) for s in (".md", ".parquet", ".png")]
