"""Rows by split, seeded random subsets of rows, and the seeds of seeded streams.

Training, evaluation, embedding and the clusters CLI all pick rows the same way, so they
share these helpers (and their error messages).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from clinfonce.clusters.tables import require_columns


def split_mask(
    table: pd.DataFrame,
    column: str,
    split: str | Sequence[str],
    *,
    where: str,
    option: str,
    hint: str = "",
) -> np.ndarray:
    """Whether each row's ``column`` (compared as text) is ``split`` (or one of them).

    Args:
        table: the metadata.
        column: the split column.
        split: one split, or several.
        where: what the table is (a file, a source name), prefixed to errors.
        option: the setting naming ``column``, named when the table lacks it.
        hint: appended to the "no rows" error (e.g. which setting to change).

    Raises:
        ValueError: ``column`` is absent, or a requested split has no rows (the message lists
            the splits present).

    Examples:
        >>> table = pd.DataFrame({"split": ["train", "test", "train"]})
        >>> split_mask(table, "split", "train", where="meta.csv", option="--split-column")
        array([ True, False,  True])
        >>> split_mask(table, "split", "val", where="meta.csv", option="--split-column")
        Traceback (most recent call last):
        ...
        ValueError: meta.csv: no rows with split == 'val' (splits present: test, train)
    """
    require_columns(table, [column], option)
    values = table[column].astype(str).to_numpy()
    wanted = [split] if isinstance(split, str) else list(split)
    absent = sorted(set(wanted) - set(values))
    if absent:
        condition = f"== {split!r}" if isinstance(split, str) else f"in {', '.join(absent)}"
        raise ValueError(
            f"{where}: no rows with {column} {condition} (splits present: "
            f"{', '.join(sorted(set(values)))}){hint}"
        )
    return np.isin(values, wanted)


def seeded_subset(
    rows: np.ndarray, limit: int | None, seed: int | np.random.Generator
) -> np.ndarray:
    """At most ``limit`` of ``rows``, drawn without replacement and kept in sorted order.

    ``rows`` come back unchanged (and a generator is not advanced) when ``limit`` is
    ``None`` or not below their count. ``seed`` is a seed, or a generator shared by
    successive draws (each draw then depends on the ones before it).

    Examples:
        >>> seeded_subset(np.arange(10), 3, 0)
        array([5, 6, 9])
        >>> seeded_subset(np.arange(3), 5, 0)
        array([0, 1, 2])
    """
    if limit is None or len(rows) <= limit:
        return rows
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return np.sort(rng.choice(rows, size=limit, replace=False))


#: Seeds of one run's streams step by this prime, so the streams of nearby seeds (0, 1, 2)
#: never share a seed for the first million positions.
SEED_STRIDE = 1_000_003


def stream_seed(seed: int, position: int) -> int:
    """The seed of ``position`` (an epoch, a step) of a stream seeded by ``seed``.

    Examples:
        >>> stream_seed(2, 5)
        2000011
    """
    return seed * SEED_STRIDE + position
