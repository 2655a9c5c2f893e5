"""ImageNet-100 with its WordNet hierarchy, from an ImageFolder tree and ``wordnet.is_a.txt``.

Expected layout under ``root``::

    root/
      train/<wnid>/<file>.JPEG
      val/<wnid>/<file>.JPEG      (validation images sorted into class folders)
      wordnet.is_a.txt            (or pass ``hierarchy=``)

``wordnet.is_a.txt`` is ImageNet's list of WordNet is-a pairs, one ``<parent> <child>`` pair
of wnids per line (parent first, as the official Cl-InfoNCE script reads it). The class
subset defaults to the official Cl-InfoNCE ImageNet-100 (:data:`OFFICIAL_IMAGENET100_WNIDS`,
from the MIT-licensed ``selected_100_classes.txt``); it is *not* the CMC ImageNet-100.
Labels number the selected wnids in sorted order (torchvision's ImageFolder convention).

Levels: a node's level is ``root_level`` at a root of the hierarchy (a wnid with no parent)
and grows by one per is-a edge. The level-``L`` ancestor of a class is the node at level
``L`` on its path from the root; a class at level ``L`` or above (shallower) is its own
level-``L`` ancestor. The default ``root_level=1`` is inferred from the official script,
which builds levels 1..17 from a hierarchy JSON whose numbering is not published; pass
``root_level=0`` to count edges from the root instead.

A class with several paths to a root is a problem only if the paths disagree on a requested
level's ancestor: then ``multiple_parents="error"`` (default) raises, and ``"first"`` follows
the parent listed first in the file at every step (the official subset was drawn among
classes without such ambiguity).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from clinfonce.data.official._common import PathLike, as_dir, finalize, image_files, locate

DATASET = "ImageNet-100"
LAYOUT = (
    "<root>/train/<wnid>/*.JPEG, <root>/val/<wnid>/*.JPEG and <root>/wordnet.is_a.txt "
    "('<parent wnid> <child wnid>' per line, as distributed by ImageNet)"
)
SPLIT_DIRS = ("train", "val")
DEFAULT_LEVELS = tuple(range(1, 18))
MultipleParents = Literal["error", "first"]

# A whitespace block rather than a 100-line list literal: easy to diff against the file.
OFFICIAL_IMAGENET100_WNIDS: tuple[str, ...] = tuple(
    """
    n01496331 n01531178 n01537544 n01582220 n01632458 n01641577 n01697457 n01704323 n01739381
    n01740131 n01774384 n01784675 n01818515 n01828970 n01981276 n02018795 n02027492 n02037110
    n02117135 n02128757 n02132136 n02137549 n02177972 n02256656 n02281787 n02317335 n02326432
    n02391049 n02395406 n02408429 n02412080 n02423022 n02444819 n02457408 n02480855 n02487347
    n02510455 n02655020 n02747177 n02791270 n02804414 n02871525 n02906734 n02966687 n02978881
    n03000247 n03065424 n03125729 n03126707 n03197337 n03201208 n03240683 n03255030 n03271574
    n03347037 n03461385 n03529860 n03710193 n03733131 n03769881 n03792972 n03832673 n03884397
    n03891251 n03902125 n03908618 n03933933 n03956157 n03958227 n04040759 n04041544 n04069434
    n04074963 n04116512 n04118776 n04120489 n04154565 n04228054 n04265275 n04296562 n04330267
    n04355338 n04355933 n04409515 n04476259 n04501370 n04550184 n04596742 n04604644 n04612504
    n07565083 n07583066 n07714990 n07873807 n07875152 n07880968 n11879895 n12057211 n12985857
    n13052670
    """.split()  # noqa: SIM905
)
"""The 100 wnids of the official Cl-InfoNCE ImageNet-100 (``selected_100_classes.txt``)."""

_WNID = re.compile(r"n\d{8}")


def read_wnid_list(path: PathLike) -> list[str]:
    """Wnids from a class-list file: the first token of every non-blank, non-``#`` line.

    Extra tokens (e.g. ``n01440764 tench``) are ignored, so ``LOC_synset_mapping.txt``-style
    files work too.

    Examples:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "classes.txt"
        >>> _ = f.write_text("n01440764 tench\\n# comment\\n\\nn01443537\\n")
        >>> read_wnid_list(f)
        ['n01440764', 'n01443537']
    """
    wnids: list[str] = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            token = line.split("#", 1)[0].split()
            if not token:
                continue
            if not _WNID.fullmatch(token[0]):
                raise ValueError(f"{path}:{number}: {token[0]!r} is not a wnid like n01440764")
            wnids.append(token[0])
    return wnids


def read_is_a(path: PathLike) -> dict[str, list[str]]:
    """Parents of every child in a ``<parent> <child>`` pair file, in file order.

    Examples:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "wordnet.is_a.txt"
        >>> _ = f.write_text("n00000001 n00000002\\nn00000002 n00000003\\n")
        >>> read_is_a(f)
        {'n00000002': ['n00000001'], 'n00000003': ['n00000002']}
    """
    parents: dict[str, list[str]] = {}
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise ValueError(
                    f"{path}:{number}: expected '<parent wnid> <child wnid>', got {line.strip()!r}"
                )
            parent, child = fields
            if parent == child:
                raise ValueError(f"{path}:{number}: {child} is its own parent")
            if parent not in parents.setdefault(child, []):
                parents[child].append(parent)
    return parents


def root_paths(wnid: str, parents: Mapping[str, Sequence[str]]) -> list[tuple[str, ...]]:
    """Every path ``(root, ..., wnid)`` up the is-a graph; the first follows first parents.

    Examples:
        >>> root_paths("c", {"c": ["b", "a"], "b": ["a"]})
        [('a', 'b', 'c'), ('a', 'c')]
    """
    memo: dict[str, list[tuple[str, ...]]] = {}

    def walk(node: str, visiting: tuple[str, ...]) -> list[tuple[str, ...]]:
        if node in visiting:
            cycle = " -> ".join((*visiting[visiting.index(node) :], node))
            raise ValueError(f"the is-a hierarchy has a cycle: {cycle}")
        if node not in memo:
            ups = parents.get(node, ())
            memo[node] = (
                [(*p, node) for up in ups for p in walk(up, (*visiting, node))]
                if ups
                else [(node,)]
            )
        return memo[node]

    return walk(wnid, ())


def wordnet_levels(
    wnids: Iterable[str],
    parents: Mapping[str, Sequence[str]],
    levels: Sequence[int] = DEFAULT_LEVELS,
    *,
    root_level: int = 1,
    multiple_parents: MultipleParents = "error",
) -> pd.DataFrame:
    """Level-``L`` ancestor of every wnid (module docstring has the conventions).

    Returns:
        A frame indexed by wnid with string columns ``level_<L>`` and an int column
        ``wordnet_level`` (the wnid's own level along the path used).

    Examples:
        >>> parents = {"b": ["a"], "c": ["b"], "d": ["a"]}
        >>> wordnet_levels(["c", "d"], parents, [1, 2, 3])
          level_1 level_2 level_3  wordnet_level
        c       a       b       c              3
        d       a       d       d              2
    """
    if multiple_parents not in ("error", "first"):
        raise ValueError(f"multiple_parents must be 'error' or 'first', got {multiple_parents!r}")
    bad = [level for level in levels if level < root_level]
    if bad:
        raise ValueError(f"levels {bad} lie above the root level {root_level}")
    known = set(parents) | {p for ups in parents.values() for p in ups}

    def ancestors(path: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(path[min(level - root_level, len(path) - 1)] for level in levels)

    rows: dict[str, dict[str, str | int]] = {}
    for wnid in wnids:
        if wnid not in known:
            raise ValueError(f"class {wnid} does not occur in the is-a hierarchy")
        paths = root_paths(wnid, parents)
        if multiple_parents == "error" and len({ancestors(p) for p in paths}) > 1:
            shown = "; ".join(" > ".join(p) for p in paths[:4])
            raise ValueError(
                f"class {wnid} has several paths to the root that disagree at the requested "
                f"levels ({shown}); drop it from the class list or pass "
                "multiple_parents='first' to follow the first-listed parent"
            )
        row: dict[str, str | int] = dict(
            zip((f"level_{level}" for level in levels), ancestors(paths[0]), strict=True)
        )
        row["wordnet_level"] = root_level + len(paths[0]) - 1
        rows[wnid] = row
    columns = [*(f"level_{level}" for level in levels), "wordnet_level"]
    frame: pd.DataFrame = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    return frame


def read_imagenet100(
    root: PathLike,
    *,
    classes: PathLike | Sequence[str] | None = None,
    hierarchy: PathLike | None = None,
    levels: Sequence[int] = DEFAULT_LEVELS,
    root_level: int = 1,
    multiple_parents: MultipleParents = "error",
) -> pd.DataFrame:
    """Metadata table of an ImageNet class subset with WordNet ancestor columns.

    Args:
        root: ImageNet folder with ``train/<wnid>`` and ``val/<wnid>`` class folders.
        classes: the subset: a list-file path (first token per line is a wnid), a sequence of
            wnids, or None for :data:`OFFICIAL_IMAGENET100_WNIDS`.
        hierarchy: ``wordnet.is_a.txt``; default ``root/wordnet.is_a.txt``. Not read when
            ``levels`` is empty.
        levels: levels to add as ``level_<L>`` columns (default 1..17, as in the official
            analysis; the paper trains on level 12).
        root_level: the level of a root wnid (module docstring).
        multiple_parents: ``"error"`` or ``"first"`` (module docstring).

    Returns:
        One row per image (train then val; classes in label order, files sorted): ``id`` and
        ``path`` (both ``<split>/<wnid>/<file>``), ``label`` (rank of the wnid among the
        sorted selected wnids), ``label_name`` (wnid), ``split`` (train/val) and, when
        ``levels`` is not empty, ``level_<L>`` (ancestor wnid) and ``wordnet_level``.

    Raises:
        FileNotFoundError: a split folder, a class folder or the hierarchy file is missing.
        ValueError: bad class list, empty class folder, or ambiguous ancestors.

    Examples:
        >>> table = read_imagenet100("data/imagenet", levels=[12])  # doctest: +SKIP
        >>> table.groupby("split")["label"].nunique().to_dict()  # doctest: +SKIP
        {'train': 100, 'val': 100}
        >>> table["level_12"].nunique()  # doctest: +SKIP
    """
    base = as_dir(root, DATASET)
    if classes is None:
        wnids = list(OFFICIAL_IMAGENET100_WNIDS)
    elif isinstance(classes, str | os.PathLike):
        wnids = read_wnid_list(classes)
    else:
        wnids = [str(w) for w in classes]
    if not wnids:
        raise ValueError(f"{DATASET}: the class list is empty")
    duplicates = sorted({w for w in wnids if wnids.count(w) > 1})
    if duplicates:
        raise ValueError(f"{DATASET}: classes listed more than once: {duplicates}")
    wnids = sorted(wnids)

    level_table = None
    if levels:
        is_a = (
            Path(hierarchy)
            if hierarchy is not None
            else locate(base, ("wordnet.is_a.txt",), dataset=DATASET, layout=LAYOUT)
        )
        if not is_a.is_file():
            raise FileNotFoundError(f"{DATASET}: hierarchy file {str(is_a)!r} does not exist")
        level_table = wordnet_levels(
            wnids,
            read_is_a(is_a),
            levels,
            root_level=root_level,
            multiple_parents=multiple_parents,
        )

    frames: list[pd.DataFrame] = []
    for split in SPLIT_DIRS:
        split_dir = locate(base, (split,), dataset=DATASET, layout=LAYOUT)
        for label, wnid in enumerate(wnids):
            class_dir = split_dir / wnid
            if not class_dir.is_dir():
                raise FileNotFoundError(
                    f"{DATASET}: class folder {str(class_dir)!r} is missing; expected layout: "
                    f"{LAYOUT}"
                )
            ids = [f.relative_to(base).as_posix() for f in image_files(class_dir)]
            if not ids:
                raise ValueError(f"{DATASET}: class folder {str(class_dir)!r} has no images")
            frames.append(
                pd.DataFrame(
                    {"id": ids, "path": ids, "label": label, "label_name": wnid, "split": split}
                )
            )
    table = pd.concat(frames, ignore_index=True)
    if level_table is not None:
        extra = level_table.loc[table["label_name"].to_numpy()].reset_index(drop=True)
        table = pd.concat([table, extra], axis=1)
        table["wordnet_level"] = table["wordnet_level"].astype(np.int64)
    return finalize(table, wnids, dataset=DATASET)
