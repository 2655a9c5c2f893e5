"""Readers of the paper's datasets in the layouts their authors distribute.

Each reader takes the dataset root (plus keyword options) and returns the project's metadata
table, one row per image: ``id`` (str, stable: the image path used by the official
Cl-InfoNCE metadata where one exists), ``path`` (relative to the root), ``label`` (int
0..C-1), ``label_name``, ``split`` (``train``/``val``/``test``), then auxiliary columns:
binary attributes as int8 ``attr_<name>`` columns, hierarchy ancestors as ``level_<L>`` or
named parent columns. The clusters stage builds cluster ids from the auxiliary columns.

- ``ut-zappos50k``: :func:`read_ut_zappos50k`, ``attr_*`` from ``meta-data-bin.csv``;
- ``cub-200-2011``: :func:`read_cub200`, 312 ``attr_*`` columns;
- ``wider-attribute``: :func:`read_wider_attribute`, 14 image-level ``attr_*`` columns;
- ``imagenet100``: :func:`read_imagenet100`, WordNet ancestors in ``level_<L>`` columns.

Examples:
    >>> sorted(OFFICIAL_READERS)
    ['cub-200-2011', 'imagenet100', 'ut-zappos50k', 'wider-attribute']
    >>> table = read_official("cub-200-2011", "data/CUB_200_2011")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from clinfonce.data.official._common import PathLike
from clinfonce.data.official.cub200 import read_cub200
from clinfonce.data.official.imagenet100 import (
    OFFICIAL_IMAGENET100_WNIDS,
    read_imagenet100,
    wordnet_levels,
)
from clinfonce.data.official.ut_zappos50k import read_ut_zappos50k
from clinfonce.data.official.wider_attribute import read_wider_attribute

OFFICIAL_READERS: dict[str, Callable[..., pd.DataFrame]] = {
    "ut-zappos50k": read_ut_zappos50k,
    "cub-200-2011": read_cub200,
    "wider-attribute": read_wider_attribute,
    "imagenet100": read_imagenet100,
}
"""Reader per dataset name; each is called as ``reader(root, **options)``."""


def read_official(name: str, root: PathLike, **options: Any) -> pd.DataFrame:
    """Read dataset ``name`` (a key of :data:`OFFICIAL_READERS`) from ``root``.

    Raises:
        ValueError: unknown name (the message lists the known ones).

    Examples:
        >>> read_official("mnist", ".")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: unknown official dataset 'mnist'; choose one of cub-200-2011, ...
    """
    reader = OFFICIAL_READERS.get(name)
    if reader is None:
        known = ", ".join(sorted(OFFICIAL_READERS))
        raise ValueError(f"unknown official dataset {name!r}; choose one of {known}")
    return reader(root, **options)


__all__ = [
    "OFFICIAL_IMAGENET100_WNIDS",
    "OFFICIAL_READERS",
    "read_cub200",
    "read_imagenet100",
    "read_official",
    "read_ut_zappos50k",
    "read_wider_attribute",
    "wordnet_levels",
]
