"""What every report shares: number formats, Markdown tables, plot set-up, output files.

One place so that every table prints numbers the same way ("—" for a missing value, never a
made-up one) and every report writes the same trio of files (Markdown, Parquet, PNG).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

MISSING = "—"


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value, digits: int = 2, ci=None, n=None) -> str:
    """A number for a Markdown cell: ``digits`` decimals below 10,000, a grouped integer from
    10,000 on; ``± ci`` when the confidence half-width is known, ``(n=N)`` when ``n`` is given."""
    if is_missing(value):
        return MISSING
    text = f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.{digits}f}"
    if not is_missing(ci):
        text += f" ± {ci:.{digits}f}"
    if not is_missing(n):
        text += f" (n={int(n)})"
    return text


def sci(value) -> str:
    """Scientific notation with 3 significant digits ("—" when missing)."""
    return MISSING if is_missing(value) else f"{value:.2e}"


def compact(value) -> str:
    """Integers grouped, other floats to 3 significant digits (3 decimals below 1,000)."""
    if not isinstance(value, float):
        return str(value)
    if math.isnan(value):
        return MISSING
    if value.is_integer():
        return f"{int(value):,}"
    return f"{value:.3g}" if abs(value) >= 1000 else f"{value:.3f}"


def markdown_table(header: list[str], rows: list[list], title: str | None = None,
                   notes: list[str] | tuple[str, ...] = ()) -> str:
    """A Markdown table (cells as given, ``str()``-ed), with an optional ``###`` title and
    note lines between the title and the table."""
    lines = []
    if title:
        lines += [f"### {title}", ""]
    if notes:
        lines += [*notes, ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def pyplot():
    """matplotlib's pyplot on the headless Agg backend (reports run on servers and in CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> Path:
    """Lay out, save at 120 dpi and close ``fig``; return ``path``."""
    plt = pyplot()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def finished(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of trials that finished (all rows when the frame has no status column)."""
    if frame.empty or "status" not in frame:
        return frame
    return frame[frame["status"] == "FINISHED"]


def write_table(stem: Path, markdown: str, table: pd.DataFrame) -> list[Path]:
    """Write ``stem.md`` and ``stem.parquet`` (pyarrow); return both paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".md").write_text(markdown)
    table.to_parquet(stem.with_suffix(".parquet"), engine="pyarrow", index=False)
    return [stem.with_suffix(".md"), stem.with_suffix(".parquet")]


def mean_ci(values) -> tuple[float, float, int]:
    """Mean, half-width of the 95% Student-t confidence interval (nan for n < 2), n."""
    from scipy import stats

    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(vals)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(vals) / n
    if n < 2:
        return mean, math.nan, n
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
    return mean, stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n), n


def non_dominated(maximise: np.ndarray, minimise: np.ndarray) -> np.ndarray:
    """Boolean mask of the points no other point dominates: none has ``maximise`` >= and
    ``minimise`` <= with one of them strict (exact duplicates do not dominate each other).
    NaN points are never on the front. O(n log n): sort by ``maximise`` descending and sweep,
    keeping the least ``minimise`` of the strictly better points seen so far."""
    a, b = np.asarray(maximise, float), np.asarray(minimise, float)
    front = np.zeros(len(a), bool)
    ok = np.flatnonzero(~(np.isnan(a) | np.isnan(b)))
    order = ok[np.lexsort((b[ok], -a[ok]))]
    best_above = np.inf  # least `minimise` among points with a strictly larger `maximise`
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and a[order[end]] == a[order[start]]:
            end += 1
        group = order[start:end]
        least = b[group].min()
        front[group] = (b[group] == least) & (least < best_above)
        best_above = min(best_above, least)
        start = end
    return front
