"""Ranking cluster sources before training: sizes first, then information about labels."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clinfonce.clusters.assess import MIN_LIFT, expected_alone_fraction, expected_positives
from clinfonce.clusters.suggest import suggest, suggestion_markdown


def _table(labelled: int, seed: int = 0) -> pd.DataFrame:
    """600 rows, 10 classes; `group` is a coarsening of the label, `collector` and `batch`
    are independent of it, `shelf` has 60 small groups, `file` is unique per row. Only
    `labelled` rows keep a label."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 10, 600)
    frame = pd.DataFrame(
        {
            "group": label // 3,
            "collector": rng.choice(["ann", "bob", "cy", "dee"], 600),
            "batch": rng.integers(0, 6, 600),
            "file": [f"f{i}" for i in range(600)],
            "shelf": np.arange(600) % 60,
            "label": label.astype(float),
        }
    )
    frame.loc[labelled:, "label"] = np.nan
    return frame


# With 30 labels the interval of I(Z;T)/H(T) reaches below 0.5: the safe combined objective.
@pytest.mark.parametrize(
    ("labelled", "method"), [(30, "clinfonce-plus-simclr"), (600, "clinfonce")]
)
def test_label_independent_columns_rank_last_once_a_few_labels_exist(
    labelled: int, method: str
) -> None:
    found = suggest(_table(labelled), ["label"], label_column="label", batch_size=128)
    names = [a.candidate.name for a in found.ranked]
    assert names[0] == "group"
    assert found.method == method
    uninformative = [a.candidate.name for a in found.ranked if a.informative is False]
    assert {"collector", "batch", "shelf"} <= set(uninformative)
    assert found.skipped["file"].startswith("column 'file'")  # too many values to be one
    assert names[-len(uninformative) :] == uninformative  # all of them at the bottom


def test_too_fine_clusters_are_flagged_and_without_labels_the_combined_objective() -> None:
    found = suggest(_table(0), ["label"], label_column=None, batch_size=16)
    verdicts = {a.candidate.name: a for a in found.ranked}
    assert verdicts["shelf"].why == "too fine: 0.23 positives per anchor (SimCLR-like)"
    assert not verdicts["shelf"].usable
    assert found.ranked[0].usable
    assert found.method == "clinfonce-plus-simclr"
    assert "Without labels" in found.reason


def test_expected_positives_counts_same_cluster_samples_in_a_batch() -> None:
    ids = np.repeat(np.arange(4), 25)  # 4 clusters of 25
    assert expected_positives(ids, 100) == pytest.approx(99 * 24 / 99)


def test_no_usable_column_is_an_error_naming_the_columns() -> None:
    with pytest.raises(ValueError, match="no auxiliary column to cluster by"):
        suggest(pd.DataFrame({"label": [1, 2], "x": [0.1, 0.25]}), ["label", "x"])


def test_without_labels_an_embedding_ranks_sources_by_neighbour_lift() -> None:
    table = _table(0)
    rng = np.random.default_rng(2)
    # An embedding that sees the label (as an image encoder sees what the classes look like).
    label = np.random.default_rng(0).integers(0, 10, 600)
    embeddings = np.eye(10)[label] + 0.3 * rng.standard_normal((600, 10))
    found = suggest(table, ["label"], batch_size=128, embeddings=embeddings)
    lifts = {a.candidate.name: a.lift for a in found.ranked}
    assert found.ranked[0].candidate.name == "group"
    assert lifts["group"] > 2.5
    assert lifts["collector"] == pytest.approx(1.0, abs=0.15)
    names = [a.candidate.name for a in found.ranked]
    for useless in ("collector", "batch"):
        assert lifts[useless] < MIN_LIFT
        assert names.index(useless) > names.index("group")
    assert found.ranked[names.index("collector")].why.endswith(
        "no agreement with the embedding's neighbourhoods"
    )
    assert "lift" in found.reason
    with pytest.raises(ValueError, match="the embeddings have 5 rows but the table 600"):
        suggest(table, ["label"], embeddings=embeddings[:5])


def test_expected_alone_fraction() -> None:
    assert expected_alone_fraction(np.array([5]), 4) == 0.0
    assert expected_alone_fraction(np.array([1] * 8), 4) == 1.0
    # Two clusters of 2: an anchor's one mate is among the 1 other draw of 3 with p = 1/3.
    assert expected_alone_fraction(np.array([2, 2]), 2) == pytest.approx(2 / 3)


