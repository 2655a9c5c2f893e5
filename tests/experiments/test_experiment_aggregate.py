"""Mean ± std over seeds, gap closed and the Markdown table, against hand-computed numbers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from clinfonce.experiments import (
    add_gap_closed,
    format_eta,
    gap_closed,
    gap_references,
    markdown_table,
    summarize,
)
from clinfonce.experiments.plots import sweep_plot
from clinfonce.experiments.results_table import describe_clusters


def rows() -> pd.DataFrame:
    # Three seeds of SimCLR, Cl-InfoNCE and SupCon; one seed of a random encoder.
    return pd.DataFrame(
        {
            "name": ["simclr"] * 3 + ["cl"] * 3 + ["supcon"] * 3 + ["random"],
            "seed": [0, 1, 2] * 3 + [0],
            "method": ["simclr"] * 3 + ["clinfonce"] * 3 + ["supcon"] * 3 + ["untrained"],
            "clusters": [""] * 3 + ["attributes columns=[level2]"] * 3 + [""] * 4,
            "group": [""] * 10,
            "x": [""] * 10,
            "num_clusters": [math.nan] * 3 + [6.0] * 3 + [math.nan] * 4,
            "h_z_given_t": [math.nan] * 3 + [0.0] * 3 + [math.nan] * 4,
            "i_zt": [math.nan] * 3 + [2.5] * 3 + [math.nan] * 4,
            "linear_top1": [80.0, 81.0, 82.0, 85.0, 86.0, 90.0, 88.0, 88.0, 88.0, 70.0],
            "knn_top1": [70.0, 72.0, 74.0, 80.0, 80.0, 80.0, 90.0, 90.0, 90.0, 60.0],
            "train_seconds": [10.0] * 10,
        }
    )


def test_mean_and_sample_std_per_run() -> None:
    summary = summarize(rows())
    assert summary["name"].tolist() == ["simclr", "cl", "supcon", "random"]
    assert summary["seeds"].tolist() == [3, 3, 3, 1]
    by = summary.set_index("name")
    # cl linear: mean (85 + 86 + 90) / 3 = 87; deviations -2, -1, 3 -> var (4+1+9)/2 = 7.
    assert by.loc["cl", "linear_top1_mean"] == pytest.approx(87.0)
    assert by.loc["cl", "linear_top1_std"] == pytest.approx(math.sqrt(7.0))
    # simclr kNN: 70, 72, 74 -> mean 72, var (4 + 0 + 4) / 2 = 4.
    assert by.loc["simclr", "knn_top1_mean"] == pytest.approx(72.0)
    assert by.loc["simclr", "knn_top1_std"] == pytest.approx(2.0)
    assert by.loc["supcon", "linear_top1_std"] == 0.0
    assert math.isnan(by.loc["random", "linear_top1_std"])  # one seed: no spread
    assert math.isnan(by.loc["simclr", "num_clusters_mean"])
    assert by.loc["cl", "i_zt_mean"] == 2.5
    assert summarize(rows(), order=["supcon", "cl"])["name"].tolist() == ["supcon", "cl"]


def test_gap_closed_on_seed_means() -> None:
    summary = add_gap_closed(summarize(rows()))
    by = summary.set_index("name")
    # linear: simclr 81, supcon 88, cl 87 -> (87 - 81) / (88 - 81) = 6/7.
    assert by.loc["cl", "gap_linear_top1"] == pytest.approx(6 / 7)
    # kNN: simclr 72, supcon 90, cl 80 -> 8/18.
    assert by.loc["cl", "gap_knn_top1"] == pytest.approx(8 / 18)
    # random: (70 - 81) / 7 and (60 - 72) / 18: below SimCLR is negative.
    assert by.loc["random", "gap_linear_top1"] == pytest.approx(-11 / 7)
    assert by.loc["random", "gap_knn_top1"] == pytest.approx(-12 / 18)
    assert math.isnan(by.loc["simclr", "gap_linear_top1"])
    assert math.isnan(by.loc["supcon", "gap_knn_top1"])
    # explicit references
    other = add_gap_closed(summarize(rows()), ("random", "supcon")).set_index("name")
    assert other.loc["cl", "gap_linear_top1"] == pytest.approx((87 - 70) / (88 - 70))
    assert gap_closed(5.0, 3.0, 3.0) != gap_closed(5.0, 3.0, 3.0)  # NaN


def test_gap_references_need_unique_simclr_and_supcon() -> None:
    summary = summarize(rows())
    assert gap_references(summary) == ("simclr", "supcon")
    assert gap_references(summary[summary["name"] != "supcon"]) is None
    doubled = summary.copy()
    doubled.loc[doubled["name"] == "cl", "method"] = "simclr"
    assert gap_references(doubled) is None
    assert gap_references(summary, ("cl", "missing")) is None
    no_gap = add_gap_closed(summary[summary["name"] != "supcon"])
    assert no_gap["gap_linear_top1"].isna().all()


def test_markdown_table_cells() -> None:
    table = markdown_table(add_gap_closed(summarize(rows())))
    lines = table.splitlines()
    assert lines[0] == (
        "| run | method | clusters | K | H(Z|T) | I(Z;T) | seeds | linear top-1 | "
        "linear top-5 | kNN top-1 | kNN top-5 | gap closed (linear) | gap closed (kNN) | "
        "train s |"
    )
    assert lines[2] == (
        "| simclr | simclr | - | - | - | - | 3 | 81.0 ± 1.0 | - | 72.0 ± 2.0 | - | - | - | 10 |"
    )
    assert lines[3] == (
        "| cl | clinfonce | attributes columns=[level2] | 6 | 0.000 ± 0.000 | 2.500 ± 0.000 | "
        "3 | 87.0 ± 2.6 | - | 80.0 ± 0.0 | - | 0.86 | 0.44 | 10 |"
    )
    assert lines[5] == (
        "| random | untrained | - | - | - | - | 1 | 70.0 | - | 60.0 | - | -1.57 | -0.67 | 10 |"
    )
    plain = markdown_table(summarize(rows()[rows()["name"] == "simclr"]))
    assert "K" not in plain.splitlines()[0].split(" | ") and "gap" not in plain


def test_format_eta_and_cluster_description() -> None:
    assert format_eta(None) == "--:--"
    assert format_eta(59) == "00:01"
    assert format_eta(3600) == "01:00"
    assert format_eta(3601) == "01:01"
    assert format_eta(36000 + 120) == "10:02"
    assert describe_clusters({}) == ""
    assert describe_clusters({"clusters": {"assignment": "c.csv"}}) == "assignment=c.csv"
    long = {"clusters": {"builder": "hierarchy", "params": {"parents": {"a": list(range(30))}}}}
    text = describe_clusters(long)
    assert text.startswith("hierarchy parents={a:[0,1,2") and text.endswith("...}")


def test_sweep_plot_draws_companions_at_matching_x(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure

    drawn: dict[str, list[tuple[float, float]]] = {}

    def record(fig: Figure, *args: Any, **kwargs: Any) -> None:
        for handle, label in zip(*fig.axes[2].get_legend_handles_labels(), strict=True):
            line = handle.lines[0]  # an errorbar container's data line
            drawn[label] = list(zip(line.get_xdata(), line.get_ydata(), strict=True))

    monkeypatch.setattr(Figure, "savefig", record)

    def sweep(xs: list[str], linear: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {"x": xs, "linear_top1_mean": linear, "knn_top1_mean": [50.0] * len(xs)}
        )

    pure = sweep(["1", "2", "3"], [80.0, 85.0, 90.0])
    combined = sweep(["3", "1"], [88.0, 83.0])  # its own order, one x missing
    sweep_plot(pure, tmp_path / "s.png", "t", companions={"plus": combined}, x_label="k")
    assert drawn["linear probe"] == [(0, 80.0), (1, 85.0), (2, 90.0)]
    assert drawn["plus (linear probe)"] == [(2, 88.0), (0, 83.0)]  # placed by x, not by row
    assert "plus (kNN)" in drawn
