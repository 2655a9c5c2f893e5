"""Prepared arrays: image files decoded once into a memory-mapped ``uint8`` array on disk.

Decoding (and resizing) JPEGs or PNGs every epoch costs far more than the small models'
steps, so a table of image files can be *prepared*: every image is decoded once, in
parallel over the usable cores, brought to the training resolution by the rule of
:func:`clinfonce.data.images.decode_resized` (shorter side to the size, centre crop) and
written into ``images.npy``. Training then reads pixels from that memory-mapped array and
augments whole batches on the device, exactly like data held in memory.

One prepared entry is a folder per (table, size, channels)::

    images.npy     uint8 [N, C, S, S], row i = table row i
    index.parquet  per row: absolute path, file size, modification time (ns), status
    table.csv      a copy of the table, written only once every row is decoded

A row is reused only while its file keeps the same path, size and modification time;
anything else is decoded again. The index is written atomically and a row is marked done
only after its pixels are flushed, so an interrupted prepare resumes where it stopped and
a partly written array is never taken for a complete one.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from clinfonce.data.images import decode_resized
from clinfonce.outputs import atomic_write, process_lock

PENDING, DONE, UNREADABLE = 0, 1, 2
ARRAY_FILE, INDEX_FILE, TABLE_FILE = "images.npy", "index.parquet", "table.csv"
LOCK_FILE = ".lock"
_CHUNK = 64  # images per parallel task: small enough for a smooth progress bar
_SAVE_EVERY_S = 2.0  # index writes while decoding (each one makes finished rows durable)
_THREADS = threading.Lock()  # prepares of this process, one at a time


class PreparedCacheError(ValueError):
    """The prepared array cannot be written (unwritable folder, full disk)."""


@dataclass
class PreparedArray:
    """The outcome of :func:`prepare_array`.

    Attributes:
        images: the memory-mapped ``uint8 [N, C, S, S]`` array (copy-on-write: writes made
            through it never reach the file).
        status: per row, :data:`DONE` or :data:`UNREADABLE`.
        decoded: rows decoded by this call.
        reused: rows taken from an earlier prepare.
        folder: the entry folder.
    """

    images: np.ndarray
    status: np.ndarray
    decoded: int
    reused: int
    folder: Path


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def prepare_array(
    paths: Sequence[Path],
    folder: Path,
    size: int,
    channels: int,
    *,
    table: pd.DataFrame | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> PreparedArray:
    """Decode every image not yet prepared in ``folder`` and return the whole array.

    Rows whose file is unchanged since an earlier call (same path, size and modification
    time) are reused, also when the table was reordered or extended; the rest are decoded
    by ``workers`` processes (default: the usable cores).

    Args:
        paths: one image file per table row.
        folder: the entry folder (created when absent).
        size: side of the stored square images.
        channels: 3 (RGB) or 1 (grayscale).
        table: the table, copied into the folder once every row is decoded.
        workers: decoding processes (1: decode in this process).
        progress: show a progress bar.

    Raises:
        PreparedCacheError: the folder or array cannot be written, or the disk has too
            little free space for the array.

    Examples:
        >>> out = prepare_array(paths, Path("cache/meta-64px-rgb"), 64, 3)  # doctest: +SKIP
        >>> out.images.shape, out.decoded  # doctest: +SKIP
        ((2000, 3, 64, 64), 2000)
    """
    keys = file_keys(paths)
    shape = (len(paths), channels, size, size)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with _exclusive(folder):
            status = _open_entry(folder, keys, shape)
            reused = int((status != PENDING).sum())
            pending = np.flatnonzero(status == PENDING)
            if len(pending):
                (folder / TABLE_FILE).unlink(missing_ok=True)
                _decode_pending(
                    folder, keys, status, pending, paths, channels, size, workers, progress
                )
            if table is not None and (status == DONE).all() and not (folder / TABLE_FILE).exists():
                atomic_write(folder / TABLE_FILE, lambda tmp: table.to_csv(tmp, index=False))
    except OSError as exc:
        raise PreparedCacheError(
            f"cannot write the prepared images in {folder}: {exc.strerror or exc}; give a "
            f"writable folder with {_gib(np.prod(shape))} free (data.options.prepare_dir, or "
            "--out of clinfonce prepare), or set data.options.prepare=false to read the files"
        ) from exc
    images = np.load(folder / ARRAY_FILE, mmap_mode="c")
    return PreparedArray(images, status, len(pending), reused, folder)


@contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """Hold the entry's lock: processes preparing the same entry at once (the processes of
    a multi-GPU run, two runs on one dataset) take turns, and the later ones reuse the rows
    the first one decoded instead of laying out the array under its feet. The lock goes
    with its process (see :func:`~clinfonce.outputs.process_lock`): a killed prepare leaves
    none behind, and a process that has to wait says for whom. Threads of one process,
    which such a lock does not tell apart, take turns on a thread lock.
    """

    def waiting(holder: str) -> None:
        print(
            f"waiting for {holder}, which is preparing {folder} (its rows are reused once it "
            "is done)",
            file=sys.stderr,
            flush=True,
        )

    with _THREADS, process_lock(folder / LOCK_FILE, waiting):
        yield


def file_keys(paths: Sequence[Path]) -> pd.DataFrame:
    """Absolute path, size in bytes and modification time (ns) of every file; a file that
    cannot be examined gets size ``-1`` (it never matches, and decoding reports it)."""
    rows = []
    for path in paths:
        try:
            info = os.stat(path)
            rows.append((os.path.abspath(path), info.st_size, info.st_mtime_ns))
        except OSError:
            rows.append((os.path.abspath(path), -1, -1))
    keys: pd.DataFrame = pd.DataFrame(rows, columns=["path", "bytes", "mtime_ns"])
    keys[["bytes", "mtime_ns"]] = keys[["bytes", "mtime_ns"]].astype(np.int64)
    return keys


def read_index(folder: Path) -> pd.DataFrame | None:
    """The entry's index (``path``, ``bytes``, ``mtime_ns``, ``status``), or ``None`` when it
    is absent or does not describe the array beside it (such an entry is rebuilt)."""
    index_file, array_file = folder / INDEX_FILE, folder / ARRAY_FILE
    if not index_file.is_file() or not array_file.is_file():
        return None
    try:
        index = pd.read_parquet(index_file)
        rows = np.load(array_file, mmap_mode="r").shape[0]
    except (OSError, ValueError):
        return None
    return index if len(index) == rows else None


def _open_entry(folder: Path, keys: pd.DataFrame, shape: tuple[int, ...]) -> np.ndarray:
    """Status of every row of the entry after matching it with ``keys``; lays out a new
    array (copying the reusable rows) when rows moved or the shape changed."""
    old = read_index(folder)
    if old is not None and np.load(folder / ARRAY_FILE, mmap_mode="r").shape[1:] != shape[1:]:
        old = None
    status = np.full(len(keys), PENDING, dtype=np.int8)
    source_rows = np.full(len(keys), -1, dtype=np.int64)
    if old is not None:
        finished = old[old["status"] != PENDING]
        lookup = pd.Series(finished.index.to_numpy(), index=_key_strings(finished))
        lookup = lookup[~lookup.index.duplicated()]
        source_rows = lookup.reindex(_key_strings(keys)).fillna(-1).to_numpy(np.int64)
        found = source_rows >= 0
        status[found] = old["status"].to_numpy()[source_rows[found]]
    found = source_rows >= 0
    in_place = (
        old is not None
        and len(old) == len(keys)
        and bool((source_rows[found] == np.flatnonzero(found)).all())
    )
    if not in_place:
        (folder / INDEX_FILE).unlink(missing_ok=True)  # no index: nothing counts as done
        _new_array(folder, shape, source_rows)
    _save_index(folder, keys, status)
    return status


def _new_array(folder: Path, shape: tuple[int, ...], source_rows: np.ndarray) -> None:
    """Write a new array of ``shape`` (disk space reserved up front, so a full disk fails
    here rather than while decoding), with rows copied from the old one where
    ``source_rows`` says, then put it in place."""
    needed = int(np.prod(shape))
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise OSError(28, f"the array needs {_gib(needed)} but only {_gib(free)} is free")
    partial = folder / f"{ARRAY_FILE}.partial"
    array = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=shape)
    if hasattr(os, "posix_fallocate") and needed:
        with open(partial, "r+b") as handle:
            os.posix_fallocate(handle.fileno(), 0, os.path.getsize(partial))
    if (source_rows >= 0).any():
        old = np.load(folder / ARRAY_FILE, mmap_mode="r")
        for start in range(0, len(source_rows), 1024):
            block = source_rows[start : start + 1024]
            rows = np.flatnonzero(block >= 0)
            array[start + rows] = old[block[rows]]
    array.flush()
    del array
    os.replace(partial, folder / ARRAY_FILE)


def _decode_pending(
    folder: Path,
    keys: pd.DataFrame,
    status: np.ndarray,
    pending: np.ndarray,
    paths: Sequence[Path],
    channels: int,
    size: int,
    workers: int | None,
    progress: bool,
) -> None:
    """Decode the ``pending`` rows into the array, updating ``status`` and saving the
    index as chunks finish (and once more on the way out, also when interrupted)."""
    # Imported here so that forked workers inherit it instead of each importing it again
    # (seconds per worker).
    import torchvision.transforms.v2.functional  # noqa: F401
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    chunks = [pending[i : i + _CHUNK] for i in range(0, len(pending), _CHUNK)]
    tasks = [
        (folder / ARRAY_FILE, rows, [paths[r] for r in rows], channels, size) for rows in chunks
    ]
    workers = min(workers or usable_cores(), len(chunks))
    bar = tqdm(total=len(pending), desc="preparing images", unit="img", disable=not progress)
    last_save = time.monotonic()

    def finished(rows: np.ndarray, result: list[int]) -> None:
        nonlocal last_save
        status[rows] = result
        bar.update(len(rows))
        if time.monotonic() - last_save > _SAVE_EVERY_S:
            _save_index(folder, keys, status)
            last_save = time.monotonic()

    try:
        if workers <= 1:
            for task in tasks:
                finished(task[1], _decode_rows(*task))
        else:
            pool = ProcessPoolExecutor(workers, initializer=_worker_start, initargs=(os.getpid(),))
            try:
                running: dict[Future[list[int]], np.ndarray] = {
                    pool.submit(_decode_rows, *task): task[1] for task in tasks
                }
                while running:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        finished(running.pop(future), future.result())
            finally:  # on an interruption, drop the chunks not started yet
                pool.shutdown(cancel_futures=True)
    finally:
        bar.close()
        _save_index(folder, keys, status)


def _decode_rows(
    array_file: Path, rows: np.ndarray, paths: list[Path], channels: int, size: int
) -> list[int]:
    """Decode ``paths`` into ``rows`` of the array file; the status of each row. Runs in a
    worker process, so it opens the array itself and flushes before reporting."""
    array = np.load(array_file, mmap_mode="r+")
    result = []
    for row, path in zip(rows.tolist(), paths, strict=True):
        try:
            array[row] = decode_resized(path, channels, size, row=row).numpy()
            result.append(DONE)
        except ValueError:
            result.append(UNREADABLE)
    array.flush()
    return result


def _worker_start(parent: int) -> None:
    """A decoding worker: one thread (parallelism comes from the processes), and on Linux
    killed with its parent, so a ``kill -9`` of ``clinfonce prepare`` leaves no orphans."""
    import torch

    torch.set_num_threads(1)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


def _save_index(folder: Path, keys: pd.DataFrame, status: np.ndarray) -> None:
    index = keys.assign(status=status)
    atomic_write(folder / INDEX_FILE, lambda tmp: index.to_parquet(tmp, index=False))


def _key_strings(keys: pd.DataFrame) -> pd.Index:
    columns = zip(keys["path"], keys["bytes"], keys["mtime_ns"], strict=True)
    index: pd.Index = pd.Index([f"{path}\0{size}\0{mtime}" for path, size, mtime in columns])
    return index


def _gib(count: int | np.integer) -> str:
    return f"{int(count) / 2**30:.2f} GiB"
