"""UT-Zappos50K (Yu and Grauman, CVPR 2014) from its official download.

Expected layout under ``root`` (the two official zips extracted side by side)::

    root/
      ut-zap50k-images-square/   (or ut-zap50k-images/; the square variant wins if both exist)
        <Category>/<SubCategory>/<Brand>/<CID with '-' replaced by '.'>.jpg
      ut-zap50k-data/
        meta-data-bin.csv         (also accepted directly under root)

``meta-data-bin.csv`` has a ``CID`` column (e.g. ``100627-72`` for image ``100627.72.jpg``)
and one 0/1 column per binary attribute value (``Category.Shoes``, ``Closure.Lace.up``, ...).
Every CID must match exactly one image and every image one CID.

Rows are put in the order the official Cl-InfoNCE files index them: CIDs sorted numerically
by their two integer parts. (Inferred: the indices in the official ``meta_data_*.csv`` files
follow this order for all 50,025 images.) The official split is then
``np.random.seed(0); perm = np.random.permutation(50025)``; rows ``perm[:35017]`` (the first
70 %) are train, the rest val; this reproduces the official ``random_indices_seed_0.npy``.

Note that the ``Category.*`` and ``SubCategory.*`` attribute columns encode the label itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from clinfonce.data.official._common import (
    PathLike,
    as_dir,
    attribute_frame,
    finalize,
    image_files,
    locate,
)

DATASET = "UT-Zappos50K"
IMAGE_DIRS = ("ut-zap50k-images-square", "ut-zap50k-images")
META_FILES = ("ut-zap50k-data/meta-data-bin.csv", "meta-data-bin.csv")
LAYOUT = (
    "<root>/ut-zap50k-images-square/<Category>/<SubCategory>/<Brand>/<CID>.jpg and "
    "<root>/ut-zap50k-data/meta-data-bin.csv (the official ut-zap50k-images-square.zip and "
    "ut-zap50k-data.zip extracted into <root>)"
)
LabelOrder = Literal["sorted", "official"]


def official_split_permutation(n: int, seed: int = 0) -> np.ndarray:
    """The official shuffling of ``n`` rows: ``np.random.seed(seed); np.random.permutation(n)``.

    Examples:
        >>> official_split_permutation(5).tolist()
        [2, 0, 1, 3, 4]
    """
    return np.random.RandomState(seed).permutation(n)


def official_splits(n: int, *, seed: int = 0, train_fraction: float = 0.7) -> np.ndarray:
    """Split name per row: the first ``int(n * train_fraction)`` permuted rows are train.

    Examples:
        >>> official_splits(5).tolist()
        ['train', 'train', 'train', 'val', 'val']
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    split = np.full(n, "val", dtype=object)
    split[official_split_permutation(n, seed)[: int(n * train_fraction)]] = "train"
    return split


def category_labels(
    pairs: Sequence[str], label_order: LabelOrder = "sorted"
) -> tuple[np.ndarray, list[str]]:
    """Integer labels for ``Category/SubCategory`` strings given in official row order.

    ``"sorted"`` numbers the pairs alphabetically. ``"official"`` reproduces the class ids of
    the official Cl-InfoNCE files: descending frequency, ties broken by first appearance.

    Returns:
        ``(labels, names)`` with ``names[labels[i]] == pairs[i]``.

    Examples:
        >>> labels, names = category_labels(["Shoes/Heels", "Boots/Ankle", "Shoes/Heels"])
        >>> labels.tolist(), names
        ([1, 0, 1], ['Boots/Ankle', 'Shoes/Heels'])
        >>> category_labels(["Shoes/Heels", "Boots/Ankle", "Shoes/Heels"], "official")[1]
        ['Shoes/Heels', 'Boots/Ankle']
    """
    values = pd.Series(list(pairs), dtype=object)
    if label_order == "sorted":
        names = sorted(values.unique())
    elif label_order == "official":
        first = {name: i for i, name in reversed(list(enumerate(values)))}
        counts = values.value_counts()
        names = sorted(counts.index, key=lambda name: (-counts[name], first[name]))
    else:
        raise ValueError(f"label_order must be 'sorted' or 'official', got {label_order!r}")
    codes = {name: k for k, name in enumerate(names)}
    return values.map(codes).to_numpy(dtype=np.int64), [str(n) for n in names]


def _cid_key(cid: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)-(\d+)", cid)
    if match is None:
        raise ValueError(
            f"{DATASET}: CID {cid!r} in meta-data-bin.csv is not of the form '<digits>-<digits>'"
        )
    return int(match.group(1)), int(match.group(2))


