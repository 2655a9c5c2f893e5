"""Clusters from a class hierarchy: every label replaced by its ancestor at a given level.

The paper's ImageNet-100 + WordNet case. Levels count edges from the root: a root is level
0, its children level 1, and so on (several roots are allowed; each starts at level 0). A
label whose own depth is smaller than the level (a shallow class) maps to itself, so a
deep enough level gives back the labels.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clinfonce.clusters._codes import encode_labels
from clinfonce.clusters.tables import require_columns

ParentSpec = str | os.PathLike[str] | Mapping[Any, Any]
_EXAMPLES = 10


def _key(value: Any) -> str:
    """Node name as text: integral numbers lose their ``.0`` so 3, 3.0 and "3" agree."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def _add_edge(parents: dict[str, str | None], child: str, parent: str | None, where: str) -> None:
    if child in parents and parents[child] != parent:
        raise ValueError(
            f"{where}: node {child!r} has several parents ({parents[child]!r} and {parent!r}); "
            f"a hierarchy needs one parent per node (pick one, or rename the duplicate node)"
        )
    parents[child] = parent


def _flatten_tree(
    tree: Any, parent: str | None, parents: dict[str, str | None], where: str
) -> None:
    if tree is None:
        return
    if isinstance(tree, Mapping):
        for name, subtree in tree.items():
            child = _key(name)
            if child in parents:
                raise ValueError(
                    f"{where}: node {child!r} appears more than once in the tree (under "
                    f"{parents[child]!r} and {parent!r}); each node needs a single parent"
                )
            _add_edge(parents, child, parent, where)
            _flatten_tree(subtree, child, parents, where)
    elif isinstance(tree, list):
        for item in tree:
            if isinstance(item, Mapping | list):
                _flatten_tree(item, parent, parents, where)
            else:
                _flatten_tree({_key(item): None}, parent, parents, where)
    else:
        _flatten_tree([tree], parent, parents, where)


def _with_roots(parents: dict[str, str | None]) -> dict[str, str | None]:
    """Add parents never listed as children, as roots."""
    for parent in list(parents.values()):
        if parent is not None and parent not in parents:
            parents[parent] = None
    return parents


def _from_pairs(frame: pd.DataFrame, where: str) -> dict[str, str | None]:
    require_columns(frame, ["child", "parent"], f"{where} (a child,parent CSV)")
    parents: dict[str, str | None] = {}
    for row, (child, parent) in enumerate(zip(frame["child"], frame["parent"], strict=True)):
        if child == "":
            raise ValueError(f"{where}: row {row} has an empty child name")
        _add_edge(parents, child, parent or None, where)
    return _with_roots(parents)


def load_parents(spec: ParentSpec) -> dict[str, str | None]:
    """Parent of every node (``None`` for roots) from a file or a mapping.

    Accepted: a CSV/TSV with columns ``child,parent`` (an empty parent marks a root); a
    JSON file holding a nested tree (``{"Clothes": {"Tops": ["0", "2"]}, "Goods": [...]}``:
    mappings nest, lists hold leaves or subtrees, ``null`` is a leaf); or such a tree, or a
    flat ``{child: parent}`` mapping, given directly. Node names compare as text.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a node with several parents, or an unreadable file.

    Examples:
        >>> load_parents({"all": {"Clothes": ["0", "2"], "Goods": [5]}})["5"]
        'Goods'
    """
    if isinstance(spec, Mapping):
        flat = all(isinstance(v, str | int) for v in spec.values())
        if flat:
            parents: dict[str, str | None] = {}
            for child, parent in spec.items():
                _add_edge(parents, _key(child), _key(parent), "parents mapping")
            return _with_roots(parents)
        parents = {}
        _flatten_tree(spec, None, parents, "hierarchy tree")
        return parents
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such hierarchy file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            tree = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from exc
        parents = {}
        _flatten_tree(tree, None, parents, str(path))
        return parents
    if suffix in (".csv", ".tsv"):
        frame = pd.read_csv(
            path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False
        )
        frame.columns = [str(c).strip() for c in frame.columns]
        return _from_pairs(frame, str(path))
    raise ValueError(
        f"{path}: a hierarchy is a .csv/.tsv of child,parent pairs or a .json nested tree"
    )


