"""WIDER Attribute reader on tiny official-format JSON annotations and images."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clinfonce.data.official.wider_attribute import read_wider_attribute

WriteImages = Callable[[Path, Iterable[str]], None]
ATTRIBUTE_MAP = {"0": "Male", "1": "longHair", "2": "sunglass"}
SCENE_MAP = {"0": "Parade", "1": "Handshaking", "2": "Riot"}
COLUMNS = ["attr_Male", "attr_longHair", "attr_sunglass"]
TRAINVAL = [
    ("train/0--Parade/0_Parade_a_1.jpg", 0, [[1, -1, 0], [-1, -1, 1]]),
    ("train/1--Handshaking/1_Handshaking_b_2.jpg", 1, [[1, 1, -1], [1, -1, -1], [0, 1, -1]]),
    ("val/2--Riot/2_Riot_c_3.jpg", 2, []),
    ("val/0--Parade/0_Parade_d_4.jpg", 0, [[0, 0, 0]]),
]
TEST = [
    ("test/2--Riot/2_Riot_e_5.jpg", 2, [[-1, 1, 1]]),
    ("test/1--Handshaking/1_Handshaking_f_6.jpg", 1, [[1, 0, 0], [1, 0, -1]]),
]


def annotation(images: list[tuple[str, int, list[list[int]]]]) -> dict[str, Any]:
    return {
        "images": [
            {
                "file_name": name,
                "scene_id": scene,
                "targets": [{"attribute": a, "bbox": [1.0, 2.0, 3.0, 4.0]} for a in persons],
            }
            for name, scene, persons in images
        ],
        "attribute_id_map": ATTRIBUTE_MAP,
        "scene_id_map": SCENE_MAP,
    }


def write_dataset(root: Path, write_images: WriteImages, *, folder: str = "") -> None:
    write_images(root / "Image", [name for name, _, _ in TRAINVAL + TEST])
    (root / folder).mkdir(parents=True, exist_ok=True)
    for file_name, images in (
        ("wider_attribute_trainval.json", TRAINVAL),
        ("wider_attribute_test.json", TEST),
    ):
        (root / folder / file_name).write_text(json.dumps(annotation(images)))


@pytest.fixture
def dataset(tmp_path: Path, write_images: WriteImages) -> Path:
    write_dataset(tmp_path, write_images)
    return tmp_path


def image_level(persons: list[list[int]], rule: str) -> list[int]:
    out = []
    for a in range(len(ATTRIBUTE_MAP)):
        values = [p[a] for p in persons]
        if rule == "any":
            out.append(int(any(v == 1 for v in values)))
        else:
            out.append(int(values.count(1) > values.count(-1)))
    return out


def test_rows_labels_and_splits(dataset: Path) -> None:
    table = read_wider_attribute(dataset)
    rows = TRAINVAL + TEST
    assert table.columns[:5].tolist() == ["id", "path", "label", "label_name", "split"]
    assert table["id"].tolist() == [name for name, _, _ in rows]
    assert table["path"].tolist() == [f"Image/{name}" for name, _, _ in rows]
    assert all((dataset / p).is_file() for p in table["path"])
    assert table["label"].tolist() == [scene for _, scene, _ in rows]
    assert table["label_name"].tolist() == [SCENE_MAP[str(s)] for _, s, _ in rows]
    assert table["split"].tolist() == ["train"] * 4 + ["test"] * 2
    assert table["original_split"].tolist() == ["train", "train", "val", "val", "test", "test"]
    assert table["num_persons"].tolist() == [len(p) for _, _, p in rows]


@pytest.mark.parametrize("rule", ["any", "majority"])
def test_person_attributes_aggregate_to_image_level(dataset: Path, rule: str) -> None:
    table = read_wider_attribute(dataset, rule=rule)  # type: ignore[arg-type]
    assert [c for c in table.columns if c.startswith("attr_")] == COLUMNS
    expected = [image_level(persons, rule) for _, _, persons in TRAINVAL + TEST]
    assert table[COLUMNS].to_numpy().tolist() == expected
    assert all(table[c].dtype == np.int8 for c in COLUMNS)


def test_rules_differ_on_this_fixture(dataset: Path) -> None:
    any_rule = read_wider_attribute(dataset)[COLUMNS].to_numpy()
    majority = read_wider_attribute(dataset, rule="majority")[COLUMNS].to_numpy()
    assert not np.array_equal(any_rule, majority)
    with pytest.raises(ValueError, match="rule must be"):
        read_wider_attribute(dataset, rule="all")  # type: ignore[arg-type]


def test_attribute_cluster_counts_on_train(dataset: Path) -> None:
    table = read_wider_attribute(dataset)
    train = table[table["split"] == "train"][COLUMNS].to_numpy()
    expected = [image_level(p, "any") for _, _, p in TRAINVAL]
    for k in range(1, len(COLUMNS) + 1):
        assert len(np.unique(train[:, :k], axis=0)) == len({tuple(r[:k]) for r in expected})


@pytest.mark.parametrize("folder", ["Annotations", "Anno", "wider_attribute_annotation"])
def test_annotation_subfolders(tmp_path: Path, write_images: WriteImages, folder: str) -> None:
    write_dataset(tmp_path, write_images, folder=folder)
    assert len(read_wider_attribute(tmp_path)) == 6


def test_missing_annotation_file_is_named(dataset: Path) -> None:
    (dataset / "wider_attribute_test.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"wider_attribute_test\.json.*Expected layout"):
        read_wider_attribute(dataset)


def rewrite(root: Path, edit: Callable[[dict[str, Any]], None], name: str = "trainval") -> None:
    path = root / f"wider_attribute_{name}.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["images"][0]["targets"][0].update(attribute=[2, 0, 0]), "must be 1, -1 or 0"),
        (lambda d: d["images"][0]["targets"][1].update(attribute=[1, 0]), "targets.1. has 2"),
        (lambda d: d["images"][1].update(scene_id=7), "scene_id 7 not in scene_id_map"),
        (lambda d: d["images"][1].pop("file_name"), "needs file_name"),
        (lambda d: d.update(scene_id_map={"0": "a", "2": "b"}), r"ids must be exactly 0\.\.1"),
        (lambda d: d.pop("images"), "'images' list"),
    ],
)
def test_malformed_annotations(
    dataset: Path, edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    rewrite(dataset, edit)
    with pytest.raises(ValueError, match=message):
        read_wider_attribute(dataset)


def test_files_must_agree_on_names(dataset: Path) -> None:
    rewrite(dataset, lambda d: d.update(scene_id_map={**SCENE_MAP, "2": "Fight"}), "test")
    with pytest.raises(ValueError, match="differ from those of wider_attribute_trainval"):
        read_wider_attribute(dataset)


def test_invalid_json(dataset: Path) -> None:
    (dataset / "wider_attribute_test.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_wider_attribute(dataset)


def test_missing_image(dataset: Path) -> None:
    (dataset / "Image" / TEST[0][0]).unlink()
    with pytest.raises(FileNotFoundError, match="1 annotated image"):
        read_wider_attribute(dataset)
    assert len(read_wider_attribute(dataset, check_files=False)) == 6
