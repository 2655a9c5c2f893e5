"""The tags builder: formats, top-k presence patterns, TF-IDF + K-means, bad cells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinfonce.clusters import build_clusters
from clinfonce.clusters.tags import parse_tags, tag_sweep

SETS = [{"beach", "sun"}, {"sun"}, set(), {"beach"}, {"sun", "snow"}, {"sun"}]


def _formats() -> dict[str, list[object]]:
    return {
        "hashtag": [" ".join(f"#{t}" for t in sorted(s)) for s in SETS],
        "pipe": ["|".join(sorted(s)) for s in SETS],
        "json": ["[" + ", ".join(f'"{t}"' for t in sorted(s)) + "]" for s in SETS],
        "lists": [sorted(s) for s in SETS],
    }


@pytest.mark.parametrize("fmt", ["hashtag", "pipe", "json", "lists"])
def test_every_format_parses_to_the_same_pairs(fmt: str) -> None:
    cells = pd.Series(_formats()[fmt], dtype=object)
    if fmt == "pipe":
        cells[2] = None  # missing cell = no tags
    rows, tags = parse_tags(cells)
    got = {(int(r), str(t)) for r, t in zip(rows, tags, strict=True)}
    assert got == {(i, t) for i, s in enumerate(SETS) for t in s}


def test_top_k_presence_pattern_against_reference() -> None:
    table = pd.DataFrame({"tags": _formats()["hashtag"]})
    # Presence counts over 6 rows: sun 4, beach 2, snow 1 -> entropies rank sun, beach, snow
    # (sun and beach tie at H(4/6) = H(2/6); the tie goes to the name: beach first).
    ids, details = next(tag_sweep(table, [2], column="tags"))[1:]
    assert details["tags"] == ["beach", "sun"]
    pattern = [("beach" in s, "sun" in s) for s in SETS]
    order = {p: i for i, p in enumerate(sorted(set(pattern)))}
    assert ids.tolist() == [order[p] for p in pattern]
    nested = [ids for _, ids, _ in tag_sweep(table, [1, 2, 3], column="tags")]
    assert np.array_equal(nested[1], ids)
    assert len(np.unique(nested[2])) == len({frozenset(s) for s in SETS})


def test_tfidf_kmeans_groups_tag_sets() -> None:
    rng = np.random.default_rng(0)
    themes = [["sea", "sand", "sun"], ["snow", "ski", "cold"], ["city", "night", "bar"]]
    theme = rng.integers(0, 3, 90)
    cells = ["|".join(rng.choice(themes[t], 2, replace=False)) for t in theme]
    ids = build_clusters(
        pd.DataFrame({"tags": cells}), "tags", column="tags", method="tfidf-kmeans", n_clusters=3
    )
    contingency = pd.crosstab(ids, theme)
    assert (contingency.gt(0).sum(axis=1) == 1).all()  # each cluster one theme


def test_bad_cells_are_named() -> None:
    with pytest.raises(ValueError, match=r"row 1 \('#a b'\) is not a list of #hashtags"):
        parse_tags(pd.Series(["#x #y", "#a b"]))
    with pytest.raises(ValueError, match=r"row 1 \('\[\"a\", \]'\) is not a valid JSON list"):
        parse_tags(pd.Series(['["a"]', '["a", ]']))
    with pytest.raises(ValueError, match="looks like json tags, but row 0 looks like hashtag"):
        parse_tags(pd.Series(["#a", '["b"]']))
    with pytest.raises(ValueError, match="not text or a list"):
        parse_tags(pd.Series(["a", 3], dtype=object))
    with pytest.raises(ValueError, match="JSON list of strings"):
        parse_tags(pd.Series(['{"a": 1}']), fmt="json")
    table = pd.DataFrame({"tags": ["a|b", "b"]})
    with pytest.raises(ValueError, match=r"k=3 is larger than the number of tags \(2\)"):
        build_clusters(table, "tags", column="tags", k=3)
    with pytest.raises(ValueError, match="no tags at all"):
        build_clusters(pd.DataFrame({"tags": ["", None]}), "tags", column="tags")
    with pytest.raises(ValueError, match="takes n_clusters"):
        build_clusters(table, "tags", column="tags", method="tfidf-kmeans", k=1)