def ancestor_path(node: str, parents: Mapping[str, str | None]) -> list[str]:
    """Nodes from the root down to ``node`` (inclusive).

    Raises:
        ValueError: the parent chain loops.

    Examples:
        >>> ancestor_path("c", {"a": None, "b": "a", "c": "b"})
        ['a', 'b', 'c']
    """
    chain = [node]
    seen = {node}
    parent = parents.get(node)
    while parent is not None:
        if parent in seen:
            loop = " -> ".join([*chain[chain.index(parent) :], parent])
            raise ValueError(f"the hierarchy has a cycle: {loop}; parents must form a tree")
        chain.append(parent)
        seen.add(parent)
        parent = parents.get(parent)
    return chain[::-1]


def build_hierarchy(
    table: pd.DataFrame, *, label_column: str, parents: ParentSpec, level: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """Cluster id = the label's ancestor at ``level`` (root = level 0).

    Args:
        table: one row per sample.
        label_column: the fine class of each sample (no missing values).
        parents: a child,parent CSV or nested JSON tree file, or a mapping (see
            :func:`load_parents`).
        level: depth of the ancestor; labels shallower than this keep themselves.

    Returns:
        Ids ``0..K-1`` in sorted order of the ancestor names, and details (the number of
        groups and how many labels were shallower than ``level``).

    Raises:
        ValueError: negative level, missing labels, labels absent from the hierarchy, a
            cycle, or several parents.

    Examples:
        >>> t = pd.DataFrame({"label": [0, 2, 5, 7]})
        >>> tree = {"all": {"Clothes": [0, 2], "Goods": [5, 7]}}
        >>> build_hierarchy(t, label_column="label", parents=tree, level=1)[0]
        array([0, 0, 1, 1])
    """
    if isinstance(level, bool) or not isinstance(level, int | np.integer) or level < 0:
        raise ValueError(f"level={level!r}: a hierarchy level is an integer >= 0 (root = 0)")
    require_columns(table, [label_column], "label_column")
    tree = load_parents(parents)
    labels = encode_labels(table[label_column])
    names = [_key(v) for v in labels.levels]
    absent = [n for n in names if n not in tree]
    if absent:
        raise ValueError(
            f"{len(absent)} label(s) of column {label_column!r} are not in the hierarchy, "
            f"e.g. {', '.join(map(repr, absent[:_EXAMPLES]))}; add them (with their parent) "
            f"to the hierarchy file"
        )
    ancestors = []
    shallow = 0
    for name in names:
        chain = ancestor_path(name, tree)
        shallow += len(chain) <= level
        ancestors.append(chain[level] if len(chain) > level else name)
    unique = sorted(set(ancestors))
    position = {name: i for i, name in enumerate(unique)}
    group_of_label = np.array([position[a] for a in ancestors], dtype=np.int64)
    return group_of_label[labels.codes], {
        "num_groups": len(unique),
        "labels_shallower_than_level": shallow,
    }


def hierarchy_depth(table: pd.DataFrame, *, label_column: str, parents: ParentSpec) -> int:
    """The deepest level of ``label_column``'s values in the hierarchy (root = 0): at this
    level and below every label maps to itself.

    Examples:
        >>> tree = {"all": {"Clothes": [0, 2], "Goods": [5, 7]}}
        >>> hierarchy_depth(pd.DataFrame({"label": [0, 5]}), label_column="label", parents=tree)
        2
    """
    require_columns(table, [label_column], "label_column")
    tree = load_parents(parents)
    names = {_key(v) for v in table[label_column].dropna().unique()}
    return max((len(ancestor_path(n, tree)) - 1 for n in names if n in tree), default=0)
