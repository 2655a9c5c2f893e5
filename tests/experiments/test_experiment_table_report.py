"""``report.md`` of ``clinfonce run``: the loss read against its chance level and floor,
and cluster names for the size plot."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from clinfonce.experiments.table_plan import TableRunOptions, plan_table_run
from clinfonce.experiments.table_report import (
    chance_loss,
    cluster_names,
    floor_loss,
    loss_lines,
)
from clinfonce.losses import ClInfoNCELoss


@pytest.fixture()
def table(tmp_path: Path) -> Path:
    """32 grayscale 12 px PNGs, labels c0..c3, a coarse `side` column, a hierarchy file."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(32):
        Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        rows.append({"file": f"{i}.png", "class": f"c{i % 4}", "side": "ab"[i % 4 // 2]})
    pd.DataFrame(rows).to_csv(tmp_path / "meta.csv", index=False)
    (tmp_path / "tree.csv").write_text(
        "child,parent\nc0,warm\nc1,warm\nc2,cold\nc3,cold\nwarm,\ncold,\n"
    )
    return tmp_path / "meta.csv"


@pytest.mark.parametrize("clusters", [[0, 1, 2, 3, 4, 5], [0, 0, 0, 1, 1, 1]])
def test_the_chance_level_is_the_loss_of_an_encoder_that_tells_nothing_apart(
    clusters: list[int],
) -> None:
    same = torch.ones(6, 2, 8)  # every view the same embedding: all similarities equal
    loss = ClInfoNCELoss(temperature=0.2)(same, cluster_ids=torch.tensor(clusters))
    assert float(loss) == pytest.approx(chance_loss(6, 2), rel=1e-6)


def test_the_floor_is_reached_when_clusters_are_points() -> None:
    # Three clusters of 2 samples; every cluster's views share one far-apart direction.
    directions = torch.eye(3).repeat_interleave(2, dim=0)
    views = torch.stack([directions, directions], dim=1)
    loss = ClInfoNCELoss(temperature=0.001)(views, cluster_ids=torch.tensor([0, 0, 1, 1, 2, 2]))
    # In a batch of 6, an anchor's cluster has 1 other sample: 3 positive views of 11.
    assert float(loss) == pytest.approx(floor_loss(1.0, 2), abs=1e-4)
    assert floor_loss(1.0, 2) == pytest.approx(math.log(3))


def _log(run_dir: Path, columns: dict[str, list[float]]) -> None:
    folder = run_dir / "logs" / "csv" / "version_0"
    folder.mkdir(parents=True)
    steps = list(range(len(next(iter(columns.values())))))
    pd.DataFrame({"step": steps, **{f"train/{k}": v for k, v in columns.items()}}).to_csv(
        folder / "metrics.csv", index=False
    )


def test_the_report_says_which_loss_term_learned(table: Path, tmp_path: Path) -> None:
    plan = plan_table_run(
        TableRunOptions(str(table), aux=["side"], batch_size=16, method="clinfonce-plus-simclr"),
        log=lambda _: None,
    )
    chance = chance_loss(16, 2)
    flat = [chance + 0.01 * (i % 2) for i in range(20)]
    falling = [chance - 0.15 * i for i in range(20)]
    _log(
        tmp_path / "main",
        {"loss": list(np.add(flat, falling)), "clinfonce": flat, "simclr": falling},
    )
    _log(tmp_path / "simclr", {"loss": falling})
    lines = loss_lines(
        plan, {"clinfonce-plus-simclr": tmp_path / "main", "simclr": tmp_path / "simclr"}
    )
    assert lines[0].startswith(f"Chance level of every term: ln(2 x 16 - 1) = {chance:.2f}")
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): line for line in lines[4:-1]}
    assert rows[("clinfonce-plus-simclr", "clinfonce")].endswith("| no: within 5% of chance |")
    assert rows[("clinfonce-plus-simclr", "simclr")].endswith("| yes |")
    assert rows[("simclr", "simclr")].endswith("| yes |")


def test_clusters_are_named_by_their_values(table: Path) -> None:
    tree = str(table.parent / "tree.csv")
    for options, expected in (
        ({"aux": ["side"]}, {"a", "b"}),
        ({"hierarchy": tree, "level": 0}, {"warm", "cold"}),
    ):
        plan = plan_table_run(TableRunOptions(str(table), **options), log=lambda _: None)  # type: ignore[arg-type]
        ids = plan.source.table["id"].astype(str)
        clusters = np.array([i % 4 // 2 for i in range(32)])
        assert set(cluster_names(plan, ids, clusters).values()) == expected
