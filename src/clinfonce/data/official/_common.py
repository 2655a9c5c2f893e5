"""Shared pieces of the official-layout readers: file lookup, attribute columns, table checks.

Every reader returns the project's metadata table (see ``clinfonce.data.official``): the
core columns ``id, path, label, label_name, split`` first, then auxiliary columns. Keeping
the final checks in one place means every dataset obeys the same contract.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

CORE_COLUMNS = ("id", "path", "label", "label_name", "split")
SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})

PathLike = str | os.PathLike[str]


def as_dir(root: PathLike, dataset: str) -> Path:
    """Return ``root`` as a Path, failing clearly when it is not an existing directory."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{dataset}: dataset root {str(path)!r} is not a directory")
    return path


def locate(root: Path, candidates: Sequence[str], *, dataset: str, layout: str) -> Path:
    """Return the first existing ``root / candidate``.

    Raises:
        FileNotFoundError: none exists; the message lists every place looked at and the
            expected layout, so the user can see what to download or move.
    """
    for candidate in candidates:
        path = root / candidate
        if path.exists():
            return path
    looked = ", ".join(str(root / c) for c in candidates)
    raise FileNotFoundError(
        f"{dataset}: missing {Path(candidates[0]).name!r}; looked for {looked}. "
        f"Expected layout: {layout}"
    )


def attribute_columns(names: Sequence[str], *, source: str) -> list[str]:
    """Map raw attribute names to ``attr_<name>`` column names.

    Runs of characters other than ASCII letters and digits become ``_`` so that names such
    as ``has_size::large_(16_-_32_in)`` or ``HeelHeight.High.heel`` become valid, readable
    identifiers (``attr_has_size_large_16_32_in``). Case is kept.

    Raises:
        ValueError: two names collapse to the same column (would silently merge data).
    """
    columns: list[str] = []
    seen: dict[str, str] = {}
    for name in names:
        stem = re.sub(r"[^0-9A-Za-z]+", "_", str(name)).strip("_")
        if not stem:
            raise ValueError(f"{source}: attribute name {name!r} has no letters or digits")
        column = f"attr_{stem}"
        if column in seen:
            raise ValueError(
                f"{source}: attribute names {seen[column]!r} and {name!r} both map to column "
                f"{column!r}; rename one of them in the file"
            )
        seen[column] = str(name)
        columns.append(column)
    return columns


def attribute_frame(
    values: np.ndarray,
    names: Sequence[str],
    *,
    source: str,
    rows: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Build the int8 0/1 ``attr_*`` columns from a [n, A] matrix of 0/1 values.

    ``rows`` names the rows in error messages (e.g. image ids); default: row numbers.
    """
    if values.ndim != 2 or values.shape[1] != len(names):
        raise ValueError(
            f"{source}: attribute matrix of shape {values.shape} does not match "
            f"{len(names)} attribute names"
        )
    bad = ~np.isin(values, (0, 1))
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        where = f"row {rows[row]!r}" if rows is not None else f"row {row}"
        raise ValueError(
            f"{source}: attribute {names[col]!r} has value {values[row, col].item()!r} in {where}; "
            "expected 0 or 1"
        )
    columns = attribute_columns(names, source=source)
    frame: pd.DataFrame = pd.DataFrame(values.astype(np.int8), columns=columns)
    return frame


def image_files(directory: Path) -> list[Path]:
    """All image files under ``directory`` (recursively), sorted for a stable order."""
    return sorted(
        p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


def check_files_exist(root: Path, paths: Iterable[str], *, dataset: str) -> None:
    """Fail when annotated images are absent, rather than at some later training step."""
    missing = [p for p in paths if not (root / p).is_file()]
    if missing:
        shown = ", ".join(repr(p) for p in missing[:5])
        raise FileNotFoundError(
            f"{dataset}: {len(missing)} annotated image(s) not found under {str(root)!r}, "
            f"e.g. {shown}. Extract the images into the dataset root, or pass "
            "check_files=False to build the table anyway"
        )


def finalize(table: pd.DataFrame, label_names: Sequence[str], *, dataset: str) -> pd.DataFrame:
    """Order columns, fix dtypes and check the metadata-table contract.

    ``label_names[k]`` is the name of label ``k``; every label must lie in
    ``0..len(label_names)-1`` and agree with the row's ``label_name``.
    """
    missing = [c for c in CORE_COLUMNS if c not in table.columns]
    if missing:
        raise AssertionError(f"{dataset} reader forgot columns {missing}")
    order = [*CORE_COLUMNS, *(c for c in table.columns if c not in CORE_COLUMNS)]
    out: pd.DataFrame = table[order].reset_index(drop=True)
    out["id"] = out["id"].astype(str)
    out["path"] = out["path"].astype(str)
    out["label"] = out["label"].astype(np.int64)
    out["label_name"] = out["label_name"].astype(str)
    out["split"] = out["split"].astype(str)
    duplicated = out["id"][out["id"].duplicated()]
    if not duplicated.empty:
        raise ValueError(f"{dataset}: sample id {duplicated.iloc[0]!r} occurs more than once")
    labels = out["label"].to_numpy()
    if len(labels) and (labels.min() < 0 or labels.max() >= len(label_names)):
        raise ValueError(f"{dataset}: labels outside 0..{len(label_names) - 1}")
    expected = np.asarray(label_names, dtype=object)[labels]
    if not np.array_equal(expected, out["label_name"].to_numpy(dtype=object)):
        raise AssertionError(f"{dataset}: label and label_name disagree")
    unknown = set(out["split"]) - set(SPLITS)
    if unknown:
        raise AssertionError(f"{dataset}: unknown split names {sorted(unknown)}")
    return out
