"""The paper's datasets as training sources: ``data.dataset: cub-200-2011`` and friends.

Each loader reads the dataset's official layout with its reader
(:data:`clinfonce.data.official.OFFICIAL_READERS`) and returns an
:class:`~clinfonce.data.sources.ImageSource` over the image files: the reader's table as is
(``id``, ``label``, ``split``, auxiliary ``attr_*``/``level_*`` columns), absolute image paths,
3 channels. The training config picks rows by ``split`` (``train``; the held-out split is
``test`` for CUB-200-2011 and Wider Attribute, ``val`` for UT-Zappos50K and ImageNet-100) and
labels from ``label``, the defaults of ``data``. The loaders' keyword arguments are
``data.options``: ``root`` plus the reader's options, plus ``drop_columns``.

Without ``root`` the dataset is looked for at ``$CLINFONCE_DATA/<folder>`` (folders in
:data:`DEFAULT_FOLDERS`), as Fashion-MNIST is.

Examples:
    >>> from clinfonce.data import load_source
    >>> source = load_source("cub-200-2011", root="data/CUB_200_2011")  # doctest: +SKIP
    >>> source.table["split"].value_counts().to_dict()  # doctest: +SKIP
    {'train': 5994, 'test': 5794}
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from clinfonce.data.official import read_official
from clinfonce.data.official._common import CORE_COLUMNS
from clinfonce.data.official.imagenet100 import DEFAULT_LEVELS, MultipleParents
from clinfonce.data.official.ut_zappos50k import LabelOrder
from clinfonce.data.official.wider_attribute import AggregationRule
from clinfonce.data.prepared_sources import prepare_request
from clinfonce.data.sources import ImageSource, register_source
from clinfonce.paths import PathOption

DEFAULT_FOLDERS: dict[str, str] = {
    "ut-zappos50k": "ut-zap50k",
    "cub-200-2011": "CUB_200_2011",
    "wider-attribute": "WiderAttribute",
    "imagenet100": "imagenet100",
}
"""Folder under ``$CLINFONCE_DATA`` where each dataset is found when no root is given."""


def resolve_root(name: str, root: str | os.PathLike[str] | None) -> Path:
    """The dataset folder: ``root`` when given, else ``$CLINFONCE_DATA/<folder>`` if it exists.

    Raises:
        ValueError: no root given and none found; the message says how to set one.

    Examples:
        >>> str(resolve_root("cub-200-2011", "/data/CUB_200_2011"))
        '/data/CUB_200_2011'
    """
    if root is not None:
        return Path(root).expanduser()
    folder = DEFAULT_FOLDERS[name]
    env = os.environ.get("CLINFONCE_DATA")
    if env and (Path(env) / folder).is_dir():
        return Path(env) / folder
    looked = f" ($CLINFONCE_DATA/{folder} does not exist)" if env else ""
    raise ValueError(
        f"dataset {name!r} needs its folder: set data.options.root=/path/to/{folder} (see "
        f"docs/datasets.md for the layout), or put it at $CLINFONCE_DATA/{folder}{looked}"
    )


def drop_matching(table: pd.DataFrame, patterns: Sequence[str], where: str) -> pd.DataFrame:
    """Remove the columns matching any shell pattern (``attr_Category_*``).

    Core columns (``id``, ``path``, ``label``, ``label_name``, ``split``) cannot be dropped,
    and a pattern matching nothing is an error (a typo would otherwise keep the columns).

    Examples:
        >>> t = pd.DataFrame(columns=["id", "attr_a1", "attr_a2", "attr_b"])
        >>> drop_matching(t, ["attr_a*"], "x").columns.tolist()
        ['id', 'attr_b']
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    names = [str(c) for c in table.columns]
    dropped: list[str] = []
    for pattern in patterns:
        matched = fnmatch.filter(names, pattern)
        if not matched:
            raise ValueError(
                f"{where}: data.options.drop_columns pattern {pattern!r} matches no column "
                f"(columns: {', '.join(names)})"
            )
        core = [c for c in matched if c in CORE_COLUMNS]
        if core:
            raise ValueError(
                f"{where}: data.options.drop_columns pattern {pattern!r} would drop the core "
                f"column(s) {', '.join(core)}; training needs them"
            )
        dropped += [c for c in matched if c not in dropped]
    kept: pd.DataFrame = table.drop(columns=dropped)
    return kept


def official_source(
    name: str,
    root: str | os.PathLike[str] | None,
    *,
    drop_columns: Sequence[str] | None = None,
    prepare: bool | str = False,
    prepare_dir: str | None = None,
    **options: Any,
) -> ImageSource:
    """Read official dataset ``name`` (a reader's name) into an :class:`ImageSource`.

    Args:
        name: a key of :data:`clinfonce.data.official.OFFICIAL_READERS`.
        root: the dataset folder (``None``: :func:`resolve_root`).
        drop_columns: shell patterns of auxiliary columns to remove (e.g. attributes that
            encode the label, which would leak it into the clusters).
        prepare: ``true`` or ``auto`` decodes the images once into a memory-mapped array at
            the training resolution, as the ``table`` source's option of that name.
        prepare_dir: folder of the prepared arrays (default: ``.clinfonce-prepared`` in the
            dataset folder).
        **options: the reader's options.

    Examples:
        >>> source = official_source("imagenet100", "data/imagenet", levels=[12])
        ... # doctest: +SKIP
    """
    base = resolve_root(name, root)
    table = read_official(name, base, **options)
    if drop_columns:
        table = drop_matching(table, drop_columns, name)
    folder = base.resolve()
    paths = [folder / p for p in table["path"]]
    splits = ", ".join(f"{n} {s}" for s, n in table["split"].value_counts().sort_index().items())
    return ImageSource(
        name,
        table,
        paths=paths,
        channels=3,
        description=f"{len(table)} {name} images ({splits}) under {folder}",
        prepare=prepare_request(prepare, prepare_dir, folder / name),
    )


