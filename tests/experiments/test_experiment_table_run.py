"""What ``clinfonce run`` derives from a table before training (no training here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clinfonce.experiments.table_plan import TableRunOptions, plan_table_run


@pytest.fixture()
def gray_table(tmp_path: Path) -> Path:
    """40 grayscale 20 px PNGs in a subfolder, no id and no split column, tags."""
    rng = np.random.default_rng(0)
    (tmp_path / "pics").mkdir()
    rows = []
    for i in range(40):
        Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)).save(
            tmp_path / "pics" / f"{i}.png"
        )
        rows.append({"file": f"pics/{i}.png", "class": f"c{i % 4}", "tags": f"t{i % 2}|u{i % 3}"})
    path = tmp_path / "meta.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    (tmp_path / "tree.csv").write_text(
        "child,parent\nc0,warm\nc1,warm\nc2,cold\nc3,cold\nwarm,all\ncold,all\n"
    )
    return path


def _plan(table: Path, **options: object) -> list[str]:
    lines: list[str] = []
    plan = plan_table_run(TableRunOptions(str(table), **options), log=lines.append)  # type: ignore[arg-type]
    assert lines == plan.summary
    return lines


def test_grayscale_images_no_split_and_a_hierarchy(gray_table: Path) -> None:
    tree = str(gray_table.parent / "tree.csv")
    lines = _plan(gray_table, hierarchy=tree, level=1, batch_size=64, steps=10)
    assert lines[0].endswith(
        "(40 rows; path column 'file', id '(the path)', label 'class', split "
        "'(none: all rows train)')"
    )
    assert "median side 20 px (of 40 read) -> input 20 px, grayscale, 1 channel" in lines[2]
    assert lines[3].startswith(
        "training: 40 rows, batch 40 (batch 64 lowered to 40, the number of training rows), "
        "1 step(s) per epoch x 10 epoch(s) = 10 steps"
    )
    assert lines[4].startswith("clusters: class at level 1; K = 2, I(Z;T)/H(T) = 0.50")


def test_grayscale_tables_keep_brightness_and_contrast_jitter(gray_table: Path) -> None:
    # On grayscale Fashion-MNIST these two lifted SimCLR by 3.8 linear / 7.2 kNN points.
    plan = plan_table_run(TableRunOptions(str(gray_table), kmeans=4), log=lambda _: None)
    assert plan.config.augment.jitter_p == 0.8
    assert plan.config.augment.jitter[:2] == [0.4, 0.4]


def test_tags_kmeans_and_an_assignment_file_become_the_clusters_section(
    gray_table: Path,
) -> None:
    plan = plan_table_run(TableRunOptions(str(gray_table), tags="tags"), log=lambda _: None)
    assert plan.config.clusters.builder == "tags"
    plan = plan_table_run(TableRunOptions(str(gray_table), kmeans=4), log=lambda _: None)
    assert (plan.config.method.name, plan.config.kmeans.n_clusters) == ("kmeans-clinfonce", [4])
    assignment = gray_table.parent / "clusters.csv"
    ids = [f"pics/{i}.png" for i in range(40)]
    pd.DataFrame({"id": ids, "cluster": [i % 2 for i in range(40)]}).to_csv(assignment, index=False)
    plan = plan_table_run(
        TableRunOptions(str(gray_table), clusters=str(assignment)), log=lambda _: None
    )
    assert plan.cluster_metrics["num_clusters"] == 2
    assert Path(str(plan.config.clusters.assignment)) == assignment


def test_prepared_on_disk_when_the_decoded_images_exceed_the_memory_budget(
    gray_table: Path,
) -> None:
    lines = _plan(gray_table, aux=["tags"], memory_budget_mib=0.001)
    assert "prepared on disk: 40 decoded images of 20 px take 0 MiB, over the 0 MiB" in lines[2]
