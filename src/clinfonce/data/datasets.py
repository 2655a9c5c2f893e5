"""The torch dataset: images plus per-sample ``index`` and ``label``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from clinfonce.data.images import open_image
from clinfonce.data.splits import stream_seed

if TYPE_CHECKING:
    from PIL import Image


class ImageFiles(Sequence["Image.Image"]):
    """Lazily decoded image files, as Pillow images (the file transforms crop and resize in
    Pillow, then make tensors); ``rows`` are the metadata rows, for error messages.

    With ``min_side``, JPEGs decode at the smallest of 1/1, 1/2, 1/4, 1/8 scale that keeps
    both sides at least that long (several times faster for large originals)."""

    def __init__(
        self,
        paths: Sequence[Path],
        rows: Sequence[int],
        channels: int,
        min_side: int | None = None,
    ) -> None:
        self.paths, self.rows, self.channels = list(paths), list(rows), channels
        self.min_side = min_side

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Image.Image:  # type: ignore[override]
        return open_image(self.paths[i], self.channels, row=self.rows[i], min_side=self.min_side)


class ArrayRows(Sequence[torch.Tensor]):
    """Rows of a (memory-mapped) image array, read one at a time: a prepared array larger
    than memory is never copied whole. Item ``i`` is ``array[rows[i]]`` as a tensor."""

    def __init__(self, array: np.ndarray, rows: np.ndarray) -> None:
        self.array, self.rows = array, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> torch.Tensor:  # type: ignore[override]
        return torch.from_numpy(np.array(self.array[self.rows[i]]))


class ContrastiveDataset(Dataset[dict[str, torch.Tensor]]):
    """Samples as dicts: ``image``, ``index`` and, when given, ``label`` (cluster ids are
    looked up by ``index`` from the training module, the one route they take).

    ``index`` is the sample's position in this dataset (the training set), which is how
    per-sample state such as K-means cluster ids is looked up later.

    Args:
        images: a ``uint8 [N, C, H, W]`` tensor, a sequence of ``uint8 [C, H, W]`` tensors
            (:class:`ArrayRows`) or of Pillow images (:class:`ImageFiles`, which need a
            ``transform`` to become tensors).
        labels: int64 ``[N]`` downstream labels (``-1`` = unknown), or ``None``.
        transform: applied to each image (e.g. two random views for files); ``None`` keeps
            the ``uint8`` image, which small in-memory data is augmented from on the device.

    Examples:
        >>> ds = ContrastiveDataset(torch.zeros(4, 1, 8, 8, dtype=torch.uint8),
        ...                         labels=torch.tensor([0, 1, 0, 1]))
        >>> sorted(ds[2])
        ['image', 'index', 'label']
    """

    def __init__(
        self,
        images: torch.Tensor | Sequence[torch.Tensor] | Sequence[Image.Image],
        *,
        labels: torch.Tensor | None = None,
        transform: Callable[[Any], torch.Tensor] | None = None,
    ) -> None:
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"{len(labels)} labels for {len(images)} images")
        self.images, self.labels = images, labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image: Any = self.images[i]  # Pillow images (files) always come with a transform
        sample = {
            "image": self.transform(image) if self.transform is not None else image,
            "index": torch.tensor(i),
        }
        if self.labels is not None:
            sample["label"] = self.labels[i]
        return sample


class EpochShuffleSampler(Sampler[int]):
    """Shuffles with a permutation determined by ``(seed, epoch)``.

    Lightning calls :meth:`set_epoch` before every epoch, so a resumed run sees exactly the
    order the uninterrupted run would have (a generator-held state would restart instead).
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(stream_seed(self.seed, self.epoch))
        yield from torch.randperm(self.size, generator=generator).tolist()


def as_int64(values: np.ndarray | None) -> torch.Tensor | None:
    """An int64 tensor copy of an id array (``None`` passes through)."""
    return None if values is None else torch.tensor(np.asarray(values, dtype=np.int64))
