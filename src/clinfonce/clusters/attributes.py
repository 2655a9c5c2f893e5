"""Clusters from discrete attributes: the joint value of the k most informative ones.

The paper (UT-Zappos50K, CUB, Wider Attribute) ranks binary attributes by empirical entropy
on the training rows, descending, and puts two samples in one cluster when their first k
attributes all agree. Entropy first means the first attributes split the data most evenly;
the clustering for k+1 refines the one for k, which is what a granularity sweep needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from clinfonce.clusters._codes import (
    ColumnCodes,
    encode_column,
    nested_joint,
    resolve_k,
    summarize_column,
)
from clinfonce.clusters.metrics import entropy_bits
from clinfonce.clusters.tables import SOURCE_INDEX, require_columns

# Never attributes unless listed explicitly: sample keys, labels and split markers.
RESERVED_COLUMNS: tuple[str, ...] = ("id", "path", "label", "class", "split", SOURCE_INDEX)
Ranking = Literal["entropy", "given"]
RANKINGS: tuple[str, ...] = get_args(Ranking)
MissingRule = Literal["own", "error"]
DEFAULT_MAX_LEVELS = 64


@dataclass(frozen=True)
class RankedAttribute:
    """One attribute with its empirical entropy (bits) on the rows it was ranked on."""

    name: str
    entropy: float


def candidate_columns(
    table: pd.DataFrame, columns: Sequence[str] | None, exclude: Sequence[str] = ()
) -> list[str]:
    """The attribute columns: ``columns`` as given, else all but reserved and excluded ones.

    Raises:
        ValueError: a named column is absent, listed twice, or nothing is left.
    """
    exclude = [exclude] if isinstance(exclude, str) else list(exclude)
    require_columns(table, exclude, "exclude")
    if columns is not None:
        columns = [columns] if isinstance(columns, str) else list(columns)
        require_columns(table, columns, "attribute columns")
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ValueError(f"attribute columns listed more than once: {', '.join(repeated)}")
        chosen = [c for c in columns if c not in set(exclude)]
    else:
        skip = set(RESERVED_COLUMNS) | set(exclude)
        chosen = [c for c in table.columns if c not in skip]
    if not chosen:
        raise ValueError(
            f"no attribute columns left (columns: {', '.join(map(str, table.columns))}; "
            f"reserved: {', '.join(RESERVED_COLUMNS)}); name them with columns=[...]"
        )
    return chosen


def rank_attributes(
    table: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    exclude: Sequence[str] = (),
    rank: str = "entropy",
    missing: str = "own",
    max_levels: int | None = DEFAULT_MAX_LEVELS,
) -> list[RankedAttribute]:
    """Order attributes by empirical entropy on the rows of ``table`` (descending).

    Ties are broken by column name (as text, ascending), so the order never depends on the
    column order of the file. ``rank="given"`` keeps the order of ``columns`` instead.
    Every candidate column is validated (missing values, continuous columns).

    Examples:
        >>> t = pd.DataFrame({"a": [0, 0, 0, 1], "b": [0, 1, 0, 1], "c": [1, 0, 1, 0]})
        >>> [(r.name, round(r.entropy, 3)) for r in rank_attributes(t)]
        [('b', 1.0), ('c', 1.0), ('a', 0.811)]
    """
    if rank not in RANKINGS:
        raise ValueError(f"rank={rank!r}: use one of {', '.join(RANKINGS)}")
    ranked = []
    for name in candidate_columns(table, columns, exclude):
        summary = summarize_column(table[name], missing=missing, max_levels=max_levels)
        ranked.append(RankedAttribute(str(name), entropy_bits(summary.counts)))
    if rank == "entropy":
        ranked.sort(key=lambda r: (-r.entropy, r.name))
    return ranked


def attribute_sweep(
    table: pd.DataFrame,
    ks: Sequence[int | None],
    *,
    columns: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    rank: str = "entropy",
    missing: str = "own",
    max_levels: int | None = DEFAULT_MAX_LEVELS,
) -> Iterator[tuple[int, np.ndarray, dict[str, Any]]]:
    """Joint-value clusters for several k at once, ranking once and extending the code.

    Yields ``(k, ids, details)`` in increasing k; each attribute is encoded once, so a sweep
    costs about as much as its largest k. Parameters are those of
    :func:`build_attributes`; a ``None`` in ``ks`` means all attributes.

    Examples:
        >>> t = pd.DataFrame({"a": [0, 1, 0, 1], "b": [0, 0, 1, 1]})
        >>> [(k, ids.tolist()) for k, ids, _ in attribute_sweep(t, [1, 2], rank="given")]
        [(1, [0, 1, 0, 1]), (2, [0, 2, 1, 3])]
    """
    ranked = rank_attributes(
        table, columns, exclude=exclude, rank=rank, missing=missing, max_levels=max_levels
    )
    wanted = sorted({resolve_k(k, len(ranked), "attributes") for k in ks})
    names = [r.name for r in ranked]
    # Ranked names are text; map back to the labels (columns may be ints in Parquet).
    label_of = {str(c): c for c in table.columns}

    def encode(name: str) -> ColumnCodes:
        return encode_column(table[label_of[name]], missing=missing, max_levels=max_levels)

    for used, ids in nested_joint(len(table), names, encode, wanted):
        details = {"attributes": names[:used], "entropies": [r.entropy for r in ranked[:used]]}
        yield used, ids, details


def build_attributes(
    table: pd.DataFrame,
    *,
    k: int | None = None,
    columns: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    rank: Ranking = "entropy",
    missing: MissingRule = "own",
    max_levels: int | None = DEFAULT_MAX_LEVELS,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Cluster id = joint value of the first ``k`` ranked attributes.

    Args:
        table: one row per sample.
        k: number of attributes to combine (``None``: all of them).
        columns: candidate attribute columns (``None``: every column except the reserved
            ``id``, ``path``, ``label``, ``class``, ``split``, ``source_index`` and those in
            ``exclude``).
        exclude: columns never used as attributes.
        rank: ``"entropy"`` (descending empirical entropy on these rows, ties by name) or
            ``"given"`` (the order of ``columns``).
        missing: ``"own"`` (a missing value is a value of its own) or ``"error"``.
        max_levels: a column with more distinct values is rejected as continuous (a float
            column with a non-integer value always is).

    Returns:
        Ids ``0..K-1`` in lexicographic order of the (sorted-value) joint tuple, and details
        (the attributes used and their entropies).

    Examples:
        >>> t = pd.DataFrame({"red": [1, 1, 0, 0], "big": [1, 0, 1, 1]})
        >>> build_attributes(t, k=2)[0]
        array([2, 1, 0, 0])
    """
    _, ids, details = next(
        attribute_sweep(
            table,
            [k],
            columns=columns,
            exclude=exclude,
            rank=rank,
            missing=missing,
            max_levels=max_levels,
        )
    )
    return ids, details
