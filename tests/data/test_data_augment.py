"""Batched tensor augmentation: shapes, per-sample independence, identity cases, ranges."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import RandomResizedCrop
from torchvision.transforms.v2 import functional as tvf

from clinfonce.data.augment import (
    AugmentParams,
    BatchAugment,
    CropFlip,
    MultiView,
    color_jitter,
    eval_transform,
    random_grayscale,
    resize_square,
    resized_crop_flip,
    view_transform,
)
from clinfonce.data.images import decode_image, open_image


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


def test_file_views_are_torchvision_crops_resampled_in_pillow() -> None:
    """Under one seed, a file view is the crop box its draws give, resized as torchvision's
    antialiased tensor resize does (within rounding) and flipped when the last draw says
    so: a swapped axis, a wrong box or flip would differ by far more."""
    image = torch.randint(0, 256, (3, 94, 125), dtype=torch.uint8)
    image = tvf.gaussian_blur(image, [5, 5])  # smooth, like a photo, so resampling agrees
    crop = CropFlip(AugmentParams(), 32)
    flips = 0
    for seed in range(40):
        torch.manual_seed(seed)
        view = crop(Image.fromarray(image.permute(1, 2, 0).numpy()))
        torch.manual_seed(seed)
        draws = torch.rand(23).tolist()
        expected = tvf.resized_crop(image, *crop.box(94, 125, draws), [32, 32], antialias=True)
        if draws[-1] < 0.5:
            expected, flips = tvf.horizontal_flip(expected), flips + 1
        assert view.shape == (3, 32, 32) and view.dtype == torch.uint8
        assert int((view.int() - expected.int()).abs().max()) <= 2
    assert 0 < flips < 40


def test_file_crop_boxes_follow_torchvision_distribution() -> None:
    """Crop areas and aspect ratios stay in range and match torchvision's RandomResizedCrop
    in distribution; the flip rate is ``flip_p``."""
    params = AugmentParams(crop_scale=[0.3, 0.9], flip_p=0.25)
    crop, generator = CropFlip(params, 16), gen(1)
    ours, theirs = [], []
    torch.manual_seed(0)
    for _ in range(3000):
        top, left, h, w = crop.box(94, 125, torch.rand(23, generator=generator).tolist())
        assert 0 <= top <= 94 - h and 0 <= left <= 125 - w
        ours.append((h * w / (94 * 125), math.log(w / h)))
        _, _, t_h, t_w = RandomResizedCrop.get_params(
            torch.zeros(1, 94, 125), [0.3, 0.9], [3 / 4, 4 / 3]
        )
        theirs.append((t_h * t_w / (94 * 125), math.log(t_w / t_h)))
    ours_a, theirs_a = np.array(ours), np.array(theirs)
    assert ours_a[:, 0].min() >= 0.29 and ours_a[:, 0].max() <= 0.91
    assert np.abs(ours_a[:, 1]).max() <= math.log(4 / 3) + 0.05
    np.testing.assert_allclose(ours_a.mean(0), theirs_a.mean(0), atol=0.01)
    np.testing.assert_allclose(ours_a.std(0), theirs_a.std(0), atol=0.01)
    # No try fits when every area draw is out of range: torchvision's fallback, the
    # central crop (here the whole square image).
    assert crop.box(9, 9, [2.0] * 20 + [0.0, 0.0, 0.0]) == (0, 0, 9, 9)
    gradient = np.repeat(np.arange(0, 240, 20, dtype=np.uint8), 36).reshape(12, 3, 12)
    image = Image.fromarray(gradient.transpose(2, 0, 1).copy())  # brighter to the right
    torch.manual_seed(0)
    flipped = [bool(torch.rand(23)[-1] < 0.25) for _ in range(2000)]
    assert abs(sum(flipped) / 2000 - 0.25) < 0.03
    torch.manual_seed(0)
    views = [crop(image)[0, 8] for _ in range(2000)]
    assert [bool(v[0] > v[-1]) for v in views] == flipped


def test_eval_view_of_a_decoded_file_keeps_tensor_pixels(tmp_path: Path) -> None:
    """The eval view of a file decoded to a Pillow image has the pixels of the tensor path."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (50, 70, 3), np.uint8)).save(tmp_path / "a.jpg")
    view = eval_transform(24)
    from_pillow = view(open_image(tmp_path / "a.jpg", 3, min_side=28))
    assert torch.equal(from_pillow, view(decode_image(tmp_path / "a.jpg", 3, min_side=28)))


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
