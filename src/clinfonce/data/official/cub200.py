"""CUB-200-2011 (Wah et al., 2011) from its official ``CUB_200_2011.tgz``.

Expected layout, ``root`` being the extracted ``CUB_200_2011`` folder::

    root/
      images.txt                 <image_id> <class folder>/<file>.jpg
      image_class_labels.txt     <image_id> <class_id>          (class ids 1..200)
      train_test_split.txt       <image_id> <is_training_image> (1 train, 0 test)
      classes.txt                <class_id> <class name>        (e.g. 001.Black_footed_Albatross)
      images/<class folder>/<file>.jpg
      attributes/image_attribute_labels.txt
                                 <image_id> <attribute_id> <is_present> <certainty_id> <time>
    attributes.txt               <attribute_id> <name>; the tarball puts it next to root,
                                 copies in root/attributes/ or root/ are found too

Class ids 1..200 become labels 0..199 (the official Cl-InfoNCE code fed 1..200 to a 200-way
classifier). A few lines of ``image_attribute_labels.txt`` in the real file carry extra
fields after the certainty; only the first four fields are read.

Certainty ids: 1 not visible, 2 guessing, 3 probably, 4 definitely. By default
``is_present`` is taken as given (as the official code did); ``min_certainty=c`` counts an
attribute as present only when ``is_present == 1`` and ``certainty_id >= c``.
"""

from __future__ import annotations

from pathlib import Path

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

DATASET = "CUB-200-2011"
LAYOUT = (
    "<root>/{images.txt, image_class_labels.txt, train_test_split.txt, classes.txt}, "
    "<root>/images/<class>/<file>.jpg, <root>/attributes/image_attribute_labels.txt and "
    "attributes.txt next to <root> or in <root>/attributes/ (root = the extracted "
    "CUB_200_2011 folder of the official CUB_200_2011.tgz)"
)
ATTRIBUTE_NAME_FILES = ("attributes/attributes.txt", "attributes.txt", "../attributes.txt")
CERTAINTIES = {1: "not visible", 2: "guessing", 3: "probably", 4: "definitely"}
_MAX_FIELDS = 10  # the real file has at most 7 fields per line; more means a different file


def _read_id_file(path: Path) -> dict[int, str]:
    """Parse ``<int id> <value>`` lines (value may contain spaces), ids unique."""
    out: dict[int, str] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.split(maxsplit=1)
            if len(fields) != 2 or not fields[0].isdigit():
                raise ValueError(f"{path}:{number}: expected '<id> <value>', got {line.strip()!r}")
            key = int(fields[0])
            if key in out:
                raise ValueError(f"{path}:{number}: id {key} occurs twice")
            out[key] = fields[1].strip()
    return out


def _ids_one_to_n(ids: dict[int, str], path: Path) -> list[str]:
    """Values of a file whose ids must be exactly 1..n, in id order."""
    n = len(ids)
    if sorted(ids) != list(range(1, n + 1)):
        raise ValueError(f"{path}: ids must be exactly 1..{n}")
    return [ids[k] for k in range(1, n + 1)]


def _int_column(values: dict[int, str], image_ids: list[int], path: Path) -> np.ndarray:
    """Per-image integer values from a file keyed by image id, covering exactly the images."""
    if set(values) != set(image_ids):
        unknown = sorted(set(values) ^ set(image_ids))[:5]
        raise ValueError(f"{path}: image ids differ from images.txt, e.g. {unknown}")
    try:
        return np.array([int(values[i]) for i in image_ids], dtype=np.int64)
    except ValueError as error:
        raise ValueError(f"{path}: non-integer value ({error})") from None


