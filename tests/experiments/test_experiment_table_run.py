"""What ``clinfonce run`` derives from a table before training (no training here)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clinfonce.clusters.suggest import suggestion_markdown
from clinfonce.experiments.table_plan import TableRunOptions, plan_table_run
from clinfonce.training.run_directory import run_directory


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
    assert lines[4].startswith("method: clinfonce-plus-simclr (the rule for every source: ")
    assert lines[5].startswith("clusters: class at level 1; K = 2, I(Z;T)/H(T) = 0.47 [90% CI")
    assert "over 40 labelled training rows, bias-corrected" in lines[5]


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
    assert plan.assessment is not None and plan.assessment.k == 2
    assert Path(str(plan.config.clusters.assignment)) == assignment


def test_prepared_on_disk_when_the_decoded_images_exceed_the_memory_budget(
    gray_table: Path,
) -> None:
    lines = _plan(gray_table, aux=["tags"], memory_budget_mib=0.001)
    assert "prepared on disk: 40 decoded images of 20 px take 0 MiB, over the 0 MiB" in lines[2]


def _numbers(line: str) -> list[str]:
    pattern = r"I\(Z;T\)/H\(T\) = \S+ \[90% CI [^\]]+\], I\(Z;T\) = \S+ of H\(T\) = \S+ bits, "
    return re.findall(pattern + r"H\(Z\|T\) = [\d.]+", line)


def test_one_estimator_for_the_summary_the_why_line_and_the_table(gray_table: Path) -> None:
    lines = _plan(gray_table, aux=["auto"], tags="tags")
    plan = plan_table_run(TableRunOptions(str(gray_table), aux=["auto"]), log=lambda _: None)
    clusters = next(line for line in lines if line.startswith("clusters: "))
    why = next(line for line in lines if line.startswith("why: "))
    assert _numbers(clusters) and _numbers(clusters) == _numbers(why)
    assert plan.suggestion is not None
    table = suggestion_markdown(plan.suggestion)
    best = plan.suggestion.best
    assert f"| {best.i_zt:.2f} | {best.h_z_given_t:.2f} |" in table
    assert f"I(Z;T) = {best.i_zt:.2f} of" in plan.summary[5]


def _with_columns(table: Path, **columns: list[str]) -> Path:
    """The table's path and class columns plus ``columns``, as a new CSV beside it."""
    frame = pd.read_csv(table)[["file", "class"]].assign(**columns)
    path = table.with_name("other.csv")
    frame.to_csv(path, index=False)
    return path


def test_the_default_method_follows_the_clusters_not_the_flag(gray_table: Path) -> None:
    # Informative clusters (class c0 split in two): chosen by hand or by auto, one rule.
    fine = [f"c{i % 4}" + ("b" if i % 8 == 0 else "") for i in range(40)]
    table = _with_columns(gray_table, fine=fine)
    methods = {
        plan_table_run(TableRunOptions(str(table), aux=aux), log=lambda _: None).config.method.name
        for aux in (["fine"], ["auto"])
    }
    assert methods == {"clinfonce"}
    # Coarse clusters: the combined objective, whether a hierarchy level or a column.
    side = ["warm" if i % 4 < 2 else "cold" for i in range(40)]
    table = _with_columns(gray_table, side=side)
    tree = str(gray_table.parent / "tree.csv")
    methods = {
        plan_table_run(
            TableRunOptions(str(table), **options), log=lambda _: None
        ).config.method.name  # type: ignore[arg-type]
        for options in ({"aux": ["side"]}, {"hierarchy": tree, "level": 1})
    }
    assert methods == {"clinfonce-plus-simclr"}


def test_a_label_copy_is_never_picked_and_is_named_when_chosen(gray_table: Path) -> None:
    sku = [f"sku-{i % 4}" for i in range(40)]
    noise = [f"n{i % 3}" for i in range(40)]
    table = _with_columns(gray_table, sku=sku, noise=noise)
    plan = plan_table_run(TableRunOptions(str(table), aux=["auto"]), log=lambda _: None)
    assert plan.config.to_dict()["clusters"]["params"]["columns"] == ["noise"]
    lines = _plan(table, aux=["sku"])
    assert any(
        line.startswith("warning: sku is the label 'class' under other names") for line in lines
    )
    with pytest.raises(ValueError, match="every candidate source is the label 'class'"):
        _plan(_with_columns(gray_table, sku=sku), aux=["auto"])


def test_a_source_without_information_is_warned_about(gray_table: Path) -> None:
    noise = [f"n{i % 3}" for i in range(40)]
    lines = _plan(_with_columns(gray_table, noise=noise), aux=["noise"])
    warning = next(line for line in lines if line.startswith("warning: "))
    assert warning.startswith("warning: noise tells nothing measurable about the labels")
    assert "permutation test p = " in warning and "expect no gain over SimCLR" in warning


def test_tags_take_k_or_the_advisors_pick(gray_table: Path) -> None:
    plan = plan_table_run(TableRunOptions(str(gray_table), tags="tags", k=2), log=lambda _: None)
    assert plan.config.to_dict()["clusters"]["params"]["k"] == 2
    plan = plan_table_run(TableRunOptions(str(gray_table), tags="tags"), log=lambda _: None)
    assert plan.config.to_dict()["clusters"]["params"]["k"] in (1, 2, 4, 8)
    assert "set it with --k" in plan.summary[5]
    with pytest.raises(ValueError, match="--k is the number of top tags of --tags COL"):
        _plan(gray_table, aux=["auto"], k=2)


def test_runs_get_a_directory_of_their_own(
    gray_table: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(gray_table.parent)
    first = plan_table_run(TableRunOptions(str(gray_table), tags="tags", k=1), log=lambda _: None)
    assert run_directory(first.config).name == "meta-tags-top1"
    run_directory(first.config).mkdir(parents=True)
    second = plan_table_run(TableRunOptions(str(gray_table), tags="tags", k=1), log=lambda _: None)
    assert run_directory(second.config).name == "meta-tags-top1-2"
    (run_directory(first.config) / "config.yaml").write_text("x")
    with pytest.raises(ValueError, match="leave --out out"):
        _plan(gray_table, tags="tags", out=str(run_directory(first.config)))
