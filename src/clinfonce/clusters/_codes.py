"""Integer codes for categorical columns and for the joint value of several columns.

Every builder ends in the same place: one small integer per row whose equality means "same
cluster". Columns are first turned into dense codes 0..L-1 (sorted by value, so ids do not
depend on row order), and several columns are combined into one mixed-radix int64 code whose
numeric order is the lexicographic order of the tuple. The code is re-compacted to 0..U-1
(order-preserving) whenever the next column could overflow int64, so any number of columns
can be combined in O(N) per column, with no Python loop over rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

MissingPolicy = Literal["own", "error"]
MISSING_POLICIES: tuple[str, ...] = ("own", "error")

# Above this span (max - min) integer columns are factorized by hashing instead of bincount.
_BINCOUNT_SPAN = 1 << 20
# The joint code is compacted before its radix could exceed this (int64 headroom).
_RADIX_LIMIT = 1 << 62


@dataclass(frozen=True)
class ColumnCodes:
    """Dense codes of one column.

    Attributes:
        codes: int64 ``[N]`` in ``0..n_levels-1``; a missing value (policy "own") has the
            last code.
        levels: the value of each code, sorted; ``None`` stands for "missing".
    """

    codes: np.ndarray
    levels: list[Any]

    @property
    def n_levels(self) -> int:
        """Number of distinct values (missing counted as one)."""
        return len(self.levels)


def dense_rank(codes: np.ndarray) -> tuple[np.ndarray, int]:
    """Order-preserving compaction of int64 codes to ``0..U-1``.

    Hashing (``pd.factorize``, O(N)) then sorting only the U distinct values is much faster
    than ``np.unique`` (a full O(N log N) sort) when U is small.

    Examples:
        >>> dense_rank(np.array([40, 7, 40, 9]))
        (array([2, 0, 2, 1]), 3)
    """
    first_seen, uniques = pd.factorize(np.asarray(codes, dtype=np.int64))
    order = np.argsort(uniques, kind="stable")
    rank = np.empty(len(uniques), dtype=np.int64)
    rank[order] = np.arange(len(uniques), dtype=np.int64)
    return rank[first_seen], len(uniques)


class JointCoder:
    """The joint value of columns added one at a time, as an order-preserving int64 code.

    ``ids()`` after adding columns c1..ck equals the rank of the tuple (c1, ..., ck) among the
    tuples present, so the clustering after k+1 columns refines the one after k (nested).

    Examples:
        >>> coder = JointCoder(4)
        >>> coder.add(np.array([0, 0, 1, 1]), 2)
        >>> coder.add(np.array([1, 0, 1, 1]), 2)
        >>> coder.ids()
        array([1, 0, 2, 2])
    """

    def __init__(self, n_rows: int) -> None:
        self._codes = np.zeros(n_rows, dtype=np.int64)
        self._radix = 1

    def add(self, codes: np.ndarray, n_levels: int) -> None:
        """Append one column with codes in ``0..n_levels-1`` as the least significant digit."""
        n_levels = max(int(n_levels), 1)
        if self._radix * n_levels > _RADIX_LIMIT:
            self._codes, self._radix = dense_rank(self._codes)
        self._codes *= n_levels
        self._codes += codes
        self._radix *= n_levels

    def ids(self) -> np.ndarray:
        """Contiguous ids ``0..U-1`` in lexicographic order of the joint value."""
        return dense_rank(self._codes)[0]


def joint_ids(columns: Sequence[ColumnCodes]) -> np.ndarray:
    """Contiguous ids of the joint value of several coded columns (see :class:`JointCoder`)."""
    coder = JointCoder(len(columns[0].codes))
    for column in columns:
        coder.add(column.codes, column.n_levels)
    return coder.ids()


def resolve_k(k: int | None, available: int, what: str) -> int:
    """Check a number of columns to combine; ``None`` means all ``available``."""
    if k is None:
        return available
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k={k!r}: the number of {what} to combine must be a positive integer")
    if k > available:
        raise ValueError(
            f"k={k} is larger than the number of {what} ({available}); use k <= {available}"
        )
    return int(k)


def nested_joint(
    n_rows: int,
    ranked: Sequence[str],
    encode: Callable[[str], ColumnCodes],
    ks: Sequence[int],
) -> Iterator[tuple[int, np.ndarray]]:
    """Joint-value ids of the first k of ``ranked`` columns for each k in ``ks`` (ascending).

    Each column is encoded once and appended to a running :class:`JointCoder`, so a sweep
    over k costs about as much as its largest k, and the clusterings are nested.
    """
    wanted = set(ks)
    coder = JointCoder(n_rows)
    for used, name in enumerate(ranked[: max(ks)], start=1):
        coded = encode(name)
        coder.add(coded.codes, coded.n_levels)
        if used in wanted:
            yield used, coder.ids()


def first_missing_rows(mask: np.ndarray, limit: int = 5) -> str:
    """The first few row positions where ``mask`` holds, for error messages."""
    rows = np.flatnonzero(mask)[:limit]
    return ", ".join(str(r) for r in rows)


@dataclass(frozen=True)
class ColumnSummary:
    """A validated categorical column: its sorted levels and counts, codes on demand.

    Ranking needs only the counts, so the O(N) code array is built only for the columns a
    clustering actually combines.

    Attributes:
        levels: the distinct values, sorted; ``None`` (last) stands for "missing".
        counts: rows per level.
    """

    levels: list[Any]
    counts: np.ndarray
    make_codes: Callable[[], np.ndarray]

    def encode(self) -> ColumnCodes:
        """The dense codes of every row."""
        return ColumnCodes(self.make_codes(), self.levels)


def summarize_column(
    series: pd.Series, *, missing: str = "own", max_levels: int | None = None
) -> ColumnSummary:
    """Validate a categorical (binary, integer, string, bool, category) column.

    Args:
        series: the column; its name appears in errors.
        missing: ``"own"`` gives missing values (NaN, None) a level of their own, after all
            others; ``"error"`` raises on them. Rows are never dropped.
        max_levels: more distinct values than this is an error (``None``: no limit). A float
            column with a non-integer value is an error too: both signal a continuous column.

    Raises:
        ValueError: missing values under ``missing="error"``, a continuous column, or an
            unknown policy.

    Examples:
        >>> summarize_column(pd.Series([1.0, None, 0.0, 1.0], name="wet")).counts
        array([1, 2, 1])
    """
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing={missing!r}: use one of {', '.join(MISSING_POLICIES)}")
    name = series.name
    values = series.to_numpy()
    absent: np.ndarray | None = None
    if values.dtype.kind == "f":
        levels, counts, make, absent = _float_summary(values, name)
    elif values.dtype.kind in "iub":
        levels, counts, make = _integer_summary(values)
    else:
        levels, counts, make, absent = _generic_summary(series)
    if max_levels is not None and len(levels) > max_levels:
        raise ValueError(
            f"column {name!r} has {len(levels)} distinct values (more than max_levels="
            f"{max_levels}); it looks continuous or like an identifier. Bin it into a few "
            f"categories first, drop it from the attributes, or raise max_levels"
        )
    if absent is None or not absent.any():
        return ColumnSummary(levels, counts, make)
    if missing == "error":
        raise ValueError(
            f"column {name!r} has {int(absent.sum())} missing value(s) (rows "
            f"{first_missing_rows(absent)}); fill them, or use missing='own' to treat "
            f"'missing' as a value of its own"
        )
    own = len(levels)

    def with_missing() -> np.ndarray:
        codes = make()
        codes[absent] = own
        return codes

    return ColumnSummary([*levels, None], np.append(counts, absent.sum()), with_missing)


def encode_column(
    series: pd.Series, *, missing: str = "own", max_levels: int | None = None
) -> ColumnCodes:
    """Dense codes of a categorical column (see :func:`summarize_column` for the rules).

    Examples:
        >>> encode_column(pd.Series([1.0, None, 0.0], name="wet"))
        ColumnCodes(codes=array([1, 2, 0]), levels=[0, 1, None])
    """
    return summarize_column(series, missing=missing, max_levels=max_levels).encode()


_Summary = tuple[list[Any], np.ndarray, Callable[[], np.ndarray]]
# The same, plus the mask of missing values.
_SummaryWithMissing = tuple[list[Any], np.ndarray, Callable[[], np.ndarray], np.ndarray]


def _integer_summary(values: np.ndarray) -> _Summary:
    if values.dtype.kind == "b":
        values = values.view(np.uint8)
    if len(values) == 0:
        return [], np.zeros(0, dtype=np.int64), lambda: np.zeros(0, dtype=np.int64)
    low, high = int(values.min()), int(values.max())
    if high - low >= _BINCOUNT_SPAN:
        uniques, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
        return uniques.tolist(), counts, lambda: inverse.astype(np.int64).reshape(-1)
    # bincount needs non-negative values that cast safely to intp.
    safe = low == 0 and values.dtype != np.uint64
    shifted = values if safe else values.astype(np.int64) - low
    full = np.bincount(shifted, minlength=high - low + 1)
    present = np.flatnonzero(full)

    def make() -> np.ndarray:
        if len(present) == len(full):  # every value in the span occurs: code = value - low
            return shifted.astype(np.int64)
        lookup = np.full(len(full), -1, dtype=np.int64)
        lookup[present] = np.arange(len(present), dtype=np.int64)
        codes: np.ndarray = lookup[shifted]
        return codes

    return (present + low).tolist(), full[present], make


def _float_summary(values: np.ndarray, name: Any) -> _SummaryWithMissing:
    absent = np.isnan(values)
    present = values[~absent]
    bad = ~np.isfinite(present) | (present != np.round(present))
    if bad.any():
        example = present[bad][0]
        raise ValueError(
            f"column {name!r} holds non-integer values (e.g. {example!r}); it looks "
            f"continuous, so it cannot be used as a categorical attribute. Bin it into a few "
            f"categories first, or use the kmeans builder for numeric columns"
        )
    levels, counts, make_present = _integer_summary(present.astype(np.int64))

    def make() -> np.ndarray:
        codes = np.zeros(len(values), dtype=np.int64)
        codes[~absent] = make_present()
        return codes

    return levels, counts, make, absent


def _generic_summary(series: pd.Series) -> _SummaryWithMissing:
    codes, uniques = pd.factorize(series, sort=True, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    levels = list(uniques)
    floats = [v for v in levels if isinstance(v, float) and not float(v).is_integer()]
    if floats:
        raise ValueError(
            f"column {series.name!r} holds non-integer numbers (e.g. {floats[0]!r}); it looks "
            f"continuous, so it cannot be used as a categorical attribute. Bin it first"
        )
    absent = codes < 0
    counts = np.bincount(codes[~absent], minlength=len(levels))
    return levels, counts, codes.copy, absent


def encode_labels(series: pd.Series) -> ColumnCodes:
    """Dense codes of a label-like column (any number of values; missing is an error).

    Used for downstream labels and for precomputed cluster columns, where every row must
    have a value and the number of distinct values is unbounded.

    Examples:
        >>> encode_labels(pd.Series(["cat", "ant", "cat"], name="label")).codes
        array([1, 0, 1])
    """
    return encode_labels_values(series.to_numpy(), series.name)


def encode_labels_values(values: Any, name: Any) -> ColumnCodes:
    """:func:`encode_labels` for a bare array; ``name`` is used in the error message."""
    codes, uniques = pd.factorize(np.asarray(values), sort=True, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    absent = codes < 0
    if absent.any():
        raise ValueError(
            f"{name!r} has {int(absent.sum())} missing value(s) (rows "
            f"{first_missing_rows(absent)}); every sample needs a value: fill or drop those "
            f"rows first"
        )
    return ColumnCodes(codes, list(uniques))
