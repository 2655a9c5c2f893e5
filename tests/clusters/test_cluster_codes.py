"""Column codes and vectorised joint values against plain tuple-based references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinfonce.clusters._codes import (
    JointCoder,
    dense_rank,
    encode_column,
    joint_ids,
    summarize_column,
)


def _tuple_ranks(rows: list[tuple]) -> list[int]:
    """Rank of each row's tuple among the distinct tuples, sorted (the reference)."""
    order = {t: i for i, t in enumerate(sorted(set(rows)))}
    return [order[t] for t in rows]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(0, 3), min_size=1, max_size=4),
        min_size=1,
        max_size=40,
    ).filter(lambda rows: len({len(r) for r in rows}) == 1)
)
def test_joint_ids_are_lexicographic_ranks(rows: list[list[int]]) -> None:
    array = np.array(rows)
    columns = [encode_column(pd.Series(array[:, j], name=j)) for j in range(array.shape[1])]
    assert joint_ids(columns).tolist() == _tuple_ranks([tuple(r) for r in rows])


def test_joint_code_survives_int64_overflow() -> None:
    """70 columns of 4 levels is 4^70 joint codes: compaction must keep it exact."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4, size=(300, 70))
    data[:150] = data[150:]  # every row has a twin
    coder = JointCoder(len(data))
    for j in range(data.shape[1]):
        coder.add(data[:, j], 4)
    assert coder.ids().tolist() == _tuple_ranks([tuple(r) for r in data.tolist()])


def test_dense_rank_preserves_order() -> None:
    ids, count = dense_rank(np.array([10**15, -3, 10**15, 7]))
    assert ids.tolist() == [2, 0, 2, 1]
    assert count == 3


def test_encode_column_kinds() -> None:
    assert encode_column(pd.Series([True, False, True])).codes.tolist() == [1, 0, 1]
    assert encode_column(pd.Series(["b", "a", "b"])).levels == ["a", "b"]
    cat = pd.Series(pd.Categorical(["lo", "hi", "lo"]))
    assert encode_column(cat).codes.tolist() == [1, 0, 1]
    assert encode_column(pd.Series([-5, 10**9, -5])).codes.tolist() == [0, 1, 0]
    assert encode_column(pd.Series(np.array([-2, 3, 3], dtype=np.int8))).levels == [-2, 3]
    assert encode_column(pd.Series(np.array([7, 2], dtype=np.uint64))).codes.tolist() == [1, 0]
    dense = encode_column(pd.Series(np.array([2, 0, 1, 0], dtype=np.uint8)))
    assert dense.codes.tolist() == [2, 0, 1, 0]
    assert summarize_column(pd.Series(["a", None, "b", "a"])).counts.tolist() == [2, 1, 1]


def test_missing_values_policy() -> None:
    coded = encode_column(pd.Series([1.0, np.nan, 0.0, np.nan], name="wet"))
    assert coded.codes.tolist() == [1, 2, 0, 2]
    assert coded.levels == [0, 1, None]
    strings = encode_column(pd.Series(["x", None, "y"], name="s"))
    assert strings.codes.tolist() == [0, 2, 1]
    with pytest.raises(ValueError, match=r"'wet' has 2 missing value\(s\) \(rows 1, 3\)"):
        encode_column(pd.Series([1.0, np.nan, 0.0, np.nan], name="wet"), missing="error")
    with pytest.raises(ValueError, match="missing='maybe'"):
        encode_column(pd.Series([1]), missing="maybe")


def test_continuous_columns_rejected() -> None:
    with pytest.raises(ValueError, match="'height' holds non-integer values"):
        encode_column(pd.Series([1.5, 2.0], name="height"))
    with pytest.raises(ValueError, match="'x' holds non-integer numbers"):
        encode_column(pd.Series([1.5, "a"], name="x", dtype=object))
    with pytest.raises(ValueError, match="'uid' has 100 distinct values"):
        encode_column(pd.Series(np.arange(100), name="uid"), max_levels=64)
