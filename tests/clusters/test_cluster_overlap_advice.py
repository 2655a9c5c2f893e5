"""The advisor's overlap-positives figure and its advice beside tag-set clusters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinfonce.clusters.assess import expected_positives, overlap_positives
from clinfonce.clusters.suggest import suggest, suggestion_markdown
from clinfonce.losses.positives import Overlap


@pytest.mark.parametrize("kind", ["any", "at-least", "jaccard"])
def test_overlap_positives_match_a_pair_loop(kind: str) -> None:
    rng = np.random.default_rng(0)
    presence = rng.random((30, 6)) < 0.3
    sets = [set(np.flatnonzero(row).tolist()) for row in presence]
    total = 0.0
    for i, a in enumerate(sets):
        for j, b in enumerate(sets):
            if i != j:
                shared = len(a & b)
                if kind == "jaccard":
                    total += shared / len(a | b) if a | b else 0.0
                else:
                    total += shared >= (2 if kind == "at-least" else 1)
    expected = (16 - 1 + 100) * total / (30 * 29)
    rule = Overlap(kind, 2)  # type: ignore[arg-type]
    assert overlap_positives(presence, 16, rule, memory=100) == pytest.approx(expected)


def test_a_partition_as_tags_gives_the_cluster_figure() -> None:
    ids = np.repeat(np.arange(7), [1, 2, 3, 4, 5, 6, 9])
    one_hot = np.eye(7, dtype=bool)[ids]
    assert overlap_positives(one_hot, 32, Overlap("any")) == pytest.approx(
        expected_positives(ids, 32)
    )


def _tag_table(vocabulary: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    tags = ["|".join(f"t{t}" for t in rng.choice(vocabulary, 3, replace=False)) for _ in range(300)]
    return pd.DataFrame(
        {"tags": tags, "colour": rng.integers(0, 4, 300), "label": rng.integers(0, 3, 300)}
    )


def test_suggest_recommends_overlap_only_when_no_tag_set_clustering_is_well_sized() -> None:
    # 200 rare tags: every top-k presence pattern is one huge "none of them" cluster.
    table = _tag_table(200)
    found = suggest(table, ["label"], label_column="label", batch_size=256, tags="tags")
    assert not any(a.usable for a in found.ranked if a.candidate.clusters["builder"] == "tags")
    assert found.overlap is not None
    assert "Recommended over tag-set clusters (none is well sized): `--overlap jaccard`" in (
        found.overlap
    )
    assert found.overlap in suggestion_markdown(found)
    plain = suggest(table, ["label", "tags"], label_column="label")
    assert plain.overlap is None
    small = suggest(table, ["label"], label_column="label", batch_size=8, tags="tags")
    assert small.overlap is not None and "too few tags are shared" in small.overlap


def test_suggest_keeps_well_sized_tag_sets_over_overlap_positives() -> None:
    """Measured on Fashion-MNIST's made tags: top-4/top-8 tag sets beat overlap positives."""
    found = suggest(_tag_table(40), ["label"], label_column="label", batch_size=32, tags="tags")
    best = next(a for a in found.ranked if a.candidate.clusters["builder"] == "tags" and a.usable)
    assert found.overlap is not None
    assert f"Tag-set clusters ({best.candidate.name}) are well sized: use them." in found.overlap
