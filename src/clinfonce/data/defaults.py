"""Settings read off a table of image files: its columns, the image size and channels, and
whether the decoded images are kept in memory or in a prepared array on disk.

A user with a folder of images and a CSV should not have to know that files default to 224 px
and ImageNet statistics, or that small images train about 30x faster decoded once and held
in memory: :func:`inspect_image_table` finds these from the data, and
:func:`choose_storage` is the one place that decides between memory and a prepared array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clinfonce.outputs import is_file

#: Images read to measure size and colour (evenly spaced over the table).
PROBE_IMAGES = 256
#: The inferred model input side never exceeds this (larger images are resized down).
MAX_IMAGE_SIDE = 224
#: Decoded images are kept in memory when they take at most this many bytes.
MEMORY_BUDGET_BYTES = 2 * 1024**3
#: Column names recognised without a flag, in order of preference.
LABEL_NAMES: tuple[str, ...] = ("label", "class", "target")
SPLIT_NAMES: tuple[str, ...] = ("split", "subset", "fold")
ID_NAMES: tuple[str, ...] = ("id", "sample_id", "image_id")
#: Image modes of Pillow that hold one channel.
_GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F", "P;1"})


@dataclass
class TableColumns:
    """The roles of a table's columns (``None``: the table has no such column).

    Attributes:
        path: image file paths, relative to the image root.
        id: the sample key (``None``: the path is the key).
        label: downstream labels (evaluation only, never used for training Cl-InfoNCE).
        split: each row's split (``train``, ``test``, ...).
    """

    path: str
    id: str | None
    label: str | None
    split: str | None

    @property
    def reserved(self) -> list[str]:
        """The columns that are not auxiliary information."""
        return [c for c in (self.path, self.id, self.label, self.split) if c is not None]


@dataclass
class ImageProbe:
    """What a sample of the images looks like.

    Attributes:
        sampled: images opened.
        median_side: median of the shorter side, in pixels.
        channels: 1 when every sampled image is grayscale, else 3.
        unreadable: sampled files Pillow could not open.
    """

    sampled: int
    median_side: int
    channels: int
    unreadable: int


def _by_name(frame: pd.DataFrame, given: str | None, names: Sequence[str], flag: str) -> str | None:
    if given is not None:
        if given not in frame.columns:
            raise ValueError(
                f"{flag} {given}: no such column (columns: {', '.join(map(str, frame.columns))})"
            )
        return given
    lowered = {str(c).lower(): str(c) for c in frame.columns}
    return next((lowered[n] for n in names if n in lowered), None)


def detect_columns(
    frame: pd.DataFrame,
    image_root: Path,
    *,
    path: str | None = None,
    id: str | None = None,
    label: str | None = None,
    split: str | None = None,
) -> TableColumns:
    """Find the path, id, label and split columns; any given name wins over detection.

    The path column is the first text column whose first values name existing files under
    ``image_root``; the others are found by name (``label``/``class``/``target``,
    ``split``/``subset``/``fold``, ``id``/``sample_id``/``image_id``, any case).

    Raises:
        ValueError: a named column is absent, or no column holds existing file paths.
    """
    found_path = _by_name(frame, path, (), "--path-column")
    if found_path is None:
        for column in frame.columns:
            values = frame[column].dropna().astype(str).head(20)
            if values.empty or frame[column].dtype.kind in "iufb":
                continue
            if np.mean([is_file(image_root / v) for v in values]) >= 0.5:
                found_path = str(column)
                break
    if found_path is None:
        raise ValueError(
            f"no column holds paths of existing files under {image_root} (columns: "
            f"{', '.join(map(str, frame.columns))}); name it with --path-column, or set "
            "--image-root to the folder the paths are relative to"
        )
    return TableColumns(
        path=found_path,
        id=_by_name(frame, id, ID_NAMES, "--id-column"),
        label=_by_name(frame, label, LABEL_NAMES, "--label-column"),
        split=_by_name(frame, split, SPLIT_NAMES, "--split-column"),
    )


def probe_images(paths: Sequence[Path], limit: int = PROBE_IMAGES) -> ImageProbe:
    """Open up to ``limit`` images (headers only, evenly spaced) to measure size and colour.

    Examples:
        >>> probe_images([])
        ImageProbe(sampled=0, median_side=0, channels=3, unreadable=0)
    """
    from PIL import Image, UnidentifiedImageError

    picks = np.unique(np.linspace(0, len(paths) - 1, num=min(limit, len(paths))).astype(int))
    sides, gray, unreadable = [], [], 0
    for index in picks if len(paths) else []:
        try:
            with Image.open(paths[index]) as image:
                sides.append(min(image.size))
                gray.append(image.mode in _GRAY_MODES)
        except (OSError, UnidentifiedImageError):
            unreadable += 1
    channels = 1 if gray and all(gray) else 3
    median = int(np.median(sides)) if sides else 0
    return ImageProbe(len(picks) if len(paths) else 0, median, channels, unreadable)


def choose_storage(
    count: int, side: int, channels: int, budget_bytes: int = MEMORY_BUDGET_BYTES
) -> tuple[dict[str, Any], str]:
    """Keep the decoded images in memory or in a prepared array on disk; the ``table``
    source options that do it, and the reason in words.

    Either way images are decoded once (at ``side`` px) and whole batches are augmented as
    tensors: for small images this is many times faster than decoding every file at every
    step. When the decoded set would not fit the memory budget it is prepared once into a
    memory-mapped array beside the table (``prepare: auto``), which training reads row by
    row; where that array cannot be written, training reads the files instead, with a
    warning.

    Examples:
        >>> choose_storage(300, 28, 1)[0]
        {'cache': True, 'cache_size': 28}
        >>> choose_storage(10**6, 224, 3)[0]
        {'prepare': 'auto'}
    """
    size = count * channels * side * side
    budget_mib, size_mib = budget_bytes / 2**20, size / 2**20
    if size <= budget_bytes:
        reason = (
            f"in memory: {count} decoded images of {side} px take {size_mib:.1f} MiB, within "
            f"the {budget_mib:.0f} MiB budget"
        )
        return {"cache": True, "cache_size": side}, reason
    reason = (
        f"prepared on disk: {count} decoded images of {side} px take {size_mib:.0f} MiB, over "
        f"the {budget_mib:.0f} MiB memory budget, so they are decoded once into a "
        "memory-mapped array (files read directly if it cannot be written)"
    )
    return {"prepare": "auto"}, reason


def clamp_batch(requested: int, train_rows: int) -> tuple[int, str | None]:
    """The batch size for ``train_rows`` training samples, and a note when it was lowered.

    Every step trains a full batch, so a batch larger than the data would train nothing.

    Examples:
        >>> clamp_batch(256, 240)
        (240, 'batch 256 lowered to 240, the number of training rows')
        >>> clamp_batch(256, 1000)
        (256, None)
    """
    if train_rows < 2:
        raise ValueError(f"only {train_rows} training row(s): contrastive training needs 2+")
    if requested <= train_rows:
        return requested, None
    return train_rows, f"batch {requested} lowered to {train_rows}, the number of training rows"
