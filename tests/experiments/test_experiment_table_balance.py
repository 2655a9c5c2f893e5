"""``clinfonce run`` balances batches for clusters too fine for a random batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clinfonce.clusters.assess import BALANCED_PER_CLUSTER, positives_per_anchor
from clinfonce.experiments.table_plan import TableRunOptions, plan_table_run

ROWS, BATCH = 128, 16


@pytest.fixture()
def table(tmp_path: Path) -> Path:
    """32 clusters of 4 (``fine``: 0.35 positives per anchor in a random batch of 16) and
    4 clusters of 32 (``coarse``)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(ROWS):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        rows.append({"file": f"{i}.png", "fine": f"f{i // 4}", "coarse": f"c{i % 4}"})
    pd.DataFrame(rows).to_csv(tmp_path / "meta.csv", index=False)
    return tmp_path / "meta.csv"


def _plan(table: Path, column: str, *overrides: str) -> tuple[int, list[str]]:
    lines: list[str] = []
    options = TableRunOptions(
        str(table), aux=[column], batch_size=BATCH, steps=2, overrides=list(overrides)
    )
    plan = plan_table_run(options, log=lines.append)
    return plan.config.train.per_cluster, lines


def test_fine_clusters_get_cluster_balanced_batches(table: Path) -> None:
    per_cluster, lines = _plan(table, "fine")
    assert per_cluster == BALANCED_PER_CLUSTER
    sizes = np.full(ROWS // 4, 4)
    balanced = positives_per_anchor(sizes, BATCH, BALANCED_PER_CLUSTER)
    random = positives_per_anchor(sizes, BATCH)
    assert random < 0.5 <= balanced
    line = next(line for line in lines if line.startswith("batches:"))
    assert f"train.per_cluster={BALANCED_PER_CLUSTER}" in line
    assert f"{balanced:.1f} positives per anchor instead of {random:.2f}" in line


def test_coarse_clusters_and_an_explicit_setting_keep_random_batches(table: Path) -> None:
    per_cluster, lines = _plan(table, "coarse")
    assert per_cluster == 0 and not any(line.startswith("batches:") for line in lines)
    per_cluster, lines = _plan(table, "fine", "train.per_cluster=0")
    assert per_cluster == 0 and not any(line.startswith("batches:") for line in lines)
    assert any("too fine" in line for line in lines)  # the advisor's warning stays
