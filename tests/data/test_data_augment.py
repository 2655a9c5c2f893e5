"""Batched tensor augmentation: shapes, per-sample independence, identity cases, ranges."""

from __future__ import annotations

import pytest
import torch

from clinfonce.data.augment import (
    AugmentParams,
    BatchAugment,
    MultiView,
    color_jitter,
    random_grayscale,
    resize_square,
    resized_crop_flip,
    view_transform,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_batch_augment_shape_dtype_range() -> None:
    images = torch.randint(0, 256, (6, 3, 20, 20), dtype=torch.uint8)
    views = BatchAugment(AugmentParams(), size=16)(images, views=3, generator=gen())
    assert views.shape == (6, 3, 3, 16, 16) and views.dtype == torch.float32
    assert float(views.min()) >= 0 and float(views.max()) <= 1


def test_views_and_samples_are_independent() -> None:
    one = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8)
    views = BatchAugment(AugmentParams(), size=16)(one.repeat(8, 1, 1, 1), views=2, generator=gen())
    flat = views.flatten(2)  # the same image, 16 views: all must differ
    distinct = {tuple(v.round(decimals=4).tolist()) for v in flat.flatten(0, 1)}
    assert len(distinct) == 16


def test_seeded_generator_is_reproducible() -> None:
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    aug = BatchAugment(AugmentParams(), size=16)
    torch.testing.assert_close(aug(images, 2, gen(5)), aug(images, 2, gen(5)))
    assert not torch.equal(aug(images, 2, gen(5)), aug(images, 2, gen(6)))


def test_disabled_is_identity() -> None:
    images = torch.randint(0, 256, (4, 1, 12, 12), dtype=torch.uint8)
    views = BatchAugment(AugmentParams(enabled=False), size=12)(images, views=2)
    expected = images.float() / 255
    assert torch.equal(views[:, 0], expected) and torch.equal(views[:, 1], expected)


def test_full_crop_without_flip_is_identity_and_flip_mirrors() -> None:
    x = torch.rand(3, 2, 10, 10)
    same = resized_crop_flip(x, 10, (1.0, 1.0), (1.0, 1.0), 0.0, gen())
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    mirrored = resized_crop_flip(x, 10, (1.0, 1.0), (1.0, 1.0), 1.0, gen())
    torch.testing.assert_close(mirrored, x.flip(-1), atol=1e-5, rtol=0)


def test_crop_covers_the_requested_area() -> None:
    # A horizontal ramp: a crop of half the width shows half of the ramp's range.
    width = 64
    ramp = torch.linspace(0, 1, width).expand(200, 1, width, width).clone()
    out = resized_crop_flip(ramp, 32, (0.25, 0.25), (1.0, 1.0), 0.0, gen(1))
    span = out.amax(dim=(1, 2, 3)) - out.amin(dim=(1, 2, 3))
    # sides are sqrt(0.25) = 0.5 of the image; the sampled centres span (n_out - 1) / n_out.
    torch.testing.assert_close(span, torch.full_like(span, 0.5 * 31 / 32), atol=0.02, rtol=0)
    centre = (out.amax(dim=(1, 2, 3)) + out.amin(dim=(1, 2, 3))) / 2
    assert float(centre.min()) >= 0.25 - 0.02 and float(centre.max()) <= 0.75 + 0.02
    assert float(centre.std()) > 0.1  # positions vary per sample


def test_brightness_only_jitter_scales_each_image_by_one_factor() -> None:
    x = 0.1 + 0.5 * torch.rand(50, 3, 6, 6, generator=gen(3))  # no clamping at 1.5x
    out = color_jitter(x, (0.5, 0.0, 0.0, 0.0), p=1.0, generator=gen())
    ratio = out / x
    per_image = ratio.flatten(1)
    torch.testing.assert_close(per_image.amin(1), per_image.amax(1), atol=1e-4, rtol=0)
    assert float(per_image.min()) >= 0.5 - 1e-5 and float(per_image.max()) <= 1.5 + 1e-5


def test_jitter_probability_zero_and_grayscale_input() -> None:
    x = torch.rand(8, 3, 5, 5)
    same = color_jitter(x, (0.4, 0.4, 0.4, 0.1), p=0.0, generator=gen())
    torch.testing.assert_close(same, x, atol=1e-6, rtol=0)
    gray = torch.rand(8, 1, 5, 5)
    out = color_jitter(gray, (0.4, 0.4, 0.4, 0.1), p=1.0, generator=gen())
    assert out.shape == gray.shape


def test_hue_rotation_preserves_luma() -> None:
    x = torch.rand(16, 3, 4, 4) * 0.6 + 0.2
    out = color_jitter(x, (0.0, 0.0, 0.0, 0.05), p=1.0, generator=gen())
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    torch.testing.assert_close((out * luma).sum(1), (x * luma).sum(1), atol=1e-4, rtol=0)
    assert not torch.allclose(out, x)


def test_random_grayscale() -> None:
    x = torch.rand(10, 3, 4, 4)
    out = random_grayscale(x, p=1.0, generator=gen())
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    assert torch.equal(random_grayscale(x, p=0.0), x)
    assert torch.equal(random_grayscale(x[:, :1], p=1.0), x[:, :1])


def test_resize_square_centre_crops() -> None:
    x = torch.rand(2, 3, 20, 30)
    assert resize_square(x, 10).shape == (2, 3, 10, 10)
    square = x[..., :20]
    assert resize_square(square, 20) is square


def test_file_pipeline_makes_views() -> None:
    image = torch.randint(0, 256, (3, 40, 50), dtype=torch.uint8)
    views = MultiView(view_transform(AugmentParams(), 24), 2)(image)
    assert views.shape == (2, 3, 24, 24) and views.dtype == torch.uint8
    gray = torch.randint(0, 256, (1, 40, 50), dtype=torch.uint8)
    assert view_transform(AugmentParams(), 24)(gray).shape == (1, 24, 24)


def test_colour_of_cropped_views_matches_the_batch_path() -> None:
    """Views cropped elsewhere get the same colour operations, from the same random draws,
    as a batch augmented whole (with geometry off, the two must agree exactly)."""
    no_crop = AugmentParams(crop_scale=[1.0, 1.0], crop_ratio=[1.0, 1.0], flip_p=0.0)
    augment = BatchAugment(no_crop, size=6)
    images = torch.randint(0, 256, (4, 3, 6, 6), dtype=torch.uint8)
    whole = augment(images, views=2, generator=gen())
    views = images.float().div(255).repeat_interleave(2, dim=0).view(4, 2, 3, 6, 6)
    generator = gen()
    for _ in range(5):  # the crop's draws (area, ratio, x, y, flip) come first in a batch
        torch.rand(8, generator=generator)
    coloured = augment.colour(views, generator)
    assert coloured.shape == (4, 2, 3, 6, 6) and not torch.equal(coloured, views)
    torch.testing.assert_close(coloured, whole, atol=1e-5, rtol=0)
    assert torch.equal(BatchAugment(AugmentParams(enabled=False), 6).colour(views), views)


@pytest.mark.parametrize(
    "params",
    [
        {"crop_scale": [0.0, 1.0]},
        {"crop_scale": [0.8, 0.5]},
        {"jitter": [0.4, 0.4]},
        {"flip_p": 1.5},
    ],
)
def test_bad_params_are_rejected(params: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="augment"):
        AugmentParams(**params)  # type: ignore[arg-type]
