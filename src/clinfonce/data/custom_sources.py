"""Sources for your own data: a table listing image files (``table``), or an image array
file (``arrays``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from clinfonce.data.images import decode_resized, report_bad_rows
from clinfonce.data.prepared_sources import prepare_request
from clinfonce.data.sources import ImageSource, register_source
from clinfonce.outputs import is_file
from clinfonce.paths import PathOption


def read_metadata(
    path: str | Path, encoding: str = "utf-8", encoding_option: str = "--encoding "
) -> pd.DataFrame:
    """Read a metadata table with the stage-1 reader (CSV/TSV/Parquet/JSONL by suffix;
    ``encoding_option`` as :func:`~clinfonce.clusters.tables.read_table`'s)."""
    from clinfonce.clusters import read_table

    return read_table(path, encoding, encoding_option)


@register_source("table")
def load_table_source(
    table: PathOption,
    image_root: PathOption | None = None,
    path_column: str = "path",
    channels: int = 3,
    cache: bool = False,
    cache_size: int | None = None,
    missing: str = "error",
    prepare: bool | str = False,
    prepare_dir: PathOption | None = None,
    encoding: str = "utf-8",
) -> ImageSource:
    """Images listed in a metadata table, one file path per row.

    Args:
        table: the metadata table (CSV, TSV, Parquet or JSONL).
        image_root: directory the paths are relative to (default: the table's directory).
        path_column: the column holding the image paths.
        channels: 3 decodes as RGB, 1 as grayscale.
        cache: decode every image once now and keep them in memory (resized to
            ``cache_size``), so training augments whole batches as tensors. For small images.
        cache_size: side of the square cached images (required with ``cache``).
        missing: ``"error"`` stops at a missing (or, when caching, unreadable) image naming
            the file and row; ``"skip"`` drops such rows with a warning and a count.
        prepare: ``true`` decodes every image once, in parallel, into a memory-mapped array
            at the training resolution (kept on disk and reused while the files are
            unchanged), so training reads pixels instead of decoding them; ``auto`` does
            the same but goes on reading the files, with a warning, when the array cannot be
            written (unwritable folder, full disk); ``false`` reads the files every epoch.
        prepare_dir: folder of the prepared arrays (default: ``.clinfonce-prepared`` beside
            the table).
        encoding: text encoding of a CSV/TSV/JSONL table (e.g. ``latin-1``).

    Examples:
        >>> src = load_table_source("meta.csv", image_root="images")  # doctest: +SKIP
    """
    if missing not in ("error", "skip"):
        raise ValueError(f"data.options.missing must be 'error' or 'skip', got {missing!r}")
    if channels not in (1, 3):
        raise ValueError(f"data.options.channels must be 1 or 3, got {channels}")
    request = prepare_request(prepare, prepare_dir, table, missing)
    if request is not None and cache:
        raise ValueError("set data.options.prepare or data.options.cache, not both")
    frame = read_metadata(table, encoding, "data.options.encoding=")
    if path_column not in frame.columns:
        raise ValueError(
            f"{table}: no image path column {path_column!r} (columns: "
            f"{', '.join(map(str, frame.columns))}); set data.options.path_column"
        )
    root = Path(image_root) if image_root is not None else Path(table).parent
    paths = [root / str(p) for p in frame[path_column]]
    keep = np.array([is_file(p) for p in paths])
    report_bad_rows(~keep, paths, table, missing, "missing")
    inputs = [Path(table), *paths]  # every listed file, kept or not, is the user's
    paths = [p for p, k in zip(paths, keep, strict=True) if k]
    frame = frame[keep].reset_index(drop=True)
    table_rows = np.flatnonzero(keep)
    if "id" not in frame.columns:
        frame["id"] = frame[path_column].astype(str)
    description = f"{len(frame)} images listed in {table} under {root}"
    if not cache:
        return ImageSource(
            "table",
            frame,
            paths=paths,
            channels=channels,
            description=description,
            prepare=request,
            inputs=inputs,
            table_rows=table_rows,
        )
    if cache_size is None:
        raise ValueError("data.options.cache_size is required with data.options.cache=true")
    images, ok = _decode_all(paths, channels, cache_size)
    report_bad_rows(~ok, paths, table, missing, "unreadable")
    frame = frame[ok].reset_index(drop=True)
    return ImageSource(
        "table",
        frame,
        images=images[ok],
        channels=channels,
        description=description,
        inputs=inputs,
        table_rows=table_rows[ok],
    )


def _decode_all(paths: list[Path], channels: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    images = np.zeros((len(paths), channels, size, size), dtype=np.uint8)
    ok = np.ones(len(paths), dtype=bool)
    # disable=None: a bar on a terminal only; in a log file its redraws become fragments.
    for row, path in enumerate(tqdm(paths, desc="caching images", unit="img", disable=None)):
        try:
            images[row] = decode_resized(path, channels, size, row=row).numpy()
        except ValueError:
            ok[row] = False
    return images, ok


@register_source("arrays")
def load_array_source(arrays: PathOption, table: PathOption | None = None) -> ImageSource:
    """Images stored in a ``.npz`` (key ``images``) or ``.npy`` array.

    Layouts ``[N, H, W]``, ``[N, H, W, C]`` and ``[N, C, H, W]`` with 1 or 3 channels are
    accepted; ``uint8``, or floats in ``[0, 1]``. The metadata is ``table`` (row ``i`` =
    image ``i``) when given, else the ``.npz``'s other 1-D arrays of length ``N`` (e.g.
    ``id``, ``label``); without an ``id`` column ids are the row numbers.

    Examples:
        >>> src = load_array_source("train.npz")  # doctest: +SKIP
    """
    path = Path(arrays)
    columns: dict[str, np.ndarray] = {}
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if "images" not in data.files:
                raise ValueError(f"{path}: no 'images' array (arrays: {', '.join(data.files)})")
            images = data["images"]
            columns = {k: data[k] for k in data.files if k != "images" and data[k].ndim == 1}
    elif path.suffix == ".npy":
        images = np.load(path, allow_pickle=False)
    else:
        raise ValueError(f"{path}: data.options.arrays must be a .npz or .npy file")
    images = to_nchw_uint8(images, str(path))
    if table is not None:
        frame = read_metadata(table)
    else:
        bad = [k for k, v in columns.items() if len(v) != len(images)]
        if bad:
            raise ValueError(f"{path}: arrays {bad} do not have one entry per image")
        frame = pd.DataFrame(columns, index=pd.RangeIndex(len(images)))
    if "id" not in frame.columns and len(frame) == len(images):
        frame.insert(0, "id", [str(i) for i in range(len(images))])
    return ImageSource(
        path.stem,
        frame,
        images=images,
        channels=images.shape[1],
        description=f"{len(images)} images from {path}",
        inputs=[path, *([Path(table)] if table is not None else [])],
    )


def to_nchw_uint8(images: np.ndarray, where: str) -> np.ndarray:
    """Bring an image array to ``uint8 [N, C, H, W]``, guessing the channel axis.

    Examples:
        >>> to_nchw_uint8(np.zeros((2, 5, 5, 3)), "x").shape
        (2, 3, 5, 5)
    """
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"{where}: images must be [N, H, W] or 4-D, got shape {images.shape}")
    if images.shape[1] not in (1, 3) and images.shape[3] in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    if images.shape[1] not in (1, 3):
        raise ValueError(f"{where}: images need 1 or 3 channels, got shape {images.shape}")
    if np.issubdtype(images.dtype, np.floating):
        if images.size and (images.min() < 0 or images.max() > 1):
            raise ValueError(f"{where}: float images must lie in [0, 1]")
        images = np.rint(images * 255)
    elif images.dtype != np.uint8:
        raise ValueError(f"{where}: images must be uint8 or float in [0, 1], got {images.dtype}")
    return np.ascontiguousarray(images, dtype=np.uint8)
