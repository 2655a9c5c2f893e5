"""The paper's analysis view: cluster quality across granularities.

For one builder and a range of its granularity (k attributes, hierarchy level, K of K-means,
precomputed columns), measure K, H(Z|T), I(Z;T) and friends against the labels T. Growing
granularity raises I(Z;T) (good) and H(Z|T) (bad); the useful clusters sit in between.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from clinfonce.clusters.builders import get_builder, sweep_builder
from clinfonce.clusters.metrics import cluster_metrics

# Metric columns of a sweep table, after the swept value.
SWEEP_METRICS: tuple[str, ...] = (
    "num_clusters",
    "h_z",
    "h_z_given_t",
    "i_zt",
    "h_t_given_z",
    "i_zt_over_h_t",
    "nmi",
    "ami",
    "singleton_fraction",
    "size_median",
    "size_max",
)


def sweep_metrics(
    table: pd.DataFrame,
    builder: str,
    values: Sequence[Any],
    *,
    labels: Any,
    ami: bool = True,
    progress: Callable[[dict[str, Any]], None] | None = None,
    **params: Any,
) -> pd.DataFrame:
    """One row of metrics (in bits) per value of the builder's granularity.

    Args:
        table: one row per sample.
        builder: a registered builder name.
        values: granularity values (k, level, K, or column names for ``column``).
        labels: downstream label per row (T).
        ami: include the adjusted mutual information (slow for many rows and labels).
        progress: called with each finished row (e.g. to print it).
        **params: the builder's other parameters.

    Returns:
        Columns: the swept parameter, then :data:`SWEEP_METRICS` (``ami`` only if asked).

    Examples:
        >>> t = pd.DataFrame({"a": [0, 1, 0, 1], "b": [0, 0, 1, 1], "label": [0, 1, 0, 1]})
        >>> sweep_metrics(t, "attributes", [1, 2], labels=t["label"], rank="given")[
        ...     ["k", "num_clusters", "i_zt"]]
           k  num_clusters  i_zt
        0  1             2   1.0
        1  2             4   1.0
    """
    param = get_builder(builder).granularity(params)
    rows = []
    for value, result in sweep_builder(table, builder, values, **params):
        metrics = cluster_metrics(result.ids, labels, ami=ami)
        row = {str(param): value, **{k: metrics[k] for k in SWEEP_METRICS if k in metrics}}
        row["num_clusters"] = int(metrics["num_clusters"])
        if progress is not None:
            progress(row)
        rows.append(row)
    table_out: pd.DataFrame = pd.DataFrame(rows)
    return table_out


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}"
    return str(value)


def to_markdown(frame: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table (floats rounded to ``digits``).

    Examples:
        >>> print(to_markdown(pd.DataFrame({"k": [1], "i_zt": [0.5]}), digits=2), end="")
        | k | i_zt |
        |---|---|
        | 1 | 0.50 |
    """
    lines = [
        "| " + " | ".join(map(str, frame.columns)) + " |",
        "|" + "---|" * len(frame.columns),
    ]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, digits) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _annotate(ax: Any, ordered: pd.DataFrame, param: str, *, log_x: bool) -> None:
    """Label points with their swept value (common prefix removed), skipping crowded ones."""
    names = [str(v) for v in ordered[param]]
    prefix = names[0] if len(names) > 1 else ""
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    k = ordered["num_clusters"].to_numpy(dtype=float)
    position = np.log10(np.maximum(k, 1)) if log_x else k
    span = max(float(position.max() - position.min()), 1e-9)
    last = -np.inf
    for name, x, pos, y in zip(names, k, position, ordered["i_zt"], strict=True):
        if (pos - last) / span < 0.04:
            continue
        last = pos
        ax.annotate(
            name[len(prefix) :] or name,
            (x, y),
            textcoords="offset points",
            xytext=(3, 5),
            fontsize=7,
        )


def plot_sweep(frame: pd.DataFrame, path: str | os.PathLike[str], *, title: str = "") -> None:
    """PNG of I(Z;T) and H(Z|T) against the number of clusters K (log scale).

    Points are labelled with their swept value (a shared prefix such as ``label_gran_``
    removed; crowded labels skipped); H(T), the ceiling of I(Z;T), is drawn as
    a dashed line when known.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = frame.sort_values("num_clusters", kind="stable")
    param = frame.columns[0]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for column, label, marker in (
        ("i_zt", "I(Z;T)", "o"),
        ("h_z_given_t", "H(Z|T)", "s"),
    ):
        ax.plot(ordered["num_clusters"], ordered[column], marker=marker, label=label)
    if "h_t_given_z" in ordered and len(ordered):
        h_t = float((ordered["i_zt"] + ordered["h_t_given_z"]).iloc[0])
        ax.axhline(h_t, color="grey", linestyle="--", linewidth=1, label="H(T)")
    log_x = len(ordered) and ordered["num_clusters"].max() > 10 * max(
        ordered["num_clusters"].min(), 1
    )
    if log_x:
        ax.set_xscale("log")
    _annotate(ax, ordered, str(param), log_x=bool(log_x))
    ax.set_xlabel("number of clusters K")
    ax.set_ylabel("bits")
    ax.set_title(title or f"cluster quality against K ({param})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
