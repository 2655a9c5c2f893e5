"""Metadata tables in: reading them (formats, the official layout), checking their columns
and their sample ids.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Columns that identify a sample, in order of preference (the metadata table convention).
ID_COLUMNS: tuple[str, ...] = ("id", "path")
# The official Cl-InfoNCE files keep their original row index; read_table names it so.
SOURCE_INDEX = "source_index"
_OFFICIAL_COUNT_ROW = -1
_EXAMPLES = 5

_COMPRESSIONS = {".gz", ".bz2", ".xz", ".zst", ".zip"}


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    kinds = {
        ".csv": "csv",
        ".tsv": "tsv",
        ".tab": "tsv",
        ".parquet": "parquet",
        ".pq": "parquet",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
    }
    if suffix not in kinds:
        raise ValueError(
            f"{path}: cannot tell the table format from the suffix {suffix or '(none)'!r}; "
            f"use .csv, .tsv, .parquet or .jsonl (JSON Lines: one object per line)"
        )
    return kinds[suffix]


def read_table(
    path: str | os.PathLike[str], encoding: str = "utf-8", encoding_option: str = "--encoding "
) -> pd.DataFrame:
    """Read a metadata table (one row per sample) chosen by suffix.

    In CSV and TSV only an empty cell is missing: strings such as ``NA``, ``null`` or
    ``None`` are values (``NA`` may well mean North America), not pandas' missing markers.
    Text is decoded as ``encoding``; a byte it cannot decode is reported with its line.

    CSV, TSV, Parquet and JSON Lines (``.jsonl``/``.ndjson``), optionally compressed
    (``.csv.gz``). The official Cl-InfoNCE ``meta_data_*.csv`` layout (unnamed index column,
    ``path``, ``class``, ``label_gran_<k>``, and a last row with index -1 holding per-column
    counts) is recognised: the count row is removed (with a warning when the data has more
    distinct values than it states; fewer is normal, e.g. a class absent from val) and the
    index becomes the column ``source_index``.

    An undecodable byte is reported with the setting that names the encoding,
    ``encoding_option`` followed by a codec (``--encoding latin-1`` for a command's option,
    ``data.options.encoding=latin-1`` for a config's).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unknown suffix, unreadable content or a table without rows.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "meta.csv"
        >>> _ = p.write_text(",path,class\\n7,a.jpg,0\\n3,b.jpg,1\\n-1,2,2\\n")
        >>> read_table(p)
           source_index   path  class
        0             7  a.jpg      0
        1             3  b.jpg      1
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such table file")
    kind = _kind(path)
    try:
        if kind in ("csv", "tsv"):
            table = pd.read_csv(
                path,
                sep="," if kind == "csv" else "\t",
                encoding=encoding,
                keep_default_na=False,
                na_values=[""],
            )
        elif kind == "parquet":
            table = pd.read_parquet(path)
        else:
            table = pd.read_json(path, lines=True, encoding=encoding)
    except UnicodeDecodeError as exc:
        raise ValueError(_decode_error(path, encoding, exc, encoding_option)) from None
    except LookupError:
        raise ValueError(
            f"unknown text encoding {encoding!r}; use a Python codec name such as utf-8, "
            "latin-1 or cp1252"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, OSError) as exc:
        raise ValueError(f"{path}: cannot read it as {kind}: {exc}") from exc
    if kind == "csv" and _is_official(table):
        table = _clean_official(table, path)
    if len(table) == 0:
        raise ValueError(f"{path}: the table has no rows (columns: {names_text(table.columns)})")
    return table


def _decode_error(path: Path, encoding: str, exc: UnicodeDecodeError, option: str) -> str:
    """Where an undecodable byte is (line and column) and what to do about it.

    The reader's own error counts from the start of a chunk, so the file is decoded again
    here to find the byte's place in it (not for compressed files: there the offset would
    be one in the decompressed text).
    """
    place, byte = "", exc.object[exc.start : exc.start + 1].hex()
    if not _is_compressed(path):
        data = path.read_bytes()
        try:
            data.decode(encoding)
        except UnicodeDecodeError as whole:
            start = whole.start
            line = data.count(b"\n", 0, start) + 1
            column = start - (data.rfind(b"\n", 0, start) + 1) + 1
            place, byte = f", line {line} column {column}", data[start : start + 1].hex()
    return (
        f"{path}{place}: byte 0x{byte} is not valid {encoding}; pass the file's encoding "
        f"(e.g. {option}latin-1 or cp1252) or save the file as UTF-8"
    )


def _is_compressed(path: Path) -> bool:
    return bool(path.suffixes) and path.suffixes[-1].lower() in _COMPRESSIONS


def _is_official(table: pd.DataFrame) -> bool:
    first = str(table.columns[0]) if len(table.columns) else ""
    return (
        first.startswith("Unnamed: 0")
        and len(table) > 0
        and table.iloc[-1, 0] == _OFFICIAL_COUNT_ROW
        and pd.api.types.is_integer_dtype(table.iloc[:, 0])
    )


def _clean_official(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    counts = table.iloc[-1]
    table = table.iloc[:-1].rename(columns={table.columns[0]: SOURCE_INDEX})
    table = table.reset_index(drop=True).infer_objects()
    for column in table.columns[1:]:
        stated = pd.to_numeric(pd.Series([counts[column]]), errors="coerce").iloc[0]
        if pd.notna(stated) and int(stated) < table[column].nunique():
            warnings.warn(
                f"{path}: the count row says column {column!r} has {int(stated)} distinct "
                f"values, but the data has {table[column].nunique()}; is the file complete?",
                stacklevel=3,
            )
    return table


def names_text(columns: Iterable[Any]) -> str:
    return ", ".join(str(c) for c in columns) or "(none)"


def require_columns(table: pd.DataFrame, columns: Iterable[Any], what: str, hint: str = "") -> None:
    """Raise a ValueError naming each absent column and listing the available ones, then
    ``hint`` (e.g. which setting names the column).

    Examples:
        >>> require_columns(pd.DataFrame({"a": [1]}), ["b"], "label_column")
        Traceback (most recent call last):
        ...
        ValueError: label_column: column 'b' not found in the table; available columns: a
    """
    absent = [c for c in columns if c not in table.columns]
    if absent:
        plural = "s" if len(absent) > 1 else ""
        raise ValueError(
            f"{what}: column{plural} {', '.join(repr(c) for c in absent)} not found in the "
            f"table; available columns: {names_text(table.columns)}{hint}"
        )


def resolve_id_column(table: pd.DataFrame, id_column: str | None = None) -> str:
    """The sample key column: ``id_column`` if given, else ``id``, else ``path``.

    Raises:
        ValueError: the column is absent, or neither default exists.
    """
    if id_column is not None:
        require_columns(table, [id_column], "id column")
        return id_column
    for name in ID_COLUMNS:
        if name in table.columns:
            return name
    raise ValueError(
        f"the table has no 'id' or 'path' column to identify samples; name one with the id "
        f"column option (available columns: {names_text(table.columns)})"
    )


def sample_ids(table: pd.DataFrame, id_column: str | None = None) -> np.ndarray:
    """Sample keys as strings, checked to be present and unique.

    Raises:
        ValueError: missing or repeated ids, naming a few.
    """
    column = resolve_id_column(table, id_column)
    values = table[column]
    if values.isna().any():
        rows = np.flatnonzero(values.isna().to_numpy())[:_EXAMPLES]
        raise ValueError(f"id column {column!r} has missing values (rows {names_text(rows)})")
    return unique_ids(values.astype(str).to_numpy(), f"id column {column!r}")


def unique_ids(ids: np.ndarray, where: str) -> np.ndarray:
    repeated = pd.Series(ids)[pd.Series(ids).duplicated()].unique()
    if len(repeated):
        raise ValueError(
            f"{where}: {len(repeated)} id(s) appear more than once, e.g. "
            f"{names_text(repeated[:_EXAMPLES])}; every sample needs its own id (use another "
            f"id column or de-duplicate the table)"
        )
    return ids
