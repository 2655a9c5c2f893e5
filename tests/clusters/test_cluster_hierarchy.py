"""The hierarchy builder on the Fashion-MNIST hierarchy of docs/method.md §7."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clinfonce.clusters import build_clusters
from clinfonce.clusters.hierarchy import load_parents

# Root "all" (level 0) -> Clothes/Goods (level 1) -> six groups (level 2) -> labels 0..9.
TREE = {
    "all": {
        "Clothes": {"Tops": [0, 2, 6], "Bottoms": [1], "Dresses": [3], "Outers": [4]},
        "Goods": {"Shoes": [5, 7, 9], "Accessories": [8]},
    }
}
LEVEL1 = {0: "Clothes", 1: "Clothes", 2: "Clothes", 3: "Clothes", 4: "Clothes", 6: "Clothes"}
LEVEL2 = {0: "Tops", 2: "Tops", 6: "Tops", 1: "Bottoms", 3: "Dresses", 4: "Outers"}
LEVEL2 |= {5: "Shoes", 7: "Shoes", 9: "Shoes", 8: "Accessories"}


def _pairs_csv(path: Path) -> Path:
    rows = ["child,parent", "Clothes,all", "Goods,all"]
    for group, members in {**TREE["all"]["Clothes"], **TREE["all"]["Goods"]}.items():
        parent = "Clothes" if group in TREE["all"]["Clothes"] else "Goods"
        rows.append(f"{group},{parent}")
        rows += [f"{m},{group}" for m in members]
    path.write_text("\n".join(rows) + "\n")
    return path


def _expected(labels: np.ndarray, names: dict[int, str]) -> list[int]:
    order = {n: i for i, n in enumerate(sorted(set(names.values())))}
    return [order[names[int(v)]] for v in labels]


@pytest.fixture()
def table() -> pd.DataFrame:
    return pd.DataFrame({"label": np.tile(np.arange(10), 3)})


@pytest.mark.parametrize("source", ["mapping", "json", "csv"])
def test_levels_from_every_format(source: str, table: pd.DataFrame, tmp_path: Path) -> None:
    if source == "mapping":
        parents: object = TREE
    elif source == "json":
        parents = tmp_path / "tree.json"
        parents.write_text(json.dumps(TREE))
    else:
        parents = _pairs_csv(tmp_path / "tree.csv")
    labels = table["label"].to_numpy()
    build = lambda level: build_clusters(  # noqa: E731
        table, "hierarchy", label_column="label", parents=parents, level=level
    )
    assert build(0).tolist() == [0] * len(table)
    level1 = {v: LEVEL1.get(v, "Goods") for v in range(10)}
    assert build(1).tolist() == _expected(labels, level1)
    assert build(2).tolist() == _expected(labels, LEVEL2)
    assert build(3).tolist() == labels.tolist()  # the leaves themselves
    assert build(7).tolist() == labels.tolist()  # deeper than the tree: labels map to themselves


def test_shallow_class_maps_to_itself() -> None:
    tree = {"root": {"animal": ["cat", "dog"], "rock": None}}
    table = pd.DataFrame({"label": ["cat", "rock", "dog", "rock"]})
    ids = build_clusters(table, "hierarchy", label_column="label", parents=tree, level=2)
    assert ids.tolist() == [0, 2, 1, 2]  # cat, rock (depth 1 < 2: itself), dog


def test_flat_child_parent_mapping_and_string_labels() -> None:
    parents = {"3": "odd", "5": "odd", "4": "even", "odd": "n", "even": "n"}
    table = pd.DataFrame({"label": [3.0, 4.0, 5.0]})
    ids = build_clusters(table, "hierarchy", label_column="label", parents=parents, level=1)
    assert ids.tolist() == [1, 0, 1]


def test_errors(table: pd.DataFrame, tmp_path: Path) -> None:
    bad = tmp_path / "two.csv"
    bad.write_text("child,parent\n0,Tops\n0,Shoes\n")
    with pytest.raises(ValueError, match="node '0' has several parents"):
        load_parents(bad)
    with pytest.raises(ValueError, match="appears more than once"):
        load_parents({"a": ["x"], "b": ["x"]})
    with pytest.raises(ValueError, match="cycle: a -> b -> a"):
        build_clusters(
            pd.DataFrame({"label": ["a"]}),
            "hierarchy",
            label_column="label",
            parents={"a": "b", "b": "a"},
            level=0,
        )
    partial = {"all": {"Tops": [0, 2, 6]}}
    with pytest.raises(
        ValueError, match=r"7 label\(s\) of column 'label' are not in the hierarchy"
    ):
        build_clusters(table, "hierarchy", label_column="label", parents=partial, level=1)
    with pytest.raises(ValueError, match="level=-1"):
        build_clusters(table, "hierarchy", label_column="label", parents=TREE, level=-1)
    with pytest.raises(ValueError, match="missing"):
        build_clusters(
            pd.DataFrame({"label": [0.0, np.nan]}),
            "hierarchy",
            label_column="label",
            parents=TREE,
            level=1,
        )
    with pytest.raises(FileNotFoundError):
        load_parents(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_parents(tmp_path / "broken.json")
