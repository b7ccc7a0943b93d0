"""DecisiveNets Table 4 (few-shot transfer on CIFAR-FS) rebuilt from a fewshot sweep's trial runs.

One row per ell: our few-shot accuracy (mean ± 95% Student-t CI over seeds, n = trials), the
per-run episode CI (mean over seeds of each run's 95% half-width over its episodes), the
backbone's accuracy on the base classes' held-out images, and the paper's ResNet-18 and
ResNet-50 columns with their printed CIs (:data:`dham_core.published.DECISIVENETS_TABLE4`).
The table machinery is :mod:`analysis.decisivenets`'s.
"""
from __future__ import annotations

from pathlib import Path

from dham_core import published
from analysis.decisivenets import TableSpec, report_table

TABLE4 = TableSpec(
    title="DecisiveNets Table 4 - few-shot transfer (N-way K-shot, nearest class mean) vs ell",
    keys=("ell",),
    ours={"fewshot_acc": "ours few-shot acc (%)", "fewshot_ci95": "ours episode CI95 (%)",
          "test_acc": "ours base-class test acc (%)"},
    published=published.DECISIVENETS_TABLE4,
    published_labels={"r18_acc": "paper R18 (%)", "r18_ci95": "paper R18 CI95",
                      "r50_acc": "paper R50 (%)", "r50_ci95": "paper R50 CI95"},
    percent=("fewshot_acc", "fewshot_ci95", "test_acc"),
    plot_metric="fewshot_acc", plot_published=("r18_acc", "r50_acc"),
    context=("dataset", "split", "arch", "width", "epochs", "ways", "shots", "queries", "episodes"),
)


def report_fewshot(client, parent, stem: Path) -> tuple[str, list[Path]]:
    """Table 4 of ``parent``'s trials: Markdown, Parquet and PNG (see the module doc)."""
    return report_table(TABLE4, client, parent, stem)
