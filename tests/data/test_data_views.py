"""The view maker: chosen once per run from the source, it alone decides how images
become model inputs (arrays augmented on the device, files per sample)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from clinfonce.data import load_source
from clinfonce.data.augment import AugmentParams, MultiView
from clinfonce.data.datasets import ArrayRows, ImageFiles
from clinfonce.data.views import choose_view_maker


def test_arrays_are_augmented_on_the_device() -> None:
    source = load_source("synthetic-attributes", n_samples=12, image_size=12)
    views = choose_view_maker(source, None)
    assert views.on_device and views.image_size == 12
    assert views.train_transform(2, None) is None and views.eval_transform() is None
    images = views.images(np.array([3, 1]))
    assert isinstance(images, torch.Tensor) and images.shape == (2, 3, 12, 12)
    transform, augment = views.single_view(AugmentParams())
    assert transform is None and augment is not None
    out = augment(images, torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 12, 12)


def _image_table(tmp_path: Path, count: int = 4) -> Path:
    for i in range(count):
        Image.fromarray(np.full((10, 12, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    table = tmp_path / "meta.csv"
    pd.DataFrame({"path": [f"{i}.png" for i in range(count)]}).to_csv(table, index=False)
    return table


def test_files_get_per_sample_views_and_prepared_files_become_an_array(tmp_path: Path) -> None:
    table = _image_table(tmp_path)
    files = choose_view_maker(load_source("table", table=str(table)), 8)
    assert not files.on_device
    images = files.images(np.array([0, 2]))
    assert isinstance(images, ImageFiles) and isinstance(images[1], Image.Image)
    train, evaluate = files.train_transform(2, None), files.eval_transform()
    assert isinstance(train, MultiView) and evaluate is not None
    views = train(images[1])  # workers crop the decoded Pillow image: uint8 views
    assert views.shape == (2, 3, 8, 8) and views.dtype == torch.uint8
    assert torch.equal(evaluate(images[1]), torch.full((3, 8, 8), 80, dtype=torch.uint8))
    transform, augment = files.single_view(AugmentParams())
    assert transform is not None and augment is None

    prepared = choose_view_maker(load_source("table", table=str(table), prepare=True), 8)
    assert prepared.on_device and isinstance(prepared.images(np.array([1])), ArrayRows)
    assert prepared.source.images is not None and prepared.source.images.shape == (4, 3, 8, 8)
