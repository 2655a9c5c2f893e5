"""The attributes builder: entropy ranking, joint values, nesting, bad input."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from clinfonce.clusters import build_clusters
from clinfonce.clusters.attributes import attribute_sweep, rank_attributes


def _entropy(values: list) -> float:
    n = len(values)
    return -sum(c / n * math.log2(c / n) for c in Counter(values).values())


def _table(seed: int = 0, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(n)],
            "label": rng.integers(0, 3, n),
            "rare": (rng.random(n) < 0.05).astype(int),
            "even": (rng.random(n) < 0.5).astype(int),
            "colour": rng.choice(["red", "green", "blue"], n),
            "mid": (rng.random(n) < 0.25).astype(int),
        }
    )


def test_ranking_is_descending_entropy_of_each_column() -> None:
    table = _table()
    ranked = rank_attributes(table)
    names = [r.name for r in ranked]
    assert set(names) == {"rare", "even", "colour", "mid"}  # id and label are reserved
    for r in ranked:
        assert r.entropy == pytest.approx(_entropy(table[r.name].tolist()), abs=1e-12)
    entropies = [r.entropy for r in ranked]
    assert entropies == sorted(entropies, reverse=True)
    assert names[0] == "colour"


def test_ties_broken_by_name_not_file_order() -> None:
    table = pd.DataFrame({"b": [0, 1, 0, 1], "a": [1, 0, 1, 0], "c": [0, 0, 0, 1]})
    assert [r.name for r in rank_attributes(table)] == ["a", "b", "c"]
    swapped = table[["c", "a", "b"]]
    assert [r.name for r in rank_attributes(swapped)] == ["a", "b", "c"]


def test_joint_value_against_tuple_reference() -> None:
    table = _table(1)
    ranked = [r.name for r in rank_attributes(table)]
    for k in range(1, 5):
        ids = build_clusters(table, "attributes", k=k)
        tuples = list(zip(*(table[c] for c in ranked[:k]), strict=True))
        order = {t: i for i, t in enumerate(sorted(set(tuples)))}
        assert ids.tolist() == [order[t] for t in tuples]


def test_nested_in_k_and_sweep_matches_single_builds() -> None:
    table = _table(2)
    previous = None
    for k, ids, details in attribute_sweep(table, [1, 2, 3, 4]):
        assert np.array_equal(ids, build_clusters(table, "attributes", k=k))
        assert len(details["attributes"]) == k
        if previous is not None:
            # Each k-cluster lies inside one (k-1)-cluster.
            pairs = pd.DataFrame({"fine": ids, "coarse": previous})
            assert (pairs.groupby("fine")["coarse"].nunique() == 1).all()
        previous = ids


def test_explicit_order_and_default_all() -> None:
    table = _table(3)
    given = build_clusters(table, "attributes", columns=["rare", "even"], rank="given", k=1)
    assert given.tolist() == table["rare"].tolist()
    everything = build_clusters(table, "attributes")  # k=None: all attributes
    assert everything.max() + 1 == len(table[["rare", "even", "colour", "mid"]].drop_duplicates())


def test_missing_values_own_cluster_or_error() -> None:
    table = pd.DataFrame({"wet": [1.0, np.nan, 0.0, np.nan, 1.0]})
    ids = build_clusters(table, "attributes", k=1)
    assert ids.tolist() == [1, 2, 0, 2, 1]  # nothing dropped, missing is its own value
    with pytest.raises(ValueError, match="missing"):
        build_clusters(table, "attributes", k=1, missing="error")


def test_bad_input_messages() -> None:
    table = _table(4)
    with pytest.raises(ValueError, match=r"k=5 is larger than the number of attributes \(4\)"):
        build_clusters(table, "attributes", k=5)
    with pytest.raises(ValueError, match=r"'nope' not found in the table; available columns: id"):
        build_clusters(table, "attributes", columns=["even", "nope"])
    table["height"] = np.linspace(1.5, 2.0, len(table))
    with pytest.raises(ValueError, match="'height' holds non-integer values"):
        build_clusters(table, "attributes", k=1)
    table = table.drop(columns="height").assign(serial=np.arange(len(table)))
    with pytest.raises(ValueError, match="'serial' has 400 distinct values"):
        build_clusters(table, "attributes", k=1)
    with pytest.raises(ValueError, match="positive integer"):
        build_clusters(table, "attributes", k=0, columns=["even"])
    with pytest.raises(ValueError, match="rank='size'"):
        build_clusters(table, "attributes", rank="size")
    with pytest.raises(ValueError, match="more than once"):
        build_clusters(table, "attributes", columns=["even", "even"])
