"""DecisiveNets Figs 2–4 (§5.7): proportion of wins of DHAM feature maps, and a balance table.

Reads a ``wins`` sweep (:mod:`sweeps.wins`) from MLflow: each finished trial's metrics
(``source_ell``, ``source_groups``, ``source_seed``, ``balance.layerNN``, ``dead.layerNN``)
and its win counts, saved in the trial's final checkpoint (artifact
:data:`tracking.checkpoints.CHECKPOINT_ARTIFACT`, key ``wins``: per class the images counted,
per DHAM layer its group size, locations per image and the (classes, channels) win counts).

* The table: per model (ℓ, or c) and DHAM layer, the balance (normalised entropy of the wins
  within each group, averaged over groups; 1 = every map wins equally often) and the share of
  dead groups, mean ± 95% CI over seeds, and the class gap between the first two classes
  (mean over groups of the total-variation distance between their win distributions; the
  lowest seed's model).
* Fig 2 (ℓ = 2, layer 1, first 12 groups, classes 1 and 2), Fig 3 (ℓ = 8, layer 1, first 4
  groups, all test images) and Fig 4 (ℓ = 2, first 12 maps of layers 1, 21 and 48, classes 1
  and 2) as bar plots of one model each (the lowest seed: maps are not aligned across seeds).
  A model with fewer groups shows them all; one with fewer than 48 DHAM layers shows its
  first, its 21st (or, below 21 layers, the one at 21/48 of its depth) and its last layer;
  a sweep without the figure's ℓ gets a note instead of the plot.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from dham_core.published import DECISIVENETS_WINS_FIGURES as FIGURES, DECISIVENETS_WINS_FINDINGS
from tracking import store
from tracking.checkpoints import CHECKPOINT_ARTIFACT
from analysis.render import finished, markdown_table, mean_ci, number, pyplot, save_figure, write_table

TITLE = "DecisiveNets Figs 2-4 - proportion of wins of DHAM feature maps"


def load_wins(client, run_id: str) -> dict:
    """The win counts of a trial's checkpoint as NumPy: ``images`` (K,), ``layers`` [dicts with
    ``index``, ``name``, ``ell``, ``locations``, ``wins`` (K, C)]."""
    import os

    import torch

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, CHECKPOINT_ARTIFACT, tmp)
        state = torch.load(path, map_location="cpu", weights_only=True)["wins"]
    return {"images": state["images"].numpy(), "layers": [
        {**layer, "wins": layer["wins"].numpy(), "dead": layer["dead"].numpy()}
        for layer in state["layers"]]}


def proportions(wins: dict, layer: dict, classes=None) -> np.ndarray:
    """(C,) proportions of wins of ``layer`` over the images of ``classes`` (None = all)."""
    rows = slice(None) if classes is None else list(classes)
    pairs = wins["images"][rows].sum() * layer["locations"]
    return layer["wins"][rows].sum(0) / pairs if pairs else np.full(layer["wins"].shape[1], np.nan)


def class_gap(wins: dict, layer: dict, classes=(0, 1)) -> float:
    """Mean over groups of the total-variation distance between two classes' win distributions."""
    if len(wins["images"]) <= max(classes):
        return float("nan")
    a, b = (proportions(wins, layer, [k]).reshape(-1, layer["ell"]) for k in classes)
    return float(0.5 * np.abs(a - b).sum(1).mean())


def model_label(row) -> str:
    groups = int(row.get("source_groups") or 0)
    return f"c={groups}" if groups else f"ell={int(row['source_ell'])}"


def figure_layers(count: int, wanted=FIGURES["fig4"]["layers"]) -> list[int]:
    """Fig 4's layers in a model with ``count`` DHAM layers: the paper's 1, 21, 48 when it has
    48; else the first, the 21st (below 21 layers: the one at 21/48 of the depth), the last."""
    if count >= wanted[-1]:
        return list(wanted)
    middle = wanted[1] if count >= wanted[1] else max(1, round(wanted[1] * count / wanted[-1]))
    return sorted({1, middle, count})


def _bars(ax, series: dict[str, np.ndarray], ell: int, title: str) -> None:
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series.items()):
        ax.bar(np.arange(len(values)) + i * width, values, width, label=label)
    count = len(next(iter(series.values())))
    for edge in range(ell, count, ell):  # group boundaries
        ax.axvline(edge - 0.5 + 0.4 - width / 2, color="grey", lw=0.5, ls=":")
    ax.set_xticks(np.arange(count) + 0.4 - width / 2, [str(j + 1) for j in range(count)], fontsize=7)
    ax.set_xlabel("feature map (dotted lines: group boundaries)")
    ax.set_ylabel("proportion of wins")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    if len(series) > 1:
        ax.legend(fontsize=7)


