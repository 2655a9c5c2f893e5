"""WIDER Attribute (Li et al., ECCV 2016) from its official annotation JSON files.

Expected layout under ``root``::

    root/
      Image/<train|val|test>/<scene folder>/<file>.jpg   (wider_attribute_image.tgz)
      wider_attribute_trainval.json                       (wider_attribute_annotation.zip;
      wider_attribute_test.json                            also found in Annotations/, Anno/
                                                           or wider_attribute_annotation/)

Each JSON holds ``images`` (a list of ``{"file_name": "train/0--Parade/x.jpg",
"scene_id": int, "targets": [{"attribute": [14 ints], "bbox": [x, y, w, h]}, ...]}``),
``attribute_id_map`` (``{"0": "Male", ...}``) and ``scene_id_map`` (``{"0": "Parade", ...}``).
Person-level attribute values are 1 (present), -1 (absent) or 0 (unspecified).

Image-level attributes (the official Cl-InfoNCE code clusters whole images, but its
aggregation script is not published) are derived by one of two documented rules:

- ``"any"`` (default): present if at least one person in the image has value 1;
- ``"majority"``: present if more persons have 1 than -1 (unspecified persons abstain;
  ties, and images without specified persons, count as absent).

Splits follow the paper: the trainval file (the dataset's train and val parts) is ``train``
and the test file is ``test``; ``original_split`` keeps the dataset's own train/val/test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from clinfonce.data.official._common import (
    PathLike,
    as_dir,
    attribute_frame,
    check_files_exist,
    finalize,
    locate,
)

DATASET = "WIDER Attribute"
ANNOTATION_DIRS = ("", "Annotations/", "Anno/", "wider_attribute_annotation/")
IMAGE_DIR = "Image"
LAYOUT = (
    "<root>/Image/<train|val|test>/<scene>/<file>.jpg and <root>/"
    "wider_attribute_{trainval,test}.json (or in <root>/Annotations/, <root>/Anno/ or "
    "<root>/wider_attribute_annotation/), from the official wider_attribute_image.tgz and "
    "wider_attribute_annotation.zip"
)
ANNOTATION_FILES = (
    ("wider_attribute_trainval.json", "train"),
    ("wider_attribute_test.json", "test"),
)
AggregationRule = Literal["any", "majority"]


def _id_map(data: dict[str, Any], key: str, path: Path) -> list[str]:
    """Names of a ``{"0": name, ...}`` map whose keys must be exactly 0..n-1."""
    mapping = data.get(key)
    if not isinstance(mapping, dict):
        raise ValueError(f"{path}: missing the {key!r} object")
    try:
        ids = sorted(int(k) for k in mapping)
    except ValueError:
        raise ValueError(f"{path}: {key} keys must be integers, got {sorted(mapping)}") from None
    if ids != list(range(len(ids))):
        raise ValueError(f"{path}: {key} ids must be exactly 0..{len(ids) - 1}")
    return [str(mapping[str(k)]) for k in ids]


def aggregate_person_attributes(persons: np.ndarray, rule: AggregationRule = "any") -> np.ndarray:
    """Image-level 0/1 attributes from a [persons, attributes] array of 1 / -1 / 0 values.

    Examples:
        >>> persons = np.array([[1, -1, 0], [1, -1, 0], [-1, 1, 0]])
        >>> aggregate_person_attributes(persons).tolist()
        [1, 1, 0]
        >>> aggregate_person_attributes(persons, "majority").tolist()
        [1, 0, 0]
    """
    if rule == "any":
        present = (persons == 1).any(axis=0)
    elif rule == "majority":
        present = (persons == 1).sum(axis=0) > (persons == -1).sum(axis=0)
    else:
        raise ValueError(f"rule must be 'any' or 'majority', got {rule!r}")
    return np.asarray(present, dtype=np.int8)


def _read_json(
    path: Path, rule: AggregationRule
) -> tuple[list[dict[str, Any]], np.ndarray, list[str], list[str]]:
    """Rows (file, scene, person count) and image-level attributes of one annotation file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{path}: expected an object with an 'images' list")
    attributes = _id_map(data, "attribute_id_map", path)
    scenes = _id_map(data, "scene_id_map", path)
    rows: list[dict[str, Any]] = []
    values = np.zeros((len(data["images"]), len(attributes)), dtype=np.int8)
    for k, image in enumerate(data["images"]):
        where = f"{path}: images[{k}]"
        try:
            file_name, scene, targets = image["file_name"], image["scene_id"], image["targets"]
            vectors = [list(t["attribute"]) for t in targets]
        except (KeyError, TypeError) as error:
            raise ValueError(
                f"{where}: needs file_name, scene_id and targets[].attribute ({error!r})"
            ) from None
        for j, vector in enumerate(vectors):
            if len(vector) != len(attributes):
                raise ValueError(
                    f"{where} ({file_name}): targets[{j}] has {len(vector)} attribute values, "
                    f"expected {len(attributes)}"
                )
        persons = np.array(vectors, dtype=np.int64).reshape(len(vectors), len(attributes))
        if not np.isin(persons, (-1, 0, 1)).all():
            raise ValueError(f"{where} ({file_name}): attribute values must be 1, -1 or 0")
        if not isinstance(scene, int) or not 0 <= scene < len(scenes):
            raise ValueError(f"{where} ({file_name}): scene_id {scene!r} not in scene_id_map")
        values[k] = aggregate_person_attributes(persons, rule)
        rows.append({"file_name": str(file_name), "scene_id": scene, "num_persons": len(targets)})
    return rows, values, attributes, scenes