def read_cub_attribute_labels(
    path: PathLike,
    image_ids: list[int],
    num_attributes: int,
    *,
    min_certainty: int | None = None,
) -> np.ndarray:
    """Dense [images, attributes] 0/1 matrix from ``image_attribute_labels.txt``.

    Rows follow ``image_ids``; every (image, attribute) pair must appear exactly once.
    Extra fields after the fourth are ignored (a few real lines have them).

    Examples:
        >>> import tempfile, pathlib
        >>> f = pathlib.Path(tempfile.mkdtemp()) / "labels.txt"
        >>> _ = f.write_text("1 1 1 4 2.5\\n1 2 1 2 0 0 3.1\\n2 1 0 1 1.0\\n2 2 1 3 0.4\\n")
        >>> read_cub_attribute_labels(f, [1, 2], 2).tolist()
        [[1, 1], [0, 1]]
        >>> read_cub_attribute_labels(f, [1, 2], 2, min_certainty=3).tolist()
        [[1, 0], [0, 1]]
    """
    if min_certainty is not None and min_certainty not in CERTAINTIES:
        raise ValueError(
            f"min_certainty must be one of {sorted(CERTAINTIES)} ({CERTAINTIES}) or None, "
            f"got {min_certainty!r}"
        )
    try:
        raw = pd.read_csv(
            path,
            sep=r"\s+",
            header=None,
            names=list(range(_MAX_FIELDS)),
            dtype={k: "float64" for k in range(4)},
        )
    except (pd.errors.ParserError, ValueError) as error:
        raise ValueError(
            f"{path}: cannot parse as '<image_id> <attribute_id> <is_present> <certainty_id> "
            f"<time>' lines ({error})"
        ) from None
    fields = raw.iloc[:, :4].to_numpy()
    bad = np.isnan(fields).any(axis=1) | (fields != np.round(fields)).any(axis=1)
    if bad.any():
        record = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{path}: record {record + 1} ({raw.iloc[record].dropna().tolist()}) does not start "
            "with four integers <image_id> <attribute_id> <is_present> <certainty_id>"
        )
    image, attribute, present, certainty = fields.astype(np.int64).T
    row_of = pd.Series(np.arange(len(image_ids)), index=image_ids)
    rows = row_of.reindex(image).to_numpy()
    checks = [
        (np.isnan(rows), "unknown image_id (not in images.txt)"),
        (
            (attribute < 1) | (attribute > num_attributes),
            f"attribute_id outside 1..{num_attributes}",
        ),
        (~np.isin(present, (0, 1)), "is_present not 0/1"),
        (~np.isin(certainty, list(CERTAINTIES)), "certainty_id outside 1..4"),
    ]
    for mask, what in checks:
        if mask.any():
            record = int(np.flatnonzero(mask)[0])
            raise ValueError(f"{path}: record {record + 1}: {what}")
    flat = rows.astype(np.int64) * num_attributes + (attribute - 1)
    counts = np.bincount(flat, minlength=len(image_ids) * num_attributes)
    if (counts != 1).any():
        cell = int(np.flatnonzero(counts != 1)[0])
        raise ValueError(
            f"{path}: image {image_ids[cell // num_attributes]}, attribute "
            f"{cell % num_attributes + 1} appears {counts[cell]} times; expected exactly once"
        )
    if min_certainty is not None:
        present = present * (certainty >= min_certainty)
    matrix = np.zeros(len(image_ids) * num_attributes, dtype=np.int8)
    matrix[flat] = present
    return matrix.reshape(len(image_ids), num_attributes)


def read_cub200(
    root: PathLike, *, min_certainty: int | None = None, check_files: bool = True
) -> pd.DataFrame:
    """Metadata table of CUB-200-2011 with its official train/test split.

    Args:
        root: the extracted ``CUB_200_2011`` folder (layout in the module docstring).
        min_certainty: None (default) keeps ``is_present`` as annotated; 1..4 counts an
            attribute as present only if annotated present with certainty id at least this
            (1 not visible, 2 guessing, 3 probably, 4 definitely).
        check_files: fail if an image listed in ``images.txt`` is absent.

    Returns:
        One row per image in ``images.txt`` order: ``id`` (the ``images.txt`` path, as in the
        official Cl-InfoNCE files), ``path`` (``images/<id>``), ``label`` (class id - 1),
        ``label_name`` (``classes.txt`` name), ``split`` (train/test), ``image_id`` (the
        official 1-based id) and 312 int8 ``attr_<name>`` columns (``::`` and punctuation
        become ``_``, e.g. ``attr_has_bill_shape_curved_up_or_down``).

    Raises:
        FileNotFoundError: an annotation file or (with ``check_files``) an image is missing.
        ValueError: inconsistent or malformed annotation files.

    Examples:
        >>> table = read_cub200("data/CUB_200_2011")  # doctest: +SKIP
        >>> table["split"].value_counts().to_dict()  # doctest: +SKIP
        {'train': 5994, 'test': 5794}
    """
    base = as_dir(root, DATASET)

    def find(*candidates: str) -> Path:
        return locate(base, candidates, dataset=DATASET, layout=LAYOUT)

    images_path = find("images.txt")
    images = _read_id_file(images_path)
    image_ids = sorted(images)
    classes_path = find("classes.txt")
    class_names = _ids_one_to_n(_read_id_file(classes_path), classes_path)
    labels_path = find("image_class_labels.txt")
    class_ids = _int_column(_read_id_file(labels_path), image_ids, labels_path)
    if class_ids.min() < 1 or class_ids.max() > len(class_names):
        raise ValueError(f"{labels_path}: class ids must lie in 1..{len(class_names)}")
    split_path = find("train_test_split.txt")
    is_train = _int_column(_read_id_file(split_path), image_ids, split_path)
    if not np.isin(is_train, (0, 1)).all():
        raise ValueError(f"{split_path}: is_training_image must be 0 or 1")
    names_path = find(*ATTRIBUTE_NAME_FILES)
    attribute_names = _ids_one_to_n(_read_id_file(names_path), names_path)
    attributes = read_cub_attribute_labels(
        find("attributes/image_attribute_labels.txt"),
        image_ids,
        len(attribute_names),
        min_certainty=min_certainty,
    )

    ids = [images[i] for i in image_ids]
    paths = [f"images/{i}" for i in ids]
    if check_files:
        check_files_exist(base, paths, dataset=DATASET)
    table = pd.DataFrame(
        {
            "id": ids,
            "path": paths,
            "label": class_ids - 1,
            "label_name": [class_names[c - 1] for c in class_ids],
            "split": np.where(is_train == 1, "train", "test"),
            "image_id": np.asarray(image_ids, dtype=np.int64),
        }
    )
    attrs = attribute_frame(attributes, attribute_names, source=str(names_path))
    return finalize(pd.concat([table, attrs], axis=1), class_names, dataset=DATASET)
