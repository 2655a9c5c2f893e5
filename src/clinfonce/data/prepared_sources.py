"""Sources whose files are prepared: the request a loader makes (``data.options.prepare``)
and the source that training reads once the array is made.

The array itself (one entry folder per table, size and channels, reused while the files
are unchanged) is :mod:`clinfonce.data.prepared`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clinfonce.data.images import report_bad_rows
from clinfonce.data.prepared import DONE, PreparedArray, PreparedCacheError, prepare_array
from clinfonce.data.sources import ImageSource

#: Side used for files when ``data.image_size`` is not set (as for streamed files).
DEFAULT_FILE_SIZE = 224


@dataclass(frozen=True)
class PrepareRequest:
    """How a table source wants its files prepared (set by ``data.options.prepare``).

    Attributes:
        folder: parent folder of the prepared entries.
        table: the metadata table (named in messages, its stem names the entry).
        missing: ``error`` or ``skip`` for unreadable images (as ``data.options.missing``).
        required: ``True`` makes a failure to write the array an error; ``False`` (``auto``)
            warns and goes on reading the files.
    """

    folder: Path
    table: str
    missing: str = "error"
    required: bool = True


def prepare_request(
    prepare: bool | str, prepare_dir: str | None, table: str | Path, missing: str = "error"
) -> PrepareRequest | None:
    """The request of a loader's ``prepare`` and ``prepare_dir`` options (``None``: read the
    files while training); ``table`` names the entry and, without ``prepare_dir``, places
    it in ``.clinfonce-prepared`` beside itself.

    Examples:
        >>> prepare_request("auto", None, "data/meta.csv").folder.as_posix()
        'data/.clinfonce-prepared'
    """
    if prepare not in (True, False, "auto"):
        raise ValueError(f"data.options.prepare must be true, false or auto, got {prepare!r}")
    if not prepare:
        return None
    folder = Path(prepare_dir) if prepare_dir else Path(table).parent / ".clinfonce-prepared"
    return PrepareRequest(folder, str(table), missing, required=prepare is True)


def entry_folder(folder: Path, table: str | Path, size: int, channels: int) -> Path:
    """The entry of one table at one size: ``folder/<table stem>-<size>px-<rgb|gray>``.

    Examples:
        >>> entry_folder(Path("cache"), "data/meta.csv", 64, 3).as_posix()
        'cache/meta-64px-rgb'
    """
    return folder / f"{Path(table).stem}-{size}px-{'rgb' if channels == 3 else 'gray'}"


def prepared_source(source: ImageSource, size: int) -> ImageSource:
    """The source with its files replaced by their prepared array at ``size`` px.

    Sources without a :class:`PrepareRequest` come back unchanged. When the array cannot be
    written, a required prepare raises :class:`PreparedCacheError`; ``auto`` warns and
    returns the source unchanged (files read while training). Unreadable images follow
    ``missing``: an error naming them, or rows dropped with a warning (the kept rows are
    then copied into memory).
    """
    request = source.prepare
    if request is None or source.paths is None:
        return source
    try:
        prepared = prepare_source_array(source, size)
    except PreparedCacheError as exc:
        if request.required:
            raise
        warnings.warn(f"{exc}; training goes on reading the image files", stacklevel=2)
        return source
    ok = prepared.status == DONE
    images, table, rows = prepared.images, source.table, source.table_rows
    if not ok.all():
        images, table = np.ascontiguousarray(images[ok]), table[ok]
        rows = rows[ok] if rows is not None else None
    return ImageSource(
        source.name,
        table,
        images=images,
        channels=source.channels,
        description=f"{source.description}, prepared at {size} px in {prepared.folder}",
        inputs=source.inputs,
        table_rows=rows,
    )


def prepare_source_array(
    source: ImageSource, size: int, *, workers: int | None = None
) -> PreparedArray:
    """Prepare the files of a source that carries a :class:`PrepareRequest` (its entry in
    the request's folder), then stop at or warn about unreadable images as it asks."""
    request, paths = source.prepare, source.paths
    if request is None or paths is None:
        raise ValueError(f"source {source.name!r} has no image files to prepare")
    folder = entry_folder(request.folder, request.table, size, source.channels)
    prepared = prepare_array(
        paths, folder, size, source.channels, table=source.table, workers=workers
    )
    report_bad_rows(prepared.status != DONE, paths, request.table, request.missing, "unreadable")
    return prepared
