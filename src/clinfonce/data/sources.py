"""Where samples come from: a metadata table plus images (in memory or as files).

A *source* is loaded by name from a small registry. Loaders add themselves with
:func:`register_source`; the built-in ones are listed in :mod:`clinfonce.data.catalog`,
which the package imports once, so this module imports none of its plug-ins. Each loader's
keyword arguments are the ``data.options`` of a training config, checked against the
loader's signature so a typo is an error that lists the valid options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from clinfonce.paths import path_parameters

if TYPE_CHECKING:
    from clinfonce.data.prepared_sources import PrepareRequest


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
            resolution is known (:func:`clinfonce.data.prepared_sources.prepared_source`),
            or ``None`` to read the files while training.
        inputs: the user's files the source was read from (the table, the image files),
            which no output of a run may delete or replace.
        table_rows: the row of the metadata file each sample comes from (rows with missing
            or unreadable images are dropped, so it may skip numbers); default ``0..N-1``.
    """

    name: str
    table: pd.DataFrame
    images: np.ndarray | None = None
    paths: list[Path] | None = None
    channels: int = 3
    description: str = ""
    prepare: PrepareRequest | None = None
    inputs: list[Path] = field(default_factory=list)
    table_rows: np.ndarray | None = None

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
        if self.table_rows is None:
            self.table_rows = np.arange(len(self.table))
        elif len(self.table_rows) != len(self.table):
            raise ValueError(f"source {self.name!r}: {len(self.table_rows)} table rows given")

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
    return sorted(_REGISTRY)


def load_source(name: str, **options: Any) -> ImageSource:
    """Load a registered source, checking ``options`` against the loader's parameters.

    Examples:
        >>> src = load_source("synthetic-attributes", n_samples=100, image_size=16)
        >>> src.images.shape
        (100, 3, 16, 16)
    """
    return check_source_options(name, options)(**options)


def source_path_options(name: str) -> list[str]:
    """The options of source ``name`` that name files or folders (annotated
    :data:`~clinfonce.paths.PathOption` or ``os.PathLike``); a config stores them absolute.

    Examples:
        >>> source_path_options("arrays")
        ['arrays', 'table']
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; valid datasets: {', '.join(_REGISTRY)}")
    return path_parameters(_REGISTRY[name])


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


def images_tensor(source: ImageSource) -> torch.Tensor:
    """The in-memory images as a shared (zero-copy) ``uint8`` tensor."""
    if source.images is None:
        raise ValueError(f"source {source.name!r} has no in-memory images")
    return torch.from_numpy(source.images)
