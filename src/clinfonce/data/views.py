"""The view maker: how a run's images become model inputs, decided once per run.

Three kinds of images exist: an array in memory, a prepared (memory-mapped) array of
decoded files, and image files read while training. :func:`choose_view_maker` settles which one
a run uses (preparing the files first when the source asks for it) and the resulting
:class:`ViewMaker` is the only place that branches on the kind: arrays give ``uint8
[C, H, W]`` images augmented as whole batches on the device (:class:`BatchAugment`); files
give per-sample views made by the loader workers, their colour added on the device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from clinfonce.data.augment import (
    AugmentParams,
    BatchAugment,
    MultiView,
    eval_resize_side,
    eval_transform,
    view_transform,
)
from clinfonce.data.datasets import ArrayRows, ImageFiles
from clinfonce.data.prepared_sources import DEFAULT_FILE_SIZE, prepared_source
from clinfonce.data.sources import ImageSource, images_tensor

#: ``augment(images, generator)``: one augmented view of a batch of ``uint8`` images.
BatchViews = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class ViewMaker:
    """Images of table rows for training and evaluation, at the run's input size.

    Attributes:
        source: the source as the run reads it (files replaced by their prepared array
            when one was made).
        image_size: the model input side.
    """

    source: ImageSource
    image_size: int

    @property
    def on_device(self) -> bool:
        """Whether images are arrays augmented as whole batches on the device (else files,
        whose views the loader workers make)."""
        return self.source.in_memory

    def images(self, rows: np.ndarray) -> torch.Tensor | ArrayRows | ImageFiles:
        """The images of table ``rows``, position ``i`` = row ``rows[i]``: an in-memory
        array's rows, a prepared array's rows read as needed, or the files to decode."""
        source = self.source
        if isinstance(source.images, np.memmap):
            return ArrayRows(source.images, rows)
        if source.in_memory:
            return images_tensor(source)[torch.as_tensor(rows)]
        paths = source.paths or []
        return ImageFiles(
            [paths[r] for r in rows],
            rows.tolist(),
            source.channels,
            min_side=eval_resize_side(self.image_size),  # covers train and eval views
        )

    def train_transform(self, views: int, augment: AugmentParams | None) -> MultiView | None:
        """Per-sample transform of the training set: none for arrays (augmented on the
        device); for files, ``views`` crops of the decoded original (:func:`view_transform`)."""
        if self.on_device:
            return None
        return MultiView(view_transform(augment or AugmentParams(), self.image_size), views)

    def eval_transform(self) -> Callable[..., torch.Tensor] | None:
        """Per-sample transform of un-augmented images: none for arrays, resize + centre
        crop for files."""
        return None if self.on_device else eval_transform(self.image_size)

    def single_view(self, params: AugmentParams) -> tuple[Any, BatchViews | None]:
        """One augmented view per sample (e.g. for an SGD probe): the per-sample transform
        and the batch augmentation, exactly one of them set (files: the transform; arrays:
        the batch augmentation, run on the device)."""
        if not self.on_device:
            return view_transform(params, self.image_size), None
        batch_augment = BatchAugment(params, self.image_size)

        def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
            return batch_augment(images, 1, generator)[:, 0]

        return None, augment


def choose_view_maker(source: ImageSource, image_size: int | None) -> ViewMaker:
    """The run's view maker: a source asking for a prepared array is prepared first, at
    ``image_size`` (default :data:`DEFAULT_FILE_SIZE`); without ``image_size``, arrays keep
    their own size and files are brought to :data:`DEFAULT_FILE_SIZE`."""
    if source.prepare is not None:  # files become a prepared array at the training size
        source = prepared_source(source, image_size or DEFAULT_FILE_SIZE)
    if image_size is None:
        image_size = source.images.shape[-1] if source.images is not None else DEFAULT_FILE_SIZE
    return ViewMaker(source, image_size)