def draw_figure(name: str, model, path: Path) -> tuple[str, Path | None]:
    """Draw figure ``name`` from ``model`` (a trials row with its ``wins``); (note, file)."""
    spec = FIGURES[name]
    label = f"{name[:3].title()} {name[3:]} (ell = {spec['ell']})"
    if model is None:
        return f"{label}: no ell = {spec['ell']} model in this sweep; not drawn.", None
    wins = model["wins"]
    layers = figure_layers(len(wins["layers"])) if name == "fig4" else list(spec["layers"])
    classes = spec["classes"]
    if classes is not None and len(wins["images"]) <= max(classes):
        return f"{label}: the dataset has fewer than {max(classes) + 1} classes; not drawn.", None
    plt = pyplot()
    fig, axes = plt.subplots(len(layers), 1, figsize=(9, 2.8 * len(layers)), squeeze=False)
    notes = []
    for ax, index in zip(axes[:, 0], layers):
        layer = wins["layers"][index - 1]
        maps = spec["maps"] if "maps" in spec else spec["groups"] * layer["ell"]
        shown = min(maps, layer["wins"].shape[1])
        if shown < maps:
            notes.append(f"layer {index} has {layer['wins'].shape[1]} maps, all shown")
        series = ({f"class {k + 1} (label {k})": proportions(wins, layer, [k])[:shown] for k in classes}
                  if classes is not None else {"all test images": proportions(wins, layer)[:shown]})
        _bars(ax, series, layer["ell"], f"DHAM layer {index} ({layer['name']}), group size "
                                        f"{layer['ell']}, seed {int(model['source_seed'])}")
    if name == "fig4" and layers != list(spec["layers"]):
        notes.append(f"the model has {len(wins['layers'])} DHAM layers, so layers "
                     f"{', '.join(map(str, layers))} stand for the paper's 1, 21, 48")
    fig.suptitle(f"{label}: proportion of wins", fontsize=10)
    save_figure(fig, path)
    return f"{label}: `{path.name}`" + (f" ({'; '.join(notes)})" if notes else "") + ".", path


def balance_rows(trials: pd.DataFrame, models: dict) -> pd.DataFrame:
    """One row per (model, layer): balance and dead share (mean, CI, n over seeds), class gap."""
    rows = []
    for label, group in trials.groupby(trials.apply(model_label, axis=1), sort=False):
        keys = {int(c[len("dead.layer"):]): c for c in group if c.startswith("dead.layer")}
        wins = models[label]["wins"]
        for layer in wins["layers"]:
            index, key = layer["index"], keys[layer["index"]]
            bal, ci, n = mean_ci(group.get(key.replace("dead.", "balance."), pd.Series()).dropna())
            dead = mean_ci(group[key].dropna())[0]
            rows.append({"model": label, "ell_sort": group["source_ell"].iloc[0], "layer": index,
                         "module": layer["name"], "group_size": layer["ell"],
                         "groups": layer["wins"].shape[1] // layer["ell"], "balance": bal,
                         "balance_ci": ci, "n": n, "dead_percent": 100 * dead,
                         "class_gap": class_gap(wins, layer)})
    frame = pd.DataFrame(rows)
    return frame.sort_values(["ell_sort", "model", "layer"], ignore_index=True) if rows else frame


def report_wins(client, parent, stem: Path) -> tuple[str, list[Path]]:
    """Build the balance table and Figs 2–4 from ``parent``'s trials; write MD, Parquet, PNGs."""
    trials = finished(store.trials_frame(client, parent))
    if not trials.empty and "source_ell" in trials:
        trials = trials.dropna(subset=["source_ell"]).sort_values("source_seed")
    models = {}  # model label -> its lowest seed's trial row, with its win counts
    for _, row in trials.iterrows():
        models.setdefault(model_label(row), {**row, "wins": load_wins(client, row["run_id"])})
    table = balance_rows(trials, models) if models else pd.DataFrame()
    by_ell = {m["source_ell"]: m for m in models.values() if not m.get("source_groups")}
    files, notes = [], []
    for name, spec in FIGURES.items():
        note, path = draw_figure(name, by_ell.get(spec["ell"]), stem.with_name(f"{stem.name}-{name}.png"))
        notes.append(f"- {note}")
        files += [path] if path else []
    header = ["model", "DHAM layer", "module", "group size", "groups", "balance (1 = even)",
              "dead groups (%)", "class 1 vs 2 gap"]
    rows = [[r["model"], r["layer"], r["module"], r["group_size"], r["groups"],
             number(r["balance"], 3, r["balance_ci"], r["n"]), number(r["dead_percent"], 1),
             number(r["class_gap"], 3)] for _, r in table.iterrows()]
    plain = sorted(label for label, m in models.items() if not m["wins"]["layers"])
    context = [f"ours: {len(trials)} finished models, balance mean ± 95% CI over seeds; class "
               f"gap on the lowest seed. Paper (ResNet-50 / CIFAR-100, figures only): "
               f"{DECISIVENETS_WINS_FINDINGS}."]
    if plain:
        context.append(f"no DHAM layer (plain ReLU network): {', '.join(plain)}.")
    markdown = markdown_table(header, rows, title=TITLE, notes=context)
    markdown += "\n" + "\n".join(notes) + "\n"
    files = write_table(stem, markdown, table.drop(columns=["ell_sort"], errors="ignore")) + files
    return markdown, files