def test_a_recoding_of_the_label_is_flagged_ranked_last_and_kept_out_of_joints() -> None:
    table = _table(600)
    names = np.array(list("QWERTYUIOP"))
    table["sku"] = names[table["label"].astype(int).to_numpy()]  # the label, other names
    found = suggest(table, ["label"], label_column="label", batch_size=128)
    ranked = [a.candidate.name for a in found.ranked]
    assert ranked[0] == "group"
    assert ranked[-1] == "sku"
    assert found.ranked[-1].label_copy
    assert found.ranked[-1].why == "the label itself (recoded): training on it is SupCon"
    assert not any("sku" in name for name in ranked[:-1])  # never part of a joint


def test_when_every_source_is_the_label_the_advice_says_so() -> None:
    table = pd.DataFrame({"code": [9, 8, 7] * 20, "label": [0, 1, 2] * 20})
    found = suggest(table, ["label"], label_column="label", batch_size=16)
    assert found.method == "supcon"
    assert found.reason.startswith("every candidate is the label itself")


def test_intervals_contain_their_point_estimates() -> None:
    """Bootstrap resamples inflate the plug-in information, so plain percentiles sat above
    the bias-corrected estimate (0.00 [0.05, 0.09] for a useless many-valued column)."""
    for labelled in (60, 600):
        found = suggest(_table(labelled), ["label"], label_column="label", batch_size=128)
        for a in found.ranked:
            assert a.ratio_low <= a.ratio <= a.ratio_high, a.candidate.name


def test_hierarchy_default_levels_leave_out_the_leaf_level(tmp_path: Path) -> None:
    tree = tmp_path / "tree.csv"
    pairs = [("all", ""), ("a", "all"), ("b", "all")]
    pairs += [(str(c), "a" if c < 5 else "b") for c in range(10)]
    pd.DataFrame(pairs, columns=["child", "parent"]).to_csv(tree, index=False)
    table = _table(600)[["collector", "label"]]
    table["label"] = table["label"].astype(int)
    found = suggest(
        table, ["label"], label_column="label", batch_size=64, hierarchy=(str(tree), "label", None)
    )
    names = [a.candidate.name for a in found.ranked]
    assert "hierarchy level 1" in names
    assert "hierarchy level 2" not in names
    assert "the leaf column 'label' itself" in found.skipped["hierarchy level 2"]
    # Asked for by name, the leaf level is assessed, and named as the label.
    found = suggest(
        table, ["label"], label_column="label", batch_size=64, hierarchy=(str(tree), "label", [2])
    )
    assert found.ranked[-1].candidate.name == "hierarchy level 2"
    assert found.ranked[-1].label_copy


def test_a_tag_column_is_found_without_a_flag() -> None:
    rng = np.random.default_rng(0)
    table = _table(600)
    noise = [f"#n{i}" for i in range(40)]
    table["tags"] = [
        f"#g{int(label) // 3} " + " ".join(rng.choice(noise, 2, replace=False))
        for label in table["label"]
    ]
    found = suggest(table, ["label"], label_column="label", batch_size=128)
    names = [a.candidate.name for a in found.ranked]
    assert "tags top-1 tags" in names
    assert "tags" not in found.skipped


def test_the_ranking_table_shows_column_names_as_written() -> None:
    """HTML in a column name is shown, not rendered, and a ``|`` does not split its cell."""
    table = _table(200).rename(columns={"shelf": "<b>shelf|row</b>"})
    found = suggest(table, ["label"], label_column="label", batch_size=16)
    text = suggestion_markdown(found)
    assert "&lt;b&gt;shelf\\|row&lt;/b&gt;" in text and "<b>" not in text
    rows = [line for line in text.splitlines() if line.startswith("|")]
    widths = {len(re.split(r"(?<!\\)\|", row)) for row in rows}
    assert len(rows) > 2 and len(widths) == 1  # header, rule and rows: as many cells each


def test_auto_batches_count_balanced_groups_only_for_sources_too_fine() -> None:
    """``per_cluster="auto"`` (what ``clinfonce run`` trains with): a fine source is judged
    with cluster-balanced batches of 4, a coarse one with random batches."""
    rows = np.arange(256)  # 64 clusters of 4: 0.36 positives per anchor in a random batch
    table = pd.DataFrame({"fine": rows // 4, "coarse": rows % 8})
    found = suggest(table, [], batch_size=32, per_cluster="auto")
    by_name = {a.candidate.name: a for a in found.ranked}
    fine, coarse = by_name["fine"], by_name["coarse"]
    assert (fine.per_cluster, coarse.per_cluster) == (4, 0)
    assert fine.usable and "groups of 4" in suggestion_markdown(found)
    assert fine.positives == pytest.approx(3 + 28 * 3 / 255)
    plain = {a.candidate.name: a for a in suggest(table, [], batch_size=32).ranked}
    assert not plain["fine"].usable and plain["coarse"].positives == coarse.positives
