"""Metadata tables in, cluster assignments out.

An assignment is a two-column CSV (``id,cluster``) plus a JSON sidecar next to it
(``clusters.csv`` -> ``clusters.csv.json``) saying how it was made. Both are written through
a temporary file and ``os.replace``, so a reader never sees a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clinfonce.outputs import atomic_write

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


def read_table(path: str | os.PathLike[str], encoding: str = "utf-8") -> pd.DataFrame:
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
        raise ValueError(_decode_error(path, encoding, exc)) from None
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
        raise ValueError(f"{path}: the table has no rows (columns: {_names(table.columns)})")
    return table


def _decode_error(path: Path, encoding: str, exc: UnicodeDecodeError) -> str:
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
        "(e.g. --encoding latin-1 or cp1252) or save the file as UTF-8"
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


def _names(columns: Iterable[Any]) -> str:
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
            f"table; available columns: {_names(table.columns)}{hint}"
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
        f"column option (available columns: {_names(table.columns)})"
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
        raise ValueError(f"id column {column!r} has missing values (rows {_names(rows)})")
    return _unique_strings(values.astype(str).to_numpy(), f"id column {column!r}")


def _unique_strings(ids: np.ndarray, where: str) -> np.ndarray:
    repeated = pd.Series(ids)[pd.Series(ids).duplicated()].unique()
    if len(repeated):
        raise ValueError(
            f"{where}: {len(repeated)} id(s) appear more than once, e.g. "
            f"{_names(repeated[:_EXAMPLES])}; every sample needs its own id (use another "
            f"id column or de-duplicate the table)"
        )
    return ids


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def write_assignment(
    path: str | os.PathLike[str],
    ids: Sequence[Any] | np.ndarray | pd.Series,
    clusters: Sequence[int] | np.ndarray,
    sidecar: dict[str, Any],
) -> None:
    """Write ``id,cluster`` rows to ``path`` and ``sidecar`` to ``<path>.json``, atomically.

    Args:
        path: the CSV to write (parent folders are created).
        ids: one sample key per row (written as strings; must be unique).
        clusters: one non-negative integer cluster id per row.
        sidecar: how the clusters were made (builder, parameters, input hash, metrics...);
            numpy values are converted, non-finite floats become ``null``. ``num_samples``
            and ``num_clusters`` are added.

    Raises:
        ValueError: lengths differ, repeated ids, or cluster ids that are not non-negative
            integers.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "clusters.csv"
        >>> write_assignment(p, ["a", "b"], [1, 0], {"builder": "label"})
        >>> print(p.read_text(), end="")
        id,cluster
        a,1
        b,0
    """
    keys = _unique_strings(np.asarray([str(i) for i in ids], dtype=object), f"{path}: ids")
    values = np.asarray(clusters)
    if len(keys) != len(values):
        raise ValueError(f"{path}: {len(keys)} ids but {len(values)} cluster ids")
    if values.dtype.kind not in "iu" or (len(values) and values.min() < 0):
        raise ValueError(
            f"{path}: cluster ids must be non-negative integers (got dtype {values.dtype})"
        )
    frame = pd.DataFrame({"id": keys, "cluster": values.astype(np.int64)})
    meta = {
        **_jsonable(sidecar),
        "num_samples": len(values),
        "num_clusters": len(np.unique(values)),
    }
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    atomic_write(f"{os.fspath(path)}.json", lambda tmp: _write_text(tmp, text))


def is_assignment_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an assignment written by :func:`write_assignment`: an ``id,cluster``
    CSV with its JSON sidecar (such a file may be replaced by a new build)."""
    path = Path(path)
    sidecar = Path(f"{os.fspath(path)}.json")
    if not (path.is_file() and sidecar.is_file()):
        return False
    with open(path, encoding="utf-8", errors="replace") as file:
        return file.readline().strip() == "id,cluster"


def read_assignment(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an assignment CSV written by :func:`write_assignment`.

    Returns:
        A frame with columns ``id`` (str) and ``cluster`` (int64).

    Raises:
        FileNotFoundError: no such file.
        ValueError: wrong header, repeated or missing ids, or bad cluster ids.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.csv"
        >>> write_assignment(p, ["x", "y"], [0, 0], {})
        >>> read_assignment(p).dtypes.astype(str).tolist()
        ['str', 'int64']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such assignment file")
    frame = pd.read_csv(path, dtype={"id": str}, keep_default_na=False)
    if list(frame.columns) != ["id", "cluster"]:
        raise ValueError(
            f"{path}: an assignment has the header 'id,cluster', found "
            f"{','.join(map(str, frame.columns))}"
        )
    _unique_strings(frame["id"].to_numpy(), str(path))
    cluster = pd.to_numeric(frame["cluster"], errors="coerce")
    bad = cluster.isna() | (cluster < 0) | (cluster != cluster.round())
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())[:_EXAMPLES]
        raise ValueError(
            f"{path}: cluster ids must be non-negative integers; bad rows {_names(rows)}"
        )
    frame["cluster"] = cluster.astype(np.int64)
    return frame
