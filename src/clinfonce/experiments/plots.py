"""Plots of an experiment summary: accuracy per run, and granularity sweeps.

Both read the output of :func:`clinfonce.experiments.aggregate.summarize` (``<col>_mean`` and
``<col>_std`` columns); error bars are the std over seeds (none for one seed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_ACCURACIES = (("linear_top1", "linear probe"), ("knn_top1", "kNN"))


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (works without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _values(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    mean = frame.get(f"{column}_mean", pd.Series(math.nan, index=frame.index))
    std = frame.get(f"{column}_std", pd.Series(math.nan, index=frame.index))
    return mean.to_numpy(np.float64), np.nan_to_num(std.to_numpy(np.float64))


def accuracy_plot(summary: pd.DataFrame, path: str | Path, title: str) -> Path:
    """Grouped bars of linear-probe and kNN top-1 per run, std over seeds as error bars.

    Examples:
        >>> s = pd.DataFrame({"name": ["a"], "linear_top1_mean": [80.0],
        ...                   "knn_top1_mean": [75.0]})
        >>> accuracy_plot(s, "accuracy.png", "demo")  # doctest: +SKIP
        PosixPath('accuracy.png')
    """
    plt = pyplot()
    path = Path(path)
    x = np.arange(len(summary))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(summary) + 2), 4))
    lows = []
    for offset, (column, label) in zip((-0.2, 0.2), _ACCURACIES, strict=True):
        mean, std = _values(summary, column)
        spread = std if std.any() else None  # one seed: no error bars
        bars = ax.bar(x + offset, mean, width=0.4, yerr=spread, capsize=3, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
        lows.extend(mean[np.isfinite(mean)].tolist())
    low = min(lows) if lows else 0.0
    ax.set_ylim(max(0.0, low - 10), 100)
    ax.set_xticks(x, summary["name"].astype(str).tolist(), rotation=30, ha="right")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title(title)
    ax.legend(loc="upper left", ncols=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def sweep_plot(
    sweep: pd.DataFrame,
    path: str | Path,
    title: str,
    *,
    references: pd.DataFrame | None = None,
    companions: Mapping[str, pd.DataFrame] | None = None,
    x_label: str = "x",
) -> Path:
    """K, H(Z|T) and I(Z;T), and accuracy against the swept value, in stacked panels.

    Args:
        sweep: summary rows of one sweep, in sweep order (column ``x`` holds the values
            as text, e.g. ``1``, ``2``, ``all``).
        path: the PNG.
        title: figure title.
        references: summary rows (e.g. SimCLR, SupCon) drawn as horizontal accuracy lines.
        companions: other sweeps (name -> summary rows) whose accuracies are drawn on the
            accuracy panel at the matching x values, dotted (e.g. a combined objective).
        x_label: the x axis' name.
    """
    plt = pyplot()
    path = Path(path)
    x = np.arange(len(sweep))
    ticks = [str(v) for v in sweep["x"]]
    fig, axes = plt.subplots(3, 1, figsize=(7, 8.5), sharex=True)
    k_mean, k_std = _values(sweep, "num_clusters")
    axes[0].errorbar(x, k_mean, yerr=k_std, marker="o", capsize=3)
    if np.isfinite(k_mean).any() and np.nanmax(k_mean) > 10 * max(np.nanmin(k_mean), 1):
        axes[0].set_yscale("log")
    axes[0].set_ylabel("K (clusters)")
    for column, label in (("h_z_given_t", "H(Z|T)"), ("i_zt", "I(Z;T)")):
        mean, std = _values(sweep, column)
        axes[1].errorbar(x, mean, yerr=std, marker="o", capsize=3, label=label)
    h_t, _ = _values(sweep, "h_t")
    if np.isfinite(h_t).any():
        axes[1].axhline(float(np.nanmean(h_t)), color="grey", ls=":", label="H(T)")
    axes[1].set_ylabel("bits")
    axes[1].legend(loc="best", fontsize=8)
    colours = {}
    for column, label in _ACCURACIES:
        mean, std = _values(sweep, column)
        line = axes[2].errorbar(x, mean, yerr=std, marker="o", capsize=3, label=label)
        colours[column] = line.lines[0].get_color()
    position = {v: i for i, v in enumerate(ticks)}
    for (name, other), marker in zip((companions or {}).items(), "s^vD", strict=False):
        shared = other[other["x"].astype(str).isin(position)]
        where = np.array([position[str(v)] for v in shared["x"]], dtype=np.float64)
        for column, label in _ACCURACIES:
            mean, std = _values(shared, column)
            axes[2].errorbar(
                where,
                mean,
                yerr=std,
                marker=marker,
                ls=":",
                capsize=3,
                color=colours[column],
                label=f"{name} ({label})",
            )
    if references is not None:
        for style, (_, ref) in zip(("--", "-."), references.iterrows(), strict=False):
            for column, label in _ACCURACIES:
                value = ref.get(f"{column}_mean", math.nan)
                if value is not None and math.isfinite(value):
                    axes[2].axhline(
                        value,
                        color=colours[column],
                        ls=style,
                        lw=1,
                        label=f"{ref['name']} ({label})",
                    )
    axes[2].set_ylabel("test top-1 (%)")
    axes[2].legend(loc="best", fontsize=7)
    axes[2].set_xticks(x, ticks)
    axes[2].set_xlabel(x_label)
    axes[0].set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
