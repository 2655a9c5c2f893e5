"""ImageNet-100 reader: ImageFolder tree, class list and WordNet is-a levels."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest

from clinfonce.data.official.imagenet100 import (
    OFFICIAL_IMAGENET100_WNIDS,
    read_imagenet100,
    read_wnid_list,
)

WriteImages = Callable[[Path, Iterable[str]], None]
R, A, B, C, D, E = (f"n0000000{k}" for k in range(1, 7))
X1, X2, X3, X4, X5, X6 = (f"n000000{k}" for k in range(10, 16))
# Levels with the root at 1:      R(1) > A(2) > C(3) > X1(4), X2(4)
#                                 R(1) > B(2) > X3(3);  R(1) > A(2) > X4(3)
# X5 has parents C then B (paths disagree at level 2); X6 has parents D and E, both under A
# (paths agree at levels 1-2, disagree at 3).
IS_A = [
    (R, A),
    (R, B),
    (A, C),
    (C, X1),
    (C, X2),
    (B, X3),
    (A, X4),
    (C, X5),
    (B, X5),
    (A, D),
    (A, E),
    (D, X6),
    (E, X6),
    ("n00000007", "n00000008"),
]
CLASSES = [X1, X2, X3, X4]
LEVELS = {
    X1: [R, A, C, X1],
    X2: [R, A, C, X2],
    X3: [R, B, X3, X3],
    X4: [R, A, X4, X4],
}
WNID_LEVEL = {X1: 4, X2: 4, X3: 3, X4: 3}
ALL = [X1, X2, X3, X4, X5, X6]


def write_dataset(root: Path, write_images: WriteImages) -> None:
    files = []
    for wnid in [*ALL, "n00000099"]:  # n00000099: a class folder outside every subset
        files += [f"train/{wnid}/{wnid}_{k}.JPEG" for k in (1, 2)]
        files.append(f"val/{wnid}/ILSVRC2012_val_{int(wnid[1:]):08d}.JPEG")
    write_images(root, files)
    (root / "wordnet.is_a.txt").write_text("".join(f"{p} {c}\n" for p, c in IS_A))


@pytest.fixture
def dataset(tmp_path: Path, write_images: WriteImages) -> Path:
    write_dataset(tmp_path, write_images)
    return tmp_path


def test_rows_labels_and_splits(dataset: Path) -> None:
    table = read_imagenet100(dataset, classes=[X4, X2, X3, X1], levels=[])
    assert table.columns.tolist() == ["id", "path", "label", "label_name", "split"]
    assert sorted(set(table["label_name"])) == CLASSES
    for row in table.itertuples():
        assert row.label == CLASSES.index(row.label_name)
        assert row.id == row.path
        split, wnid, _ = row.id.split("/")
        assert (split, wnid) == (row.split, row.label_name)
        assert (dataset / row.path).is_file()
    assert table["split"].value_counts().to_dict() == {"train": 8, "val": 4}


def test_class_list_file(dataset: Path) -> None:
    classes = dataset / "classes.txt"
    classes.write_text(f"# subset\n{X3} tench, Tinca tinca\n\n{X1}\n")
    table = read_imagenet100(dataset, classes=classes, levels=[])
    assert sorted(set(table["label_name"])) == [X1, X3]
    assert read_wnid_list(classes) == [X3, X1]


def test_levels_from_the_root(dataset: Path) -> None:
    table = read_imagenet100(dataset, classes=CLASSES, levels=[1, 2, 3, 4])
    for row in table.itertuples():
        expected = LEVELS[row.label_name]
        assert [row.level_1, row.level_2, row.level_3, row.level_4] == expected
        assert row.wordnet_level == WNID_LEVEL[row.label_name]

    shifted = read_imagenet100(dataset, classes=CLASSES, levels=[1, 2], root_level=0)
    assert shifted["level_1"].tolist() == table["level_2"].tolist()
    assert shifted["level_2"].tolist() == table["level_3"].tolist()


def test_level_cluster_counts_on_train(dataset: Path) -> None:
    table = read_imagenet100(dataset, classes=CLASSES, levels=[1, 2, 3, 4])
    train = table[table["split"] == "train"]
    counts = [len(np.unique(train[f"level_{k}"])) for k in (1, 2, 3, 4)]
    assert counts == [1, 2, 3, 4]  # {R}, {A, B}, {C, X3, X4}, every class


def test_ambiguous_parents_raise_unless_first(dataset: Path) -> None:
    with pytest.raises(ValueError, match=rf"class {X5} has several paths.*'first'"):
        read_imagenet100(dataset, classes=[X5], levels=[1, 2])
    table = read_imagenet100(dataset, classes=[X5], levels=[2, 3], multiple_parents="first")
    assert set(table["level_2"]) == {A} and set(table["level_3"]) == {C}
    # Paths that agree at every requested level are not ambiguous.
    assert set(read_imagenet100(dataset, classes=[X5], levels=[1])["level_1"]) == {R}
    assert set(read_imagenet100(dataset, classes=[X6], levels=[1, 2])["level_2"]) == {A}
    with pytest.raises(ValueError, match=X6):
        read_imagenet100(dataset, classes=[X6], levels=[3])


def test_levels_above_the_root_are_rejected(dataset: Path) -> None:
    with pytest.raises(ValueError, match="above the root level"):
        read_imagenet100(dataset, classes=CLASSES, levels=[0])


def test_hierarchy_elsewhere_and_not_needed_without_levels(dataset: Path) -> None:
    moved = dataset / "meta" / "is_a.txt"
    moved.parent.mkdir()
    (dataset / "wordnet.is_a.txt").rename(moved)
    with pytest.raises(FileNotFoundError, match=r"wordnet\.is_a\.txt.*Expected layout"):
        read_imagenet100(dataset, classes=CLASSES, levels=[2])
    table = read_imagenet100(dataset, classes=CLASSES, levels=[2], hierarchy=moved)
    assert set(table["level_2"]) == {A, B}
    assert "level_2" not in read_imagenet100(dataset, classes=CLASSES, levels=[]).columns


def test_missing_folders(dataset: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"class folder .*{OFFICIAL_IMAGENET100_WNIDS[0]}"):
        read_imagenet100(dataset, levels=[])  # the official subset is not in this tree
    for image in (dataset / "val" / X1).iterdir():
        image.unlink()
    with pytest.raises(ValueError, match="has no images"):
        read_imagenet100(dataset, classes=CLASSES, levels=[])
    (dataset / "val" / X1).rmdir()
    with pytest.raises(FileNotFoundError, match=f"class folder .*val/{X1}"):
        read_imagenet100(dataset, classes=CLASSES, levels=[])


def test_missing_split_folder(tmp_path: Path, write_images: WriteImages) -> None:
    write_images(tmp_path, [f"train/{X1}/a.JPEG"])
    with pytest.raises(FileNotFoundError, match="missing 'val'"):
        read_imagenet100(tmp_path, classes=[X1], levels=[])


@pytest.mark.parametrize(
    ("is_a", "classes", "message"),
    [
        (f"{R} {A}\n{A} {R}\n{A} {X1}\n", [X1], "cycle"),
        (f"{R} {A} extra\n", [A], r"wordnet\.is_a\.txt:1: expected"),
        (f"{R} {R}\n", [R], "its own parent"),
        (f"{R} {A}\n", [X1], f"class {X1} does not occur"),
    ],
)
def test_bad_hierarchy(dataset: Path, is_a: str, classes: list[str], message: str) -> None:
    (dataset / "wordnet.is_a.txt").write_text(is_a)
    with pytest.raises(ValueError, match=message):
        read_imagenet100(dataset, classes=classes, levels=[1])


def test_bad_class_lists(dataset: Path) -> None:
    bad = dataset / "bad.txt"
    bad.write_text("n0144 tench\n")
    with pytest.raises(ValueError, match=r"bad\.txt:1: 'n0144' is not a wnid"):
        read_imagenet100(dataset, classes=bad, levels=[])
    with pytest.raises(ValueError, match="more than once"):
        read_imagenet100(dataset, classes=[X1, X1], levels=[])
    with pytest.raises(ValueError, match="empty"):
        read_imagenet100(dataset, classes=[], levels=[])


def test_official_class_list_matches_reference(official_metadata: Path) -> None:
    listed = read_wnid_list(official_metadata / "imagenet100" / "selected_100_classes.txt")
    assert listed == list(OFFICIAL_IMAGENET100_WNIDS)
    assert len(set(listed)) == 100
