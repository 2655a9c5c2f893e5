"""CUB-200-2011 reader on a tiny tree in the layout of the official CUB_200_2011.tgz."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest

from clinfonce.data.official.cub200 import read_cub200

WriteImages = Callable[[Path, Iterable[str]], None]
CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]
CLASS_IDS = [1, 1, 2, 2, 3, 3, 1]  # 1-based, as in image_class_labels.txt
IS_TRAIN = [1, 0, 1, 0, 1, 1, 0]
ATTRIBUTES = [
    "has_bill_shape::curved_(up_or_down)",
    "has_bill_shape::all-purpose",
    "has_size::large_(16_-_32_in)",
    "has_wing_color::blue",
]
COLUMNS = [
    "attr_has_bill_shape_curved_up_or_down",
    "attr_has_bill_shape_all_purpose",
    "attr_has_size_large_16_32_in",
    "attr_has_wing_color_blue",
]
IMAGES = [
    f"{CLASSES[c - 1]}/{CLASSES[c - 1][4:]}_{k:04d}_{k}.jpg" for k, c in enumerate(CLASS_IDS, 1)
]
# (is_present, certainty_id) per (image_id, attribute_id), drawn once with a fixed seed.
_rng = random.Random(7)
LABELS = {
    (i, a): (_rng.randint(0, 1), _rng.randint(1, 4))
    for i in range(1, len(IMAGES) + 1)
    for a in range(1, len(ATTRIBUTES) + 1)
}


def numbered(values: Iterable[object]) -> str:
    return "".join(f"{k} {v}\n" for k, v in enumerate(values, 1))


def write_dataset(base: Path, write_images: WriteImages, *, names_at: str) -> Path:
    root = base / "CUB_200_2011"
    write_images(root / "images", IMAGES)
    (root / "images.txt").write_text(numbered(IMAGES))
    (root / "classes.txt").write_text(numbered(CLASSES))
    (root / "image_class_labels.txt").write_text(numbered(CLASS_IDS))
    (root / "train_test_split.txt").write_text(numbered(IS_TRAIN))
    (root / "attributes").mkdir()
    (base / names_at).write_text(numbered(ATTRIBUTES))
    lines = []
    for (i, a), (present, certainty) in LABELS.items():
        # Like a few real lines, one line carries extra fields before the time.
        extra = " 0 0" if (i, a) == (3, 2) else ""
        lines.append(f"{i} {a} {present} {certainty}{extra} {i * 0.37 + a:.3f}\n")
    random.Random(1).shuffle(lines)
    (root / "attributes" / "image_attribute_labels.txt").write_text("".join(lines))
    return root


@pytest.fixture
def dataset(tmp_path: Path, write_images: WriteImages) -> Path:
    # The tarball puts attributes.txt next to the CUB_200_2011 folder.
    return write_dataset(tmp_path, write_images, names_at="attributes.txt")


def expected_attributes(min_certainty: int | None) -> list[list[int]]:
    rows = []
    for i in range(1, len(IMAGES) + 1):
        row = []
        for a in range(1, len(ATTRIBUTES) + 1):
            present, certainty = LABELS[(i, a)]
            if min_certainty is not None and certainty < min_certainty:
                present = 0
            row.append(present)
        rows.append(row)
    return rows


def test_core_columns_labels_are_zero_based(dataset: Path) -> None:
    table = read_cub200(dataset)
    assert table.columns[:6].tolist() == ["id", "path", "label", "label_name", "split", "image_id"]
    assert table["id"].tolist() == IMAGES
    assert table["path"].tolist() == [f"images/{i}" for i in IMAGES]
    assert all((dataset / p).is_file() for p in table["path"])
    assert table["label"].tolist() == [c - 1 for c in CLASS_IDS]
    assert table["label_name"].tolist() == [CLASSES[c - 1] for c in CLASS_IDS]
    assert table["image_id"].tolist() == list(range(1, len(IMAGES) + 1))
    assert table["split"].tolist() == ["train" if t else "test" for t in IS_TRAIN]


def test_attributes_as_annotated_by_default(dataset: Path) -> None:
    table = read_cub200(dataset)
    assert [c for c in table.columns if c.startswith("attr_")] == COLUMNS
    assert table[COLUMNS].to_numpy().tolist() == expected_attributes(None)
    assert all(table[c].dtype == np.int8 for c in COLUMNS)


@pytest.mark.parametrize("min_certainty", [1, 2, 3, 4])
def test_min_certainty_zeroes_uncertain_presence(dataset: Path, min_certainty: int) -> None:
    table = read_cub200(dataset, min_certainty=min_certainty)
    assert table[COLUMNS].to_numpy().tolist() == expected_attributes(min_certainty)


def test_min_certainty_must_be_a_certainty_id(dataset: Path) -> None:
    with pytest.raises(ValueError, match="min_certainty"):
        read_cub200(dataset, min_certainty=5)


def test_attribute_cluster_counts(dataset: Path) -> None:
    table = read_cub200(dataset)
    values = table[COLUMNS].to_numpy()
    expected = expected_attributes(None)
    for k in range(1, len(COLUMNS) + 1):
        assert len(np.unique(values[:, :k], axis=0)) == len({tuple(r[:k]) for r in expected})


@pytest.mark.parametrize("place", ["attributes/attributes.txt", "attributes.txt"])
def test_attribute_names_inside_the_dataset_folder(dataset: Path, place: str) -> None:
    (dataset.parent / "attributes.txt").rename(dataset / place)
    assert [c for c in read_cub200(dataset).columns if c.startswith("attr_")] == COLUMNS


@pytest.mark.parametrize(
    "missing",
    ["images.txt", "classes.txt", "attributes/image_attribute_labels.txt", "../attributes.txt"],
)
def test_missing_annotation_file_is_named(dataset: Path, missing: str) -> None:
    (dataset / missing).unlink()
    name = Path(missing).name.replace(".", r"\.")
    with pytest.raises(FileNotFoundError, match=rf"missing '{name}'.*Expected layout"):
        read_cub200(dataset)


def edit_labels(root: Path, edit: Callable[[list[str]], list[str]]) -> None:
    path = root / "attributes" / "image_attribute_labels.txt"
    path.write_text("".join(edit(path.read_text().splitlines(keepends=True))))


def test_missing_attribute_line_is_an_error(dataset: Path) -> None:
    edit_labels(dataset, lambda lines: lines[1:])
    with pytest.raises(ValueError, match="appears 0 times"):
        read_cub200(dataset)


def test_duplicate_attribute_line_is_an_error(dataset: Path) -> None:
    edit_labels(dataset, lambda lines: [*lines, lines[0]])
    with pytest.raises(ValueError, match="appears 2 times"):
        read_cub200(dataset)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1 1 1 5 0.1\n", "certainty_id outside 1..4"),
        ("1 1 2 4 0.1\n", "is_present not 0/1"),
        ("1 9 1 4 0.1\n", "attribute_id outside 1..4"),
        ("99 1 1 4 0.1\n", "unknown image_id"),
        ("1 1 1\n", "does not start with four integers"),
    ],
)
def test_bad_attribute_line(dataset: Path, line: str, message: str) -> None:
    edit_labels(dataset, lambda lines: [*lines, line])
    with pytest.raises(ValueError, match=message):
        read_cub200(dataset)


def test_class_id_outside_classes_txt(dataset: Path) -> None:
    (dataset / "image_class_labels.txt").write_text(numbered([*CLASS_IDS[:-1], 4]))
    with pytest.raises(ValueError, match=r"class ids must lie in 1\.\.3"):
        read_cub200(dataset)


def test_split_file_must_cover_the_same_images(dataset: Path) -> None:
    (dataset / "train_test_split.txt").write_text(numbered(IS_TRAIN[:-1]))
    with pytest.raises(ValueError, match=r"image ids differ from images\.txt"):
        read_cub200(dataset)


def test_missing_image_file(dataset: Path) -> None:
    (dataset / "images" / IMAGES[2]).unlink()
    with pytest.raises(FileNotFoundError, match=r"1 annotated image\(s\) not found"):
        read_cub200(dataset)
    assert len(read_cub200(dataset, check_files=False)) == len(IMAGES)