def read_wider_attribute(
    root: PathLike, *, rule: AggregationRule = "any", check_files: bool = True
) -> pd.DataFrame:
    """Metadata table of WIDER Attribute: 30 scene labels, 14 image-level binary attributes.

    Args:
        root: dataset folder (layout in the module docstring).
        rule: person-to-image aggregation, ``"any"`` (default) or ``"majority"`` (see the
            module docstring).
        check_files: fail if an annotated image is absent under ``root/Image``.

    Returns:
        One row per annotated image, trainval file first, each in file order: ``id`` (the
        JSON ``file_name``, as in the official Cl-InfoNCE files), ``path``
        (``Image/<file_name>``), ``label`` (``scene_id``), ``label_name`` (scene name),
        ``split`` (train/test), ``original_split`` (train/val/test), ``num_persons`` and
        int8 ``attr_<name>`` columns named after ``attribute_id_map``.

    Raises:
        FileNotFoundError: an annotation file or (with ``check_files``) an image is missing.
        ValueError: malformed JSON, or the two files disagree on attribute/scene names.

    Examples:
        >>> table = read_wider_attribute("data/WiderAttribute")  # doctest: +SKIP
        >>> table["split"].value_counts().to_dict()  # doctest: +SKIP
        {'test': 6918, 'train': 6871}
    """
    base = as_dir(root, DATASET)
    frames: list[pd.DataFrame] = []
    names: tuple[list[str], list[str]] | None = None
    for file_name, split in ANNOTATION_FILES:
        path = locate(
            base, [d + file_name for d in ANNOTATION_DIRS], dataset=DATASET, layout=LAYOUT
        )
        rows, values, attributes, scenes = _read_json(path, rule)
        if names is not None and names != (attributes, scenes):
            raise ValueError(
                f"{path}: attribute_id_map/scene_id_map differ from those of "
                f"{ANNOTATION_FILES[0][0]}; both files must come from the same release"
            )
        names = (attributes, scenes)
        table = pd.DataFrame(rows)
        if table.empty:
            continue
        ids = table["file_name"]
        frame = pd.DataFrame(
            {
                "id": ids,
                "path": IMAGE_DIR + "/" + ids,
                "label": table["scene_id"],
                "label_name": [scenes[s] for s in table["scene_id"]],
                "split": split,
                "original_split": ids.str.split("/").str[0],
                "num_persons": table["num_persons"],
            }
        )
        attrs = attribute_frame(values, attributes, source=str(path), rows=list(ids))
        frames.append(pd.concat([frame, attrs], axis=1))
    assert names is not None
    if not frames:
        raise ValueError(f"{DATASET}: the annotation files under {str(base)!r} list no images")
    result = pd.concat(frames, ignore_index=True)
    if check_files:
        check_files_exist(base, result["path"], dataset=DATASET)
    return finalize(result, names[1], dataset=DATASET)
