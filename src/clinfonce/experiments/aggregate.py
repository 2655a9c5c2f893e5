"""From one results row per (run, seed) to the report: mean ± std over seeds, gap closed.

"Gap closed" measures how far a run moves from the self-supervised reference (SimCLR) toward
the supervised one (SupCon): ``(run - SimCLR) / (SupCon - SimCLR)`` on seed means, so 0 is
SimCLR's accuracy and 1 is SupCon's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

#: Accuracy columns of a results row (percent).
ACCURACY_COLUMNS: tuple[str, ...] = ("linear_top1", "linear_top5", "knn_top1", "knn_top5")
#: Cluster-quality columns (bits, plug-in, over the training rows; K is a count).
CLUSTER_COLUMNS: tuple[str, ...] = ("num_clusters", "h_z_given_t", "i_zt", "h_t")
#: Every numeric column averaged over seeds.
NUMERIC_COLUMNS: tuple[str, ...] = (
    *CLUSTER_COLUMNS,
    *ACCURACY_COLUMNS,
    "train_seconds",
    "eval_seconds",
)
#: Accuracies that get a gap-closed column.
GAP_METRICS: tuple[str, ...] = ("linear_top1", "knn_top1")
#: Descriptive columns of a run (the same for all its seeds).
RUN_COLUMNS: tuple[str, ...] = ("method", "clusters", "group", "x")


def summarize(rows: pd.DataFrame, order: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per run: ``seeds`` and ``<column>_mean`` / ``<column>_std`` (sample std,
    ``ddof=1``; NaN for a single seed) of every numeric column.

    Args:
        rows: results rows (columns ``name``, ``seed``, :data:`RUN_COLUMNS`,
            :data:`NUMERIC_COLUMNS`; missing numeric values are NaN).
        order: run names in report order (default: first appearance).

    Examples:
        >>> rows = pd.DataFrame({"name": ["a", "a"], "seed": [0, 1], "method": ["simclr"] * 2,
        ...                      "linear_top1": [80.0, 82.0]})
        >>> s = summarize(rows)
        >>> float(s.loc[0, "linear_top1_mean"]), round(float(s.loc[0, "linear_top1_std"]), 4)
        (81.0, 1.4142)
    """
    names = list(order) if order is not None else list(dict.fromkeys(rows["name"]))
    records: list[dict[str, Any]] = []
    for name in names:
        group = rows[rows["name"] == name]
        if group.empty:
            continue
        record: dict[str, Any] = {"name": name, "seeds": len(group)}
        for column in RUN_COLUMNS:
            if column in group:
                record[column] = group[column].iloc[0]
        for column in NUMERIC_COLUMNS:
            values = pd.to_numeric(group.get(column, pd.Series(dtype=float)), errors="coerce")
            values = values.dropna().to_numpy(dtype=np.float64)
            record[f"{column}_mean"] = float(values.mean()) if len(values) else math.nan
            record[f"{column}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        records.append(record)
    summary: pd.DataFrame = pd.DataFrame.from_records(records)
    return summary


def gap_closed(value: float, low: float, high: float) -> float:
    """``(value - low) / (high - low)``; NaN when the references are equal.

    Examples:
        >>> round(gap_closed(83.7, 81.3, 87.4), 4)
        0.3934
    """
    if not math.isfinite(high - low) or high == low:
        return math.nan
    return (value - low) / (high - low)


def gap_references(
    summary: pd.DataFrame, gap: tuple[str, str] | None = None
) -> tuple[str, str] | None:
    """The (low, high) reference runs: ``gap`` when given and both present, else the only
    run of method ``simclr`` and the only run of method ``supcon``; ``None`` otherwise.

    Examples:
        >>> s = pd.DataFrame({"name": ["s", "c", "u"], "method": ["simclr", "clinfonce",
        ...                                                      "supcon"]})
        >>> gap_references(s)
        ('s', 'u')
    """
    names = set(summary["name"]) if "name" in summary else set()
    if gap is not None:
        return gap if set(gap) <= names else None
    if "method" not in summary:
        return None
    low = summary.loc[summary["method"] == "simclr", "name"].tolist()
    high = summary.loc[summary["method"] == "supcon", "name"].tolist()
    if len(low) == 1 and len(high) == 1:
        return low[0], high[0]
    return None


def add_gap_closed(summary: pd.DataFrame, gap: tuple[str, str] | None = None) -> pd.DataFrame:
    """``summary`` plus ``gap_<metric>`` for :data:`GAP_METRICS` (NaN for the references
    themselves and without references).

    Examples:
        >>> s = pd.DataFrame({"name": ["s", "c", "u"], "method": ["simclr", "clinfonce",
        ...     "supcon"], "linear_top1_mean": [80.0, 85.0, 90.0],
        ...     "knn_top1_mean": [70.0, 70.0, 80.0]})
        >>> add_gap_closed(s)[["gap_linear_top1", "gap_knn_top1"]].iloc[1].tolist()
        [0.5, 0.0]
    """
    summary = summary.copy()
    refs = gap_references(summary, gap)
    for metric in GAP_METRICS:
        column = f"gap_{metric}"
        summary[column] = math.nan
        mean = f"{metric}_mean"
        if refs is None or mean not in summary:
            continue
        by_name = summary.set_index("name")[mean]
        low, high = float(by_name[refs[0]]), float(by_name[refs[1]])
        for i, row in summary.iterrows():
            if row["name"] not in refs:
                summary.loc[i, column] = gap_closed(float(row[mean]), low, high)
    return summary


def _mean_std(row: pd.Series, column: str, digits: int) -> str:
    mean, std = row.get(f"{column}_mean", math.nan), row.get(f"{column}_std", math.nan)
    if mean is None or not math.isfinite(mean):
        return "-"
    if std is None or not math.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _count(row: pd.Series, column: str) -> str:
    mean, std = row.get(f"{column}_mean", math.nan), row.get(f"{column}_std", math.nan)
    if mean is None or not math.isfinite(mean):
        return "-"
    if std is not None and math.isfinite(std) and std > 0:
        return f"{mean:.1f} ± {std:.1f}"
    return f"{mean:.0f}"


def _plain(value: Any, digits: int) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def markdown_table(summary: pd.DataFrame) -> str:
    """The Markdown table of a (gap-closed) summary: mean ± std over seeds.

    Cluster columns appear when some run has clusters, gap columns when references exist.

    Examples:
        >>> s = add_gap_closed(summarize(pd.DataFrame({"name": ["a", "a"], "seed": [0, 1],
        ...     "method": ["simclr"] * 2, "clusters": [""] * 2, "linear_top1": [80.0, 82.0],
        ...     "knn_top1": [70.0, 70.0]})))
        >>> print(markdown_table(s), end="")  # doctest: +NORMALIZE_WHITESPACE
        | run | method | seeds | linear top-1 | linear top-5 | kNN top-1 | kNN top-5 | train s |
        |---|---|---|---|---|---|---|---|
        | a | simclr | 2 | 81.0 ± 1.4 | - | 70.0 ± 0.0 | - | - |
    """
    has_clusters = "num_clusters_mean" in summary and summary["num_clusters_mean"].notna().any()
    has_gap = any(f"gap_{m}" in summary and summary[f"gap_{m}"].notna().any() for m in GAP_METRICS)
    header = ["run", "method"]
    if has_clusters:
        header += ["clusters", "K", "H(Z|T)", "I(Z;T)"]
    header += ["seeds", "linear top-1", "linear top-5", "kNN top-1", "kNN top-5"]
    if has_gap:
        header += ["gap closed (linear)", "gap closed (kNN)"]
    header += ["train s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in summary.iterrows():
        cells = [str(row["name"]), str(row.get("method", "-"))]
        if has_clusters:
            known = math.isfinite(row.get("num_clusters_mean", math.nan))
            cells += [
                str(row.get("clusters") or "-") if known else "-",
                _count(row, "num_clusters"),
                _mean_std(row, "h_z_given_t", 3),
                _mean_std(row, "i_zt", 3),
            ]
        cells.append(str(int(row["seeds"])))
        cells += [_mean_std(row, column, 1) for column in ACCURACY_COLUMNS]
        if has_gap:
            cells += [_plain(row.get(f"gap_{m}", math.nan), 2) for m in GAP_METRICS]
        train = row.get("train_seconds_mean", math.nan)
        cells.append(_plain(train, 0))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