def read_ut_zappos50k(
    root: PathLike,
    *,
    images_dir: str | None = None,
    label_order: LabelOrder = "sorted",
    seed: int = 0,
    train_fraction: float = 0.7,
) -> pd.DataFrame:
    """Metadata table of UT-Zappos50K with the official Cl-InfoNCE split.

    Args:
        root: folder holding the extracted official zips (layout in the module docstring).
        images_dir: image folder under ``root``; default ``ut-zap50k-images-square`` if
            present, else ``ut-zap50k-images``.
        label_order: ``"sorted"`` (default) numbers the 21 ``Category/SubCategory`` pairs
            alphabetically; ``"official"`` reproduces the official files' class ids.
        seed: seed of the official permutation (0).
        train_fraction: share of the permuted rows that are train (0.7).

    Returns:
        One row per image in official row order: ``id`` (path under the image folder, as in
        the official files), ``path`` (under ``root``), ``label``, ``label_name``
        (``Category/SubCategory``), ``split`` (train/val), ``category`` (4 groups: the parent
        of the label), ``subcategory``, ``brand``, ``cid``, ``official_index`` (row number in
        the official files) and one int8 ``attr_<name>`` column per column of
        ``meta-data-bin.csv`` (dots and spaces become ``_``).

    Raises:
        FileNotFoundError: no image folder or no ``meta-data-bin.csv``.
        ValueError: malformed CID, non-0/1 attribute, image without CID or CID without image.

    Examples:
        >>> table = read_ut_zappos50k("data/ut-zap50k")  # doctest: +SKIP
        >>> table["split"].value_counts().to_dict()  # doctest: +SKIP
        {'train': 35017, 'val': 15008}
    """
    base = as_dir(root, DATASET)
    meta_path = locate(base, META_FILES, dataset=DATASET, layout=LAYOUT)
    image_root = locate(
        base, (images_dir,) if images_dir else IMAGE_DIRS, dataset=DATASET, layout=LAYOUT
    )

    meta = pd.read_csv(meta_path, dtype={"CID": str})
    if "CID" not in meta.columns:
        raise ValueError(f"{meta_path}: no 'CID' column; is this the official meta-data-bin.csv?")
    raw_cids = [str(c) for c in meta["CID"]]
    order = sorted(range(len(meta)), key=lambda i: _cid_key(raw_cids[i]))
    meta = meta.iloc[order].reset_index(drop=True)
    cids = [raw_cids[i] for i in order]
    duplicated = meta["CID"][meta["CID"].duplicated()]
    if not duplicated.empty:
        raise ValueError(f"{meta_path}: CID {duplicated.iloc[0]!r} occurs more than once")

    by_cid: dict[str, str] = {}
    for file in image_files(image_root):
        relative = file.relative_to(image_root).as_posix()
        if relative.count("/") != 3:
            raise ValueError(
                f"{DATASET}: image {relative!r} is not at <Category>/<SubCategory>/<Brand>/"
                f"<file> under {str(image_root)!r}"
            )
        cid = file.stem.replace(".", "-")
        if cid in by_cid:
            raise ValueError(f"{DATASET}: images {by_cid[cid]!r} and {relative!r} share CID {cid}")
        by_cid[cid] = relative
    missing = [c for c in cids if c not in by_cid]
    extra = sorted(set(by_cid) - set(cids))
    if missing or extra:
        raise ValueError(
            f"{DATASET}: {len(missing)} CID(s) of {meta_path.name} have no image "
            f"(e.g. {missing[:3]}) and {len(extra)} image(s) have no CID (e.g. "
            f"{[by_cid[c] for c in extra[:3]]}) under {str(image_root)!r}; images and "
            "metadata must come from the same official release"
        )

    ids = [by_cid[c] for c in cids]
    parts = [i.split("/") for i in ids]
    pairs = [f"{p[0]}/{p[1]}" for p in parts]
    labels, names = category_labels(pairs, label_order)
    attributes = [c for c in meta.columns if c != "CID"]
    table = pd.DataFrame(
        {
            "id": ids,
            "path": [f"{image_root.name}/{i}" for i in ids],
            "label": labels,
            "label_name": pairs,
            "split": official_splits(len(ids), seed=seed, train_fraction=train_fraction),
            "category": [p[0] for p in parts],
            "subcategory": [p[1] for p in parts],
            "brand": [p[2] for p in parts],
            "cid": cids,
            "official_index": np.arange(len(ids), dtype=np.int64),
        }
    )
    values = meta[attributes].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    attrs = attribute_frame(values, attributes, source=str(meta_path), rows=cids)
    return finalize(pd.concat([table, attrs], axis=1), names, dataset=DATASET)
