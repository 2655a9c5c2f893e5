"""Reproduce the official Cl-InfoNCE statistics and docs/method.md §3 (needs ../shared)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clinfonce.clusters import build_clusters, cluster_metrics, read_table
from clinfonce.clusters.sweep import sweep_metrics

OFFICIAL = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "reference"
    / "cl-infonce-official-metadata"
)
pytestmark = pytest.mark.skipif(not OFFICIAL.is_dir(), reason="../shared reference data absent")

# (train CSV, stats CSV) per dataset, as published.
STATS = {
    "UT-zappos50K": "meta_data_train_stats_metrics.csv",
    "CUB": "meta_data_train_stats_.csv",
    "Wider": "meta_data_train_stats_.csv",
}


@pytest.mark.parametrize("dataset", sorted(STATS))
def test_published_stats_reproduced(dataset: str) -> None:
    """Y = each label_gran_<k> column (and `class`, and one cluster per image), T = `class`,
    over the training rows: every published number to 1e-9."""
    folder = OFFICIAL / dataset / "rank_H"
    table = read_table(folder / "meta_data_train.csv")
    stats = pd.read_csv(folder / STATS[dataset], index_col=0)
    assert len(stats) >= 14
    for name, row in stats.iterrows():
        z = np.arange(len(table)) if name == "instance_id" else table[str(name)]
        m = cluster_metrics(z, table["class"], ami=False)
        assert m["h_z_given_t"] == pytest.approx(row["H(Y|T)"], abs=1e-9), name
        assert m["h_t_given_z"] == pytest.approx(row["H(T|Y)"], abs=1e-9), name
        assert m["i_zt"] == pytest.approx(row["I(Y;T)"], abs=1e-9), name
        assert m["h_z"] == pytest.approx(row["H(Y)"], abs=1e-9), name
        # The last published column is ln(I(Y;T) / ln H(Y|T)), undefined for H(Y|T) <= 1.
        derived = row.iloc[-1]
        if pd.notna(derived) and np.isfinite(derived):
            ours = math.log(m["i_zt"] / math.log(m["h_z_given_t"]))
            assert ours == pytest.approx(derived, abs=1e-9), name


def test_count_row_removed_and_index_kept() -> None:
    table = read_table(OFFICIAL / "UT-zappos50K" / "rank_H" / "meta_data_train.csv")
    assert len(table) == 35017
    assert table["source_index"].min() >= 0
    assert table["path"].is_unique
    assert table["label_gran_150"].nunique() == 15091


def test_paper_notes_section_3_sweep() -> None:
    """K, H(Z|T), I(Z;T) of docs/method.md §3 for UT-Zappos50K, via the column builder."""
    table = read_table(OFFICIAL / "UT-zappos50K" / "rank_H" / "meta_data_train.csv")
    columns = [f"label_gran_{k}" for k in (3, 5, 7, 10, 13, 15, 20, 30, 50, 70, 90, 110, 130, 150)]
    frame = sweep_metrics(table, "column", columns, labels=table["class"], ami=False)
    expected_k = [8, 32, 115, 625, 1852, 2575, 5277, 9426, 13560, 14641, 14974, 15078, 15091, 15091]
    assert frame["num_clusters"].tolist() == expected_k
    rows = frame.set_index("column")
    for k, h_z_t, i_zt in ((3, 2.665, 0.301), (10, 6.210, 1.604), (50, 10.031, 3.012)):
        assert rows.loc[f"label_gran_{k}", "h_z_given_t"] == pytest.approx(h_z_t, abs=5e-4)
        assert rows.loc[f"label_gran_{k}", "i_zt"] == pytest.approx(i_zt, abs=5e-4)


def test_cub_and_wider_rows_of_section_3() -> None:
    for dataset, column, k, h_z_t, i_zt in (
        ("CUB", "label_gran_3", 8, 2.132, 0.806),
        ("CUB", "label_gran_10", 782, 4.314, 4.358),
        ("Wider", "label_gran_7", 124, 4.552, 1.244),
    ):
        table = read_table(OFFICIAL / dataset / "rank_H" / "meta_data_train.csv")
        z = build_clusters(table, "column", column=column)
        m = cluster_metrics(z, table["class"], ami=False)
        assert (m["num_clusters"], round(m["h_z_given_t"], 3), round(m["i_zt"], 3)) == (
            k,
            h_z_t,
            i_zt,
        )


def test_controlled_study() -> None:
    """Merging classes keeps H(Z|T) = 0; splitting them keeps I(Z;T) = H(T) = 3.309."""
    folder = OFFICIAL / "UT-zappos50K" / "synthetic"
    merged = read_table(folder / "meta_data_train_bran_2_hirc_rand_fixh.csv")
    sizes = []
    for k in range(6):
        m = cluster_metrics(merged[f"label_gran_{k}"], merged["class"], ami=False)
        assert m["h_z_given_t"] == pytest.approx(0.0, abs=1e-9)
        sizes.append(int(m["num_clusters"]))
    assert sizes == [21, 11, 6, 3, 2, 1]
    split = read_table(folder / "meta_data_train_bran_2_hirc_rand.csv")
    previous = -1.0
    for k in range(15):
        m = cluster_metrics(split[f"label_gran_{k}"], split["class"], ami=False)
        assert m["i_zt"] == pytest.approx(m["h_t"], abs=1e-9)
        assert round(m["h_t"], 3) == 3.309
        assert m["h_z_given_t"] > previous
        previous = m["h_z_given_t"]
    assert int(m["num_clusters"]) == 35017
