"""The builder registry, the simple builders and sweeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clinfonce.clusters import build_clusters
from clinfonce.clusters.builders import BUILDERS, sweep_builder
from clinfonce.clusters.sweep import SWEEP_METRICS, plot_sweep, sweep_metrics, to_markdown

TABLE = pd.DataFrame(
    {
        "id": ["a", "b", "c", "d", "e"],
        "label": ["dog", "cat", "dog", "bird", "cat"],
        "gran": [40, 3, 40, 7, 3],
        "x": [0, 1, 1, 0, 1],
        "y": [1, 1, 0, 0, 1],
    }
)


def test_instance_label_and_column() -> None:
    assert build_clusters(TABLE, "instance").tolist() == [0, 1, 2, 3, 4]
    assert build_clusters(TABLE, "label", label_column="label").tolist() == [2, 1, 2, 0, 1]
    assert build_clusters(TABLE, "column", column="gran").tolist() == [2, 0, 2, 1, 0]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_builder_returns_contiguous_int64(name: str) -> None:
    params = {
        "attributes": {"k": 2},
        "hierarchy": {
            "label_column": "label",
            "parents": {"animal": ["dog", "cat", "bird"]},
            "level": 1,
        },
        "tags": {"column": "label", "k": 1},
        "kmeans": {"columns": ["x", "y"], "n_clusters": 2, "spherical": False},
        "instance": {},
        "label": {"label_column": "label"},
        "column": {"column": "gran"},
    }[name]
    ids = build_clusters(TABLE, name, **params)
    assert ids.dtype == np.int64 and ids.shape == (len(TABLE),)
    assert set(ids.tolist()) == set(range(int(ids.max()) + 1))


def test_registry_errors() -> None:
    with pytest.raises(ValueError, match="unknown builder 'magic'; available: attributes"):
        build_clusters(TABLE, "magic")
    with pytest.raises(ValueError, match="'attributes' does not take level; its parameters: k"):
        build_clusters(TABLE, "attributes", level=2)
    with pytest.raises(ValueError, match="'hierarchy' needs label_column, parents, level"):
        build_clusters(TABLE, "hierarchy")
    with pytest.raises(ValueError, match="has no rows"):
        build_clusters(TABLE.iloc[:0], "instance")
    with pytest.raises(ValueError, match=r"'lbl' not found in the table; available columns: id"):
        build_clusters(TABLE, "label", label_column="lbl")
    with_nan = TABLE.assign(label=[None, "cat", "dog", "dog", "cat"])
    with pytest.raises(ValueError, match=r"missing value\(s\) \(rows 0\)"):
        build_clusters(with_nan, "label", label_column="label")


def test_nested_sweep_equals_single_builds() -> None:
    swept = dict(sweep_builder(TABLE, "attributes", [2, 1]))
    assert sorted(swept) == [1, 2]
    for k, result in swept.items():
        assert np.array_equal(result.ids, build_clusters(TABLE, "attributes", k=k))
    generic = [value for value, _ in sweep_builder(TABLE, "column", ["gran", "x"])]
    assert generic == ["gran", "x"]
    with pytest.raises(ValueError, match="no granularity"):
        list(sweep_builder(TABLE, "instance", [1]))
    with pytest.raises(ValueError, match="k is what the sweep varies"):
        list(sweep_builder(TABLE, "attributes", [1], k=2))


def test_sweep_metrics_table_markdown_and_plot(tmp_path: Path) -> None:
    frame = sweep_metrics(
        TABLE, "attributes", [1, 2], labels=TABLE["label"], ami=False, columns=["x", "y"]
    )
    assert frame.columns.tolist() == ["k", *[m for m in SWEEP_METRICS if m != "ami"]]
    assert frame["num_clusters"].tolist() == [2, 4]
    assert (frame["i_zt"].diff().dropna() >= 0).all()  # nested: refining never loses info
    markdown = to_markdown(frame)
    assert markdown.splitlines()[0].startswith("| k | num_clusters |")
    assert len(markdown.splitlines()) == 4
    plot_sweep(frame, tmp_path / "s.png")
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_skips_a_value_that_cannot_be_built() -> None:
    """A value failing after others were built costs a warning, not the whole sweep."""
    table = pd.DataFrame({"id": [f"a{i}" for i in range(6)], "x": np.arange(6.0)})
    with pytest.warns(UserWarning, match=r"sweep: skipped n_clusters=10: .*need 1 <= K <= n"):
        built = [v for v, _ in sweep_builder(table, "kmeans", [2, 10, 3], columns=["x"])]
    assert built == [2, 3]
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no value of the sweep"):
        list(sweep_builder(table, "kmeans", [10], columns=["x"]))
