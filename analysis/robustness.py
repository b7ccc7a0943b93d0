"""DecisiveNets Table 5 rebuilt from a robustness sweep, with the published numbers beside.

Each trial evaluated one trained network (a source trial's checkpoint, param
``checkpoint_run``) clean and under each noise at each severity (``trainables.robustness``).
Per ℓ of the source (metric ``source_ell``): clean accuracy and each noise's accuracy
averaged over the 5 severities (Table 5's columns), then the per-severity breakdown, each the
mean ± 95% CI over the trained networks (seeds) of that ℓ; a network evaluated under several
noise seeds counts once, with its mean. Rows and numbers go through :mod:`analysis.decisivenets`
(:class:`~analysis.decisivenets.TableSpec`); the architecture and training set printed above
the table are read from the source runs. The PNG plots accuracy against severity (0 = clean),
one panel per noise, one line per ℓ.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from dham_core import published
from tracking import store
from analysis.decisivenets import TableSpec, aggregate, build_table, context_line, to_markdown
from analysis.render import pyplot, save_figure, write_table

KINDS = {"gaussian_noise": "Gaussian", "shot_noise": "shot", "impulse_noise": "impulse"}
SEVERITIES = (1, 2, 3, 4, 5)
SOURCE_PARAMS = ("dataset", "arch", "width", "epochs")

TABLE5 = TableSpec(
    title="DecisiveNets Table 5 - accuracy under noise (mean over 5 severities)",
    keys=("ell",),
    ours={"clean_acc": "ours clean (%)",
          **{f"{kind}_acc": f"ours {label} (%)" for kind, label in KINDS.items()}},
    published=published.DECISIVENETS_TABLE5,
    published_labels={"r18_c10_clean": "paper R18 clean (%)",
                      "r18_c10_gaussian": "paper R18 Gaussian (%)",
                      "r18_c10_shot": "paper R18 shot (%)",
                      "r18_c10_impulse": "paper R18 impulse (%)"},
    percent=("clean_acc", *(f"{kind}_acc" for kind in KINDS)))


def severity_spec(kind: str) -> TableSpec:
    """The per-severity breakdown of one noise (no published rows: the paper gives means)."""
    metrics = [f"{kind}_s{s}_acc" for s in SEVERITIES]
    return TableSpec(title=f"{KINDS[kind]} noise per severity (%)", keys=("ell",),
                     ours={m: f"s{s}" for m, s in zip(metrics, SEVERITIES)},
                     published=[], published_labels={}, percent=tuple(metrics))


def per_network(trials: pd.DataFrame) -> pd.DataFrame:
    """One FINISHED row per evaluated network (``checkpoint_run``), its metrics averaged over
    noise seeds, with ``ell`` = the source's ℓ."""
    done = trials[trials["status"] == "FINISHED"] if "status" in trials else trials
    if done.empty or "checkpoint_run" not in done or "source_ell" not in done:
        return pd.DataFrame(columns=["checkpoint_run", "ell", "status"])
    metrics = [c for c in done.columns if c.endswith("_acc") or c in ("source_ell", "source_seed")]
    rows = done.groupby("checkpoint_run", sort=True)[metrics].mean().reset_index()
    rows["ell"] = rows["source_ell"].round().astype(int)
    rows["status"] = "FINISHED"
    return rows


def with_source_params(client, networks: pd.DataFrame) -> pd.DataFrame:
    """``networks`` plus the source runs' ``SOURCE_PARAMS`` (what was trained, for the context)."""
    extra = []
    for run_id in networks.get("checkpoint_run", []):
        params = client.get_run(run_id).data.params
        extra.append({k: params.get(k) for k in SOURCE_PARAMS})
    return pd.concat([networks.reset_index(drop=True), pd.DataFrame(extra, columns=list(SOURCE_PARAMS))],
                     axis=1)


def plot(breakdown: dict[str, pd.DataFrame], path: Path) -> Path:
    """Accuracy vs severity (0 = clean) per ℓ with 95% CIs, one panel per noise."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(KINDS), figsize=(4.2 * len(KINDS), 3.8), sharey=True)
    for ax, (kind, table) in zip(axes, breakdown.items()):
        for _, row in table.iterrows():
            ys = [row["clean_acc"]] + [row[f"{kind}_s{s}_acc"] for s in SEVERITIES]
            cis = [row["clean_acc_ci"]] + [row[f"{kind}_s{s}_acc_ci"] for s in SEVERITIES]
            ax.errorbar(range(len(ys)), ys, yerr=pd.Series(cis).fillna(0), marker="o", capsize=2,
                        label=f"ell={row['ell']:g}")
        ax.set_title(f"{KINDS[kind]} noise", fontsize=10)
        ax.set_xlabel("severity (0 = clean)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    axes[-1].legend(fontsize=8)
    return save_figure(fig, path)


def report_robustness(client, parent, stem: Path) -> tuple[str, list[Path]]:
    """Table 5 beside the paper's, the per-severity breakdown, Parquet and the PNG."""
    trials = store.trials_frame(client, parent)
    networks = with_source_params(client, per_network(trials))
    failed = trials[trials["status"] == "FAILED"][["status"]] if "status" in trials else None
    context = context_line(pd.concat([networks, failed]), TABLE5)
    table = build_table(networks, TABLE5)
    parts = [to_markdown(table, TABLE5, context.replace("finished trials", "evaluated networks")
                         .replace("over seeds", "over networks (seeds)"))]
    breakdown = {}
    for kind in KINDS:
        spec = severity_spec(kind)
        ours = aggregate(networks, spec)
        parts.append(to_markdown(ours, spec))
        breakdown[kind] = ours.merge(aggregate(networks, TABLE5)[["ell", "clean_acc", "clean_acc_ci"]],
                                     on="ell")
        table = table.merge(ours.drop(columns=["n"]), on="ell", how="left")
    markdown = "\n".join(parts)
    files = write_table(stem, markdown, table)
    if not networks.empty:
        files.append(plot(breakdown, stem.with_suffix(".png")))
    return markdown, files
