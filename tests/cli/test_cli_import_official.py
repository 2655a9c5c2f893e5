"""``clinfonce clusters import-official`` on small official-format CSVs and the real files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clinfonce.cli import main
from clinfonce.clusters import cluster_metrics, read_assignment
from clinfonce.clusters.io import file_sha256

OFFICIAL = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "reference"
    / "cl-infonce-official-metadata"
)
PATHS = [f"train/0--Scene/img_{i}.jpg" for i in range(5)] + [
    f"val/1--Scene/img_{i}.jpg" for i in range(5, 8)
]
CLASS = [0, 0, 1, 1, 1, 2, 2, 0]
# Official cluster ids are not 0..K-1 (the official files number them over all images).
GRAN_2 = [7, 7, 3, 3, 9, 9, 3, 7]
GRAN_10 = [40, 41, 3, 5, 90, 91, 92, 40]


def write_official(path: Path, rows: slice = slice(None), *, gran: bool = True) -> Path:
    """An official meta_data CSV: unnamed index, columns, and the trailing count row."""
    frame = pd.DataFrame({"path": PATHS, "class": CLASS})
    if gran:
        frame["label_gran_10"] = GRAN_10  # out of natural order on purpose
        frame["label_gran_2"] = GRAN_2
    frame = frame.iloc[rows]
    frame.index = [3 * i + 1 for i in range(len(frame))]
    counts = pd.DataFrame([frame.nunique()], index=[-1])
    counts["path"] = "num_per_label_gran"
    pd.concat([frame, counts]).to_csv(path)
    return path


def write_table(path: Path, ids: list[str], splits: list[str], labels: list[int]) -> Path:
    pd.DataFrame({"id": ids, "label": labels, "split": splits}).to_csv(path, index=False)
    return path


def run(*args: object) -> int:
    return main(["clusters", "import-official", *(str(a) for a in args)])


def renumbered(values: list[int]) -> np.ndarray:
    return np.unique(values, return_inverse=True)[1].astype(np.int64)


def test_imports_one_column_renumbered_with_sidecar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = write_official(tmp_path / "meta_data_train.csv")
    out = tmp_path / "k10.csv"
    assert run(meta, "--column", "label_gran_10", "--out", out) == 0
    assignment = read_assignment(out)
    assert assignment["id"].tolist() == PATHS
    # Sorted official values -> 0..K-1: 3,5,40,41,90,91,92 -> 0..6.
    assert assignment["cluster"].tolist() == [2, 3, 0, 1, 4, 5, 6, 2]
    sidecar = json.loads(Path(f"{out}.json").read_text())
    assert sidecar["builder"] == "official-import"
    assert sidecar["params"] == {"column": "label_gran_10"}
    assert sidecar["input"] == {"path": str(meta), "sha256": file_sha256(meta), "rows": 8}
    assert sidecar["id_column"] == "path" and sidecar["label_column"] == "class"
    assert sidecar["checked_against"] is None
    expected = cluster_metrics(renumbered(GRAN_10), np.array(CLASS))
    assert sidecar["metrics"]["i_zt"] == pytest.approx(expected["i_zt"])
    assert sidecar["num_clusters"] == 7
    printed = capsys.readouterr().out
    assert f"I(Z;T)         {expected['i_zt']:.4f}" in printed
    assert f"wrote {out} (8 rows, 7 clusters)" in printed


def test_all_columns_in_natural_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta = write_official(tmp_path / "meta_data_train.csv")
    assert run(meta, "--all-columns", tmp_path / "all", "--no-ami") == 0
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == [
        "label_gran_10.csv",
        "label_gran_10.csv.json",
        "label_gran_2.csv",
        "label_gran_2.csv.json",
    ]
    for column, values in (("label_gran_2", GRAN_2), ("label_gran_10", GRAN_10)):
        assignment = read_assignment(tmp_path / "all" / f"{column}.csv")
        np.testing.assert_array_equal(assignment["cluster"], renumbered(values))
        sidecar = json.loads((tmp_path / "all" / f"{column}.csv.json").read_text())
        assert sidecar["params"]["column"] == column and "ami" not in sidecar["metrics"]
    printed = capsys.readouterr().out
    assert printed.index("label_gran_2: K=3") < printed.index("label_gran_10: K=7")


def test_checks_ids_against_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The official train file covers our train split; our table also has test rows and
    # numbers the classes differently (as CUB's 1..200 vs 0..199).
    meta = write_official(tmp_path / "meta.csv")
    ids = [*PATHS, "test/0--Scene/t.jpg"]
    labels = [5, 5, 6, 6, 6, 7, 7, 5, 5]
    table = write_table(tmp_path / "ours.csv", ids, ["train"] * 8 + ["test"], labels)
    out = tmp_path / "k2.csv"
    assert run(meta, "--column", "label_gran_2", "--out", out, "--table", table) == 0
    checked = json.loads(Path(f"{out}.json").read_text())["checked_against"]
    assert checked == {
        "table": str(table),
        "id_column": "id",
        "rows": 9,
        "matched": 8,
        "split": "train",
        "labels_agree": True,
    }
    printed = capsys.readouterr().out
    assert "all 8 official ids found" in printed and "warning" not in printed


def test_label_disagreement_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta = write_official(tmp_path / "meta.csv")
    table = write_table(tmp_path / "ours.csv", PATHS, ["train"] * 8, [0, 1, 1, 1, 1, 2, 2, 0])
    out = tmp_path / "k2.csv"
    assert run(meta, "--column", "label_gran_2", "--out", out, "--table", table) == 0
    assert "warning: the official 'class' and the table's 'label' group" in capsys.readouterr().out
    assert json.loads(Path(f"{out}.json").read_text())["checked_against"]["labels_agree"] is False


def test_unmatched_ids_are_an_error_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = write_official(tmp_path / "meta.csv")
    ids = [p.replace("img_", "image_") for p in PATHS[:2]] + PATHS[2:]
    table = write_table(tmp_path / "ours.csv", ids, ["train"] * 8, CLASS)
    out = tmp_path / "k2.csv"
    assert run(meta, "--column", "label_gran_2", "--out", out, "--table", table) == 1
    error = capsys.readouterr().err
    assert "2 of 8 official ids are not in" in error
    assert "'train/0--Scene/img_0.jpg', 'train/0--Scene/img_1.jpg'" in error
    assert not out.exists()


def test_same_file_names_in_other_folders_get_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # ImageNet's official val paths are flat (val/<file>); an ImageFolder tree has val/<wnid>/.
    meta = write_official(tmp_path / "meta.csv")
    ids = [f"{Path(p).parent}/n0000000{i}/{Path(p).name}" for i, p in enumerate(PATHS)]
    table = write_table(tmp_path / "ours.csv", ids, ["train"] * 8, CLASS)
    assert run(meta, "--column", "label_gran_2", "--out", tmp_path / "x.csv", "--table", table) == 1
    assert "file names do occur in the table, so the folders differ" in capsys.readouterr().err


def test_uncovered_training_rows_are_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = write_official(tmp_path / "meta.csv", slice(0, 6))  # the file lacks two images
    args = [meta, "--column", "label_gran_2", "--out", tmp_path / "x.csv", "--table"]
    table = write_table(tmp_path / "a.csv", PATHS, ["train"] * 7 + ["test"], CLASS)
    assert run(*args, table) == 1
    assert "1 of 7 'train' rows of" in capsys.readouterr().err
    # --split names the split the file must cover.
    table = write_table(tmp_path / "b.csv", PATHS, ["test"] * 6 + ["train"] * 2, CLASS)
    assert run(*args, table) == 1
    assert "2 of 2 'train' rows of" in capsys.readouterr().err
    assert run(*args, table, "--split", "test") == 0
    assert run(*args, table, "--split", "nope") == 1
    assert "no rows with split == 'nope'" in capsys.readouterr().err


BASE = ["--column", "label_gran_2", "--out", "x.csv"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--column", "label_gran_3", "--out", "x.csv"], "'label_gran_3' is not in"),
        (["--out", "x.csv"], "pass --column and --out .*: label_gran_2, label_gran_10$"),
        ([*BASE, "--all-columns", "d"], "give --all-columns OUTDIR, or --column"),
        ([*BASE, "--dataset", "cub-200-2011"], "--dataset and --root go together"),
        ([*BASE, "--table", "t.csv", "--dataset", "ut-zappos50k", "--root", "r"], "not both"),
    ],
)
def test_bad_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    meta = write_official(tmp_path / "meta.csv")
    assert run(meta, *args) == 1
    assert re.search(message, capsys.readouterr().err.strip())


def test_val_file_without_clusters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta = write_official(tmp_path / "meta_data_val.csv", gran=False)
    assert run(meta, "--all-columns", tmp_path / "d") == 1
    assert "no label_gran_<k> columns" in capsys.readouterr().err


def test_checks_against_a_dataset_read_by_its_reader(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A two-image WIDER Attribute tree: ids are the JSON file names, as the official paths.
    root = tmp_path / "wider"
    names = ["train/0--Parade/a.jpg", "val/1--Riot/b.jpg"]
    for name in names:
        (root / "Image" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(root / "Image" / name)
    maps = {"attribute_id_map": {"0": "Male"}, "scene_id_map": {"0": "Parade", "1": "Riot"}}
    images = [
        {"file_name": n, "scene_id": s, "targets": [{"attribute": [1], "bbox": [0, 0, 1, 1]}]}
        for n, s in zip(names, [0, 1], strict=True)
    ]
    (root / "wider_attribute_trainval.json").write_text(json.dumps({"images": images, **maps}))
    (root / "wider_attribute_test.json").write_text(json.dumps({"images": [], **maps}))
    meta = tmp_path / "meta.csv"
    pd.DataFrame({"path": names, "class": [0, 1], "label_gran_1": [1, 0]}).to_csv(meta)
    out = tmp_path / "w.csv"
    args = ["--column", "label_gran_1", "--out", out, "--dataset", "wider-attribute"]
    assert run(meta, *args, "--root", root) == 0
    checked = json.loads(Path(f"{out}.json").read_text())["checked_against"]
    assert checked["matched"] == 2 and checked["labels_agree"] is True
    assert "all 2 official ids found in wider-attribute at" in capsys.readouterr().out


def test_real_official_zappos_matches_paper_notes(tmp_path: Path) -> None:
    meta = OFFICIAL / "UT-zappos50K" / "rank_H" / "meta_data_train.csv"
    if not meta.is_file():
        pytest.skip(f"official metadata not found at {meta}")
    out = tmp_path / "zappos-k10.csv"
    assert run(meta, "--column", "label_gran_10", "--out", out, "--no-ami") == 0
    sidecar = json.loads(Path(f"{out}.json").read_text())
    # docs/method.md §2-§3: k = 10 -> K = 625, H(Z|T) = 6.210, I(Z;T) = 1.604 bits.
    assert sidecar["num_samples"] == 35017 and sidecar["num_clusters"] == 625
    assert sidecar["metrics"]["h_z_given_t"] == pytest.approx(6.210, abs=5e-4)
    assert sidecar["metrics"]["i_zt"] == pytest.approx(1.604, abs=5e-4)
    assignment = read_assignment(out)
    official = pd.read_csv(meta, index_col=0).drop(index=-1)
    assert assignment["id"].tolist() == official["path"].tolist()
    # Renumbering keeps the grouping: same official id <=> same new id.
    pairs = pd.DataFrame(
        {"new": assignment["cluster"], "old": official["label_gran_10"].to_numpy()}
    )
    assert (pairs.groupby("old")["new"].nunique() == 1).all()
    assert (pairs.groupby("new")["old"].nunique() == 1).all()


def test_help_names_every_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    from clinfonce.data.official import OFFICIAL_READERS

    with pytest.raises(SystemExit):
        main(["clusters", "import-official", "--help"])
    text = "".join(capsys.readouterr().out.split())  # wrapping may break at hyphens
    assert all(name in text for name in OFFICIAL_READERS)


def test_unknown_dataset_lists_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = write_official(tmp_path / "meta.csv")
    assert run(meta, *BASE, "--dataset", "mnist", "--root", tmp_path) == 1
    assert "unknown official dataset 'mnist'; choose one of" in capsys.readouterr().err
