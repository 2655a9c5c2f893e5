"""The two extremes (one cluster per sample = SimCLR, one per label = SupCon) and
precomputed cluster columns (e.g. the official ``label_gran_<k>``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clinfonce.clusters._codes import encode_labels
from clinfonce.clusters.tables import require_columns


def build_instance(table: pd.DataFrame) -> tuple[np.ndarray, dict[str, Any]]:
    """Every row its own cluster, ids in row order (the SimCLR / InfoNCE extreme).

    Examples:
        >>> build_instance(pd.DataFrame({"a": [7, 7, 7]}))[0]
        array([0, 1, 2])
    """
    return np.arange(len(table), dtype=np.int64), {}


def _by_column(table: pd.DataFrame, column: str, option: str) -> tuple[np.ndarray, dict[str, Any]]:
    require_columns(table, [column], option)
    coded = encode_labels(table[column])
    return coded.codes, {"num_values": coded.n_levels}


def build_label(table: pd.DataFrame, *, label_column: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Cluster = downstream label (the SupCon extreme); ids in sorted label order.

    Args:
        table: one row per sample.
        label_column: the label column (no missing values).

    Examples:
        >>> build_label(pd.DataFrame({"label": ["dog", "cat", "dog"]}), label_column="label")[0]
        array([1, 0, 1])
    """
    return _by_column(table, label_column, "label_column")


def build_column(table: pd.DataFrame, *, column: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Cluster = an existing column of cluster ids (e.g. ``label_gran_10`` of the official
    files), re-numbered ``0..K-1`` in sorted value order. Missing values are an error.

    Args:
        table: one row per sample.
        column: an existing column of cluster ids (e.g. label_gran_10).

    Examples:
        >>> build_column(pd.DataFrame({"g": [40, 3, 40]}), column="g")[0]
        array([1, 0, 1])
    """
    return _by_column(table, column, "column")
