"""Where samples come from: a metadata table plus images (in memory or as files).

A *source* is loaded by name from a small registry (``fashion-mnist``,
``synthetic-attributes``, ``table``, ``arrays``); each loader's keyword arguments are the
``data.options`` of a training config, checked against the loader's signature so a typo is an
error that lists the valid options.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from clinfonce.data.images import decode_resized

if TYPE_CHECKING:
    from clinfonce.data.prepared import PrepareRequest


@dataclass
class ImageSource:
    """A dataset's samples: one table row per sample, and its images.

    Attributes:
        name: a short name for messages and run directories.
        table: the metadata, index ``0..N-1``; row ``i`` describes image ``i``.
        images: ``uint8 [N, C, H, W]`` when the images are held in memory, else ``None``.
        paths: absolute image paths (one per row) when the images are files, else ``None``.
        channels: image channels (1 or 3).
        description: one line saying what was loaded and from where.
        prepare: for files, how to turn them into a prepared array once the training
            resolution is known (:func:`clinfonce.data.prepared.prepared_source`), or ``None``
            to read the files while training.
    """

    name: str
    table: pd.DataFrame
    images: np.ndarray | None = None
    paths: list[Path] | None = None
    channels: int = 3
    description: str = ""
    prepare: PrepareRequest | None = None

    def __post_init__(self) -> None:
        if (self.images is None) == (self.paths is None):
            raise ValueError(f"source {self.name!r}: give exactly one of images and paths")
        count = len(self.images) if self.images is not None else len(self.paths or [])
        if count != len(self.table):
            raise ValueError(
                f"source {self.name!r}: {count} images but {len(self.table)} table rows; "
                "row i of the table must describe image i"
            )
        self.table = self.table.reset_index(drop=True)

    @property
    def in_memory(self) -> bool:
        """Whether the images are an array (augmented as whole batches on the device)."""
        return self.images is not None


SourceLoader = Callable[..., ImageSource]
_REGISTRY: dict[str, SourceLoader] = {}


def register_source(name: str) -> Callable[[SourceLoader], SourceLoader]:
    """Decorator adding a loader to the registry under ``name``.

    Examples:
        >>> @register_source("my-data")  # doctest: +SKIP
        ... def load_my_data(root: str = "data") -> ImageSource: ...
    """

    def add(loader: SourceLoader) -> SourceLoader:
        _REGISTRY[name] = loader
        return loader

    return add


def available_sources() -> list[str]:
    """Names accepted by :func:`load_source` (``data.dataset`` in a config)."""
    _import_builtins()
    return sorted(_REGISTRY)


def load_source(name: str, **options: Any) -> ImageSource:
    """Load a registered source, checking ``options`` against the loader's parameters.

    Examples:
        >>> src = load_source("synthetic-attributes", n_samples=100, image_size=16)
        >>> src.images.shape
        (100, 3, 16, 16)
    """
    return check_source_options(name, options)(**options)


def check_source_options(name: str, options: dict[str, Any]) -> SourceLoader:
    """The loader of source ``name``, after checking ``options`` against its signature.

    Run when a config loads (and again by :func:`load_source`), so a typo or a missing
    required option fails at ``--print-config`` with the valid options, never as a raw
    ``TypeError`` once training starts.

    Examples:
        >>> check_source_options("table", {"image_root": "img"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: dataset 'table' needs data.options.table (e.g. data.options.table=...); ...
    """
    _import_builtins()
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown dataset {name!r} (data.dataset); valid datasets: "
            f"{', '.join(sorted(_REGISTRY))}"
        )
    loader = _REGISTRY[name]
    params = inspect.signature(loader).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for dataset {name!r} (data.options); "
            f"valid options: {', '.join(params)}"
        )
    required = [
        key
        for key, param in params.items()
        if param.default is inspect.Parameter.empty
        and param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
        and key not in options
    ]
    if required:
        raise ValueError(
            f"dataset {name!r} needs data.options.{', data.options.'.join(required)} "
            f"(e.g. data.options.{required[0]}=...); valid options: {', '.join(params)}"
        )
    return loader


def _import_builtins() -> None:
    # The built-in loaders register themselves on import.
    from clinfonce.data import fashion_mnist, synthetic  # noqa: F401
    from clinfonce.data.official import sources as official_sources  # noqa: F401


def read_metadata(path: str | Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Read a metadata table with the stage-1 reader (CSV/TSV/Parquet/JSONL by suffix)."""
    from clinfonce.clusters import read_table

    return read_table(path, encoding)


@register_source("table")
def load_table_source(
    table: str,
    image_root: str | None = None,
    path_column: str = "path",
    channels: int = 3,
    cache: bool = False,
    cache_size: int | None = None,
    missing: str = "error",
    prepare: bool | str = False,
    prepare_dir: str | None = None,
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
    from clinfonce.data.prepared import prepare_request

    request = prepare_request(prepare, prepare_dir, table, missing)
    if request is not None and cache:
        raise ValueError("set data.options.prepare or data.options.cache, not both")
    frame = read_metadata(table, encoding)
    if path_column not in frame.columns:
        raise ValueError(
            f"{table}: no image path column {path_column!r} (columns: "
            f"{', '.join(map(str, frame.columns))}); set data.options.path_column"
        )
    root = Path(image_root) if image_root is not None else Path(table).parent
    paths = [root / str(p) for p in frame[path_column]]
    keep = np.array([p.is_file() for p in paths])
    report_bad_rows(~keep, paths, table, missing, "missing")
    paths = [p for p, k in zip(paths, keep, strict=True) if k]
    frame = frame[keep].reset_index(drop=True)
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
        )
    if cache_size is None:
        raise ValueError("data.options.cache_size is required with data.options.cache=true")
    images, ok = _decode_all(paths, channels, cache_size)
    report_bad_rows(~ok, paths, table, missing, "unreadable")
    frame = frame[ok].reset_index(drop=True)
    return ImageSource(
        "table", frame, images=images[ok], channels=channels, description=description
    )


def report_bad_rows(
    bad: np.ndarray, paths: list[Path], table: str, missing: str, what: str
) -> None:
    """Stop at (``missing="error"``) or warn about (``"skip"``) the rows flagged ``bad``,
    naming a few of their files; ``what`` says what is wrong with them."""
    if not bad.any():
        return
    rows = np.flatnonzero(bad)
    examples = "; ".join(f"row {r}: {paths[r]}" for r in rows[:5])
    if missing == "error":
        raise FileNotFoundError(
            f"{table}: {len(rows)} {what} image(s), e.g. {examples}; fix the paths or "
            "data.options.image_root, or set data.options.missing=skip to drop them"
        )
    warnings.warn(
        f"{table}: skipping {len(rows)} {what} image(s) of {len(paths)}, e.g. {examples}",
        stacklevel=3,
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
def load_array_source(arrays: str, table: str | None = None) -> ImageSource:
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


def images_tensor(source: ImageSource) -> torch.Tensor:
    """The in-memory images as a shared (zero-copy) ``uint8`` tensor."""
    if source.images is None:
        raise ValueError(f"source {source.name!r} has no in-memory images")
    return torch.from_numpy(source.images)