@register_source("ut-zappos50k")
def load_ut_zappos50k(
    root: PathOption | None = None,
    images_dir: PathOption | None = None,
    label_order: LabelOrder = "sorted",
    seed: int = 0,
    train_fraction: float = 0.7,
    drop_columns: list[str] | None = None,
    prepare: bool | str = False,
    prepare_dir: PathOption | None = None,
) -> ImageSource:
    """UT-Zappos50K with the official seed-0 70/30 train/val split (21 labels).

    Options are those of :func:`~clinfonce.data.official.read_ut_zappos50k` plus ``root``
    (the folder holding ``ut-zap50k-images-square/`` and ``ut-zap50k-data/``),
    ``drop_columns``, ``prepare`` and ``prepare_dir`` (:func:`official_source`). The
    ``attr_Category_*``/``attr_SubCategory_*`` columns encode the
    label; the official clusters leave them out (drop them with
    ``drop_columns: [attr_Category_*, attr_SubCategory_*]``).

    Examples:
        >>> load_ut_zappos50k("data/ut-zap50k").table.shape[0]  # doctest: +SKIP
        50025
    """
    return official_source(
        "ut-zappos50k",
        root,
        drop_columns=drop_columns,
        prepare=prepare,
        prepare_dir=prepare_dir,
        images_dir=images_dir,
        label_order=label_order,
        seed=seed,
        train_fraction=train_fraction,
    )


@register_source("cub-200-2011")
def load_cub200(
    root: PathOption | None = None,
    min_certainty: int | None = None,
    check_files: bool = True,
    drop_columns: list[str] | None = None,
    prepare: bool | str = False,
    prepare_dir: PathOption | None = None,
) -> ImageSource:
    """CUB-200-2011 with its official train/test split, labels 0..199, 312 attributes.

    Options are those of :func:`~clinfonce.data.official.read_cub200` plus ``root`` (the
    extracted ``CUB_200_2011`` folder), ``drop_columns``, ``prepare`` and ``prepare_dir``
    (:func:`official_source`).

    Examples:
        >>> load_cub200("data/CUB_200_2011", min_certainty=3)  # doctest: +SKIP
    """
    return official_source(
        "cub-200-2011",
        root,
        drop_columns=drop_columns,
        prepare=prepare,
        prepare_dir=prepare_dir,
        min_certainty=min_certainty,
        check_files=check_files,
    )


@register_source("wider-attribute")
def load_wider_attribute(
    root: PathOption | None = None,
    rule: AggregationRule = "any",
    check_files: bool = True,
    drop_columns: list[str] | None = None,
    prepare: bool | str = False,
    prepare_dir: PathOption | None = None,
) -> ImageSource:
    """WIDER Attribute: trainval = ``train``, test = ``test``; 30 scenes, 14 attributes.

    Options are those of :func:`~clinfonce.data.official.read_wider_attribute` plus ``root``
    (the folder holding ``Image/`` and the annotation JSON files), ``drop_columns``,
    ``prepare`` and ``prepare_dir`` (:func:`official_source`).

    Examples:
        >>> load_wider_attribute("data/WiderAttribute", rule="majority")  # doctest: +SKIP
    """
    return official_source(
        "wider-attribute",
        root,
        drop_columns=drop_columns,
        prepare=prepare,
        prepare_dir=prepare_dir,
        rule=rule,
        check_files=check_files,
    )


@register_source("imagenet100")
def load_imagenet100(
    root: PathOption | None = None,
    classes: PathOption | list[str] | None = None,
    hierarchy: PathOption | None = None,
    levels: list[int] | tuple[int, ...] = DEFAULT_LEVELS,
    root_level: int = 1,
    multiple_parents: MultipleParents = "error",
    drop_columns: list[str] | None = None,
    prepare: bool | str = False,
    prepare_dir: PathOption | None = None,
) -> ImageSource:
    """An ImageNet class subset (default: the official ImageNet-100) with WordNet levels.

    Options are those of :func:`~clinfonce.data.official.read_imagenet100` plus ``root``
    (the folder holding ``train/<wnid>/``, ``val/<wnid>/`` and ``wordnet.is_a.txt``),
    ``drop_columns``, ``prepare`` and ``prepare_dir`` (:func:`official_source`). The
    splits are ``train`` and ``val``.

    Examples:
        >>> load_imagenet100("data/imagenet", levels=[12])  # doctest: +SKIP
    """
    return official_source(
        "imagenet100",
        root,
        drop_columns=drop_columns,
        prepare=prepare,
        prepare_dir=prepare_dir,
        classes=classes,
        hierarchy=hierarchy,
        levels=levels,
        root_level=root_level,
        multiple_parents=multiple_parents,
    )
