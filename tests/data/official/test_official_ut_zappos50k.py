"""UT-Zappos50K reader on a tiny tree in the official layout, and the official split."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clinfonce.data.official.ut_zappos50k import (
    category_labels,
    official_split_permutation,
    official_splits,
    read_ut_zappos50k,
)

WriteImages = Callable[[Path, Iterable[str]], None]
ATTRIBUTES = ["Category.Shoes", "Closure.Lace.up", "Material.Leather", "HeelHeight.High.heel"]
# (CID, Category/SubCategory/Brand, attribute values); listed in file order, which is NOT the
# official order: the reader must sort CIDs numerically (string order would differ).
ROWS = [
    ("100627-72", "Shoes/Oxfords/Bostonian", [1, 1, 1, 0]),
    ("100627-255", "Shoes/Oxfords/Bostonian", [1, 1, 0, 0]),
    ("9001-3", "Boots/Ankle/Frye", [0, 0, 1, 1]),
    ("101026-3", "Boots/Mid-Calf/Durango", [0, 1, 1, 0]),
    ("8005381-691", "Shoes/Flats/Minnetonka", [1, 0, 0, 0]),
    ("7654928-110051", "Shoes/Sneakers and Athletic Shoes/Keen", [1, 1, 0, 0]),
    ("7654928-9", "Shoes/Sneakers and Athletic Shoes/Keen", [1, 1, 0, 1]),
    ("555-1", "Shoes/Oxfords/Florsheim Kids", [1, 1, 1, 1]),
    ("556-2", "Boots/Ankle/Frye", [0, 0, 0, 1]),
    ("557-2", "Shoes/Oxfords/Clarks", [1, 0, 1, 0]),
]
OFFICIAL_ORDER = [
    "555-1",
    "556-2",
    "557-2",
    "9001-3",
    "100627-72",
    "100627-255",
    "101026-3",
    "7654928-9",
    "7654928-110051",
    "8005381-691",
]


def image_id(cid: str, folder: str) -> str:
    return f"{folder}/{cid.replace('-', '.')}.jpg"


def write_dataset(
    root: Path, write_images: WriteImages, *, images_dir: str = "ut-zap50k-images-square"
) -> None:
    write_images(root / images_dir, [image_id(cid, folder) for cid, folder, _ in ROWS])
    (root / "ut-zap50k-data").mkdir()
    meta = pd.DataFrame([[cid, *values] for cid, _, values in ROWS], columns=["CID", *ATTRIBUTES])
    meta.to_csv(root / "ut-zap50k-data" / "meta-data-bin.csv", index=False)


@pytest.fixture
def dataset(tmp_path: Path, write_images: WriteImages) -> Path:
    write_dataset(tmp_path, write_images)
    return tmp_path


def test_rows_ids_paths_and_auxiliary_columns(dataset: Path) -> None:
    table = read_ut_zappos50k(dataset)
    by_cid = {cid: (folder, values) for cid, folder, values in ROWS}

    assert table["cid"].tolist() == OFFICIAL_ORDER
    assert table["official_index"].tolist() == list(range(len(ROWS)))
    expected_ids = [image_id(cid, by_cid[cid][0]) for cid in OFFICIAL_ORDER]
    assert table["id"].tolist() == expected_ids
    assert table["path"].tolist() == [f"ut-zap50k-images-square/{i}" for i in expected_ids]
    assert all((dataset / p).is_file() for p in table["path"])
    assert table["brand"].tolist() == [by_cid[c][0].split("/")[2] for c in OFFICIAL_ORDER]
    assert table.columns[:5].tolist() == ["id", "path", "label", "label_name", "split"]


def test_attributes_are_int8_copies_of_meta_data_bin(dataset: Path) -> None:
    table = read_ut_zappos50k(dataset)
    columns = [
        "attr_Category_Shoes",
        "attr_Closure_Lace_up",
        "attr_Material_Leather",
        "attr_HeelHeight_High_heel",
    ]
    assert [c for c in table.columns if c.startswith("attr_")] == columns
    by_cid = {cid: values for cid, _, values in ROWS}
    for row in table.itertuples():
        assert [getattr(row, c) for c in columns] == by_cid[row.cid]
    assert all(table[c].dtype == np.int8 for c in columns)


def test_labels_sorted_and_official_order(dataset: Path) -> None:
    table = read_ut_zappos50k(dataset)
    sorted_names = [
        "Boots/Ankle",
        "Boots/Mid-Calf",
        "Shoes/Flats",
        "Shoes/Oxfords",
        "Shoes/Sneakers and Athletic Shoes",
    ]
    for row in table.itertuples():
        assert row.label_name == "/".join(row.id.split("/")[:2])
        assert sorted_names[row.label] == row.label_name
        assert row.category == row.label_name.split("/")[0]

    official = read_ut_zappos50k(dataset, label_order="official")
    # Descending count (Oxfords 4; Ankle 2 and Sneakers 2; Mid-Calf 1 and Flats 1), ties by
    # first appearance in official row order.
    official_names = [
        "Shoes/Oxfords",
        "Boots/Ankle",
        "Shoes/Sneakers and Athletic Shoes",
        "Boots/Mid-Calf",
        "Shoes/Flats",
    ]
    assert [official_names[k] for k in official["label"]] == official["label_name"].tolist()
    with pytest.raises(ValueError, match="label_order"):
        read_ut_zappos50k(dataset, label_order="frequency")  # type: ignore[arg-type]


def test_split_is_the_numpy_seed_0_permutation(dataset: Path) -> None:
    # The official code used numpy's legacy global generator; restate it that way.
    state = np.random.get_state()  # noqa: NPY002
    try:
        np.random.seed(0)  # noqa: NPY002
        permutation = np.random.permutation(len(ROWS))  # noqa: NPY002
    finally:
        np.random.set_state(state)  # noqa: NPY002
    train_rows = set(permutation[: int(len(ROWS) * 0.7)].tolist())

    table = read_ut_zappos50k(dataset)
    expected = ["train" if i in train_rows else "val" for i in range(len(ROWS))]
    assert table["split"].tolist() == expected
    assert (table["split"] == "train").sum() == 7

    other = read_ut_zappos50k(dataset, seed=3, train_fraction=0.5)
    assert (other["split"] == "train").sum() == 5
    with pytest.raises(ValueError, match="train_fraction"):
        read_ut_zappos50k(dataset, train_fraction=1.0)


def test_attribute_cluster_counts(dataset: Path) -> None:
    table = read_ut_zappos50k(dataset)
    attrs = table[[c for c in table.columns if c.startswith("attr_")]].to_numpy()
    # Joint values of the first k attribute columns, counted by hand from ROWS.
    assert len(np.unique(attrs[:, :2], axis=0)) == 4
    assert len(np.unique(attrs[:, :3], axis=0)) == 7
    assert len(np.unique(table["category"])) == 2


def test_plain_image_folder_is_used_when_no_square_one(
    tmp_path: Path, write_images: WriteImages
) -> None:
    write_dataset(tmp_path, write_images, images_dir="ut-zap50k-images")
    table = read_ut_zappos50k(tmp_path)
    assert table["path"].str.startswith("ut-zap50k-images/").all()


def test_missing_metadata_names_file_and_layout(dataset: Path) -> None:
    (dataset / "ut-zap50k-data" / "meta-data-bin.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"meta-data-bin\.csv.*Expected layout"):
        read_ut_zappos50k(dataset)


def test_missing_image_folder(tmp_path: Path) -> None:
    (tmp_path / "ut-zap50k-data").mkdir()
    (tmp_path / "ut-zap50k-data" / "meta-data-bin.csv").write_text("CID,A\n1-1,0\n")
    with pytest.raises(FileNotFoundError, match="ut-zap50k-images-square"):
        read_ut_zappos50k(tmp_path)


def test_image_without_metadata_row_is_an_error(dataset: Path, write_images: WriteImages) -> None:
    write_images(dataset / "ut-zap50k-images-square", ["Shoes/Heels/X/42.1.jpg"])
    with pytest.raises(ValueError, match=r"1 image\(s\) have no CID"):
        read_ut_zappos50k(dataset)


def test_metadata_row_without_image_is_an_error(dataset: Path) -> None:
    (dataset / "ut-zap50k-images-square" / image_id("555-1", ROWS[7][1])).unlink()
    with pytest.raises(ValueError, match=r"1 CID\(s\) .* have no image"):
        read_ut_zappos50k(dataset)


def test_non_binary_attribute_names_column_and_cid(dataset: Path) -> None:
    path = dataset / "ut-zap50k-data" / "meta-data-bin.csv"
    meta = pd.read_csv(path, dtype={"CID": str})
    meta.loc[meta["CID"] == "9001-3", "Material.Leather"] = 2
    meta.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"'Material\.Leather' has value 2\.0 in row '9001-3'"):
        read_ut_zappos50k(dataset)


def test_malformed_cid(dataset: Path) -> None:
    path = dataset / "ut-zap50k-data" / "meta-data-bin.csv"
    path.write_text(path.read_text().replace("9001-3", "9001_3"))
    with pytest.raises(ValueError, match="9001_3"):
        read_ut_zappos50k(dataset)


def test_category_labels_rejects_unknown_order() -> None:
    with pytest.raises(ValueError, match="label_order"):
        category_labels(["a/b"], "random")  # type: ignore[arg-type]


def test_permutation_matches_official_file(official_metadata: Path) -> None:
    official = np.load(official_metadata / "UT-zappos50K" / "rank_H" / "random_indices_seed_0.npy")
    assert np.array_equal(official_split_permutation(50025), official)


def test_labels_and_split_match_official_metadata(official_metadata: Path) -> None:
    folder = official_metadata / "UT-zappos50K" / "rank_H"
    parts = []
    for name, split in (("meta_data_train.csv", "train"), ("meta_data_val.csv", "val")):
        frame = pd.read_csv(folder / name, index_col=0, usecols=[0, 1, 2])
        frame = frame.drop(index=-1)
        frame["split"] = split
        parts.append(frame)
    official = pd.concat(parts).sort_index()
    assert official.index.tolist() == list(range(50025))

    # The official row index is the numeric CID order assumed by the reader.
    stems = official["path"].str.rsplit("/", n=1).str[1].str.removesuffix(".jpg")
    keys = [tuple(int(x) for x in stem.split(".")) for stem in stems]
    assert keys == sorted(keys)

    pairs = official["path"].str.split("/").str[:2].str.join("/").tolist()
    labels, names = category_labels(pairs, "official")
    assert len(names) == 21
    assert np.array_equal(labels, official["class"].to_numpy())
    assert official_splits(50025).tolist() == official["split"].tolist()
