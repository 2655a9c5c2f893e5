"""Two-view augmentation of docs/method.md §4, batched on tensors or per sample (torchvision v2).

Images held in an array (in memory or a prepared array on disk) are augmented as whole
batches after they reach the device (:class:`BatchAugment`: one ``affine_grid``/
``grid_sample`` call does every sample's random resized crop and flip, colour jitter is a
few vectorised blends), so the input pipeline costs little next to the model. Files read
while training get their crop and flip per sample in the loader workers
(:func:`view_transform`, from the decoded original), and their colour operations on the
device with the same batched code (:meth:`BatchAugment.colour`): per-sample colour jitter
cost several times the JPEG decode. Both are grayscale-aware: for 1-channel data the
colour-only operations (saturation, hue, grayscale) are skipped, as torchvision does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from clinfonce.data.images import pil_to_tensor

if TYPE_CHECKING:
    from PIL import Image

# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)


@dataclass
class AugmentParams:
    """Augmentation settings (the ``augment`` section of a training config).

    Attributes:
        enabled: false makes every view the eval view (resize only).
        crop_scale: area fraction range of RandomResizedCrop (§4: 0.4-1).
        crop_ratio: aspect-ratio range of the crop.
        flip_p: probability of a horizontal flip.
        jitter: ColorJitter strengths (brightness, contrast, saturation, hue).
        jitter_p: probability of applying the jitter to a view.
        grayscale_p: probability of converting a view to grayscale (RGB only).
    """

    enabled: bool = True
    crop_scale: list[float] = field(default_factory=lambda: [0.4, 1.0])
    crop_ratio: list[float] = field(default_factory=lambda: [3 / 4, 4 / 3])
    flip_p: float = 0.5
    jitter: list[float] = field(default_factory=lambda: [0.4, 0.4, 0.4, 0.1])
    jitter_p: float = 0.8
    grayscale_p: float = 0.2

    def __post_init__(self) -> None:
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"augment.crop_scale must satisfy 0 < min <= max <= 1, got {lo, hi}")
        if not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ValueError(f"augment.crop_ratio must be increasing and > 0: {self.crop_ratio}")
        if len(self.jitter) != 4 or min(self.jitter) < 0 or self.jitter[3] > 0.5:
            raise ValueError(
                "augment.jitter must be 4 non-negative strengths [brightness, contrast, "
                f"saturation, hue] with hue <= 0.5, got {self.jitter}"
            )
        for name in ("flip_p", "jitter_p", "grayscale_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"augment.{name} must be a probability, got {getattr(self, name)}")


def _uniform(
    n: int, low: float, high: float, gen: torch.Generator | None, like: torch.Tensor
) -> torch.Tensor:
    """``n`` draws of ``U(low, high)`` in ``like``'s dtype and device. The stream is drawn in
    float32 whatever the dtype (so a float64 model sees the views a float32 one does), and
    everything after it is computed in the images' dtype."""
    return torch.rand(n, generator=gen, device=like.device).to(like.dtype) * (high - low) + low


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Luma ``[N, 1, H, W]`` of RGB ``[N, 3, H, W]`` (one matmul, no temporaries)."""
    weights = x.new_tensor(_LUMA).view(1, 3)
    return torch.matmul(weights, x.flatten(2)).view(x.shape[0], 1, *x.shape[2:])


def resized_crop_flip(
    images: torch.Tensor,
    size: int,
    scale: tuple[float, float] | list[float],
    ratio: tuple[float, float] | list[float],
    flip_p: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Independent random resized crop + horizontal flip of every image, in one resampling.

    The crop covers a fraction ``U(scale)`` of the area with log-uniform aspect ratio; sides
    that would exceed the image are clamped to it (torchvision re-draws instead). Bilinear
    sampling through ``affine_grid``/``grid_sample``.

    Args:
        images: float ``[N, C, H, W]``.
        size: output side.
        scale, ratio, flip_p: as :class:`AugmentParams`.
        generator: random source (e.g. seeded per step for exact resumes).

    Returns:
        float ``[N, C, size, size]``.

    Examples:
        >>> out = resized_crop_flip(torch.rand(4, 3, 32, 32), 24, (0.4, 1.0), (0.75, 1.33), 0.5)
        >>> out.shape
        torch.Size([4, 3, 24, 24])
    """
    n, _, height, width = images.shape
    dev = images.device
    area = _uniform(n, scale[0], scale[1], generator, images)
    log_ratio = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator, images)
    aspect = log_ratio.exp()
    # Crop sides as fractions of the image's width and height.
    w = (area * aspect * height / width).sqrt().clamp(max=1.0)
    h = (area / aspect * width / height).sqrt().clamp(max=1.0)
    cx = _uniform(n, -1, 1, generator, images) * (1 - w)
    cy = _uniform(n, -1, 1, generator, images) * (1 - h)
    flip = torch.rand(n, generator=generator, device=dev) < flip_p
    sign = 1.0 - 2.0 * flip.to(images.dtype)
    theta = torch.zeros(n, 2, 3, dtype=images.dtype, device=dev)
    theta[:, 0, 0] = w * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, [n, images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def color_jitter(
    images: torch.Tensor,
    strengths: tuple[float, float, float, float] | list[float],
    p: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per-image random brightness, contrast, saturation and hue, each image with prob ``p``.

    Factors as torchvision's ColorJitter (brightness/contrast/saturation ``U(1-s, 1+s)``,
    hue shift ``U(-s, s)`` turns); applied in that fixed order (torchvision shuffles it),
    hue as a rotation of the chroma plane in YIQ space (an approximation of HSV hue).
    1-channel images get brightness and contrast only.

    Examples:
        >>> color_jitter(torch.rand(8, 3, 4, 4), (0.4, 0.4, 0.4, 0.1), 0.8).shape
        torch.Size([8, 3, 4, 4])
    """
    n, channels = images.shape[:2]
    dev = images.device
    apply = torch.rand(n, generator=generator, device=dev) < p

    def factor(strength: float) -> torch.Tensor:
        f = _uniform(n, max(0.0, 1 - strength), 1 + strength, generator, images)
        return torch.where(apply, f, torch.ones_like(f)).view(n, 1, 1, 1)

    brightness, contrast, saturation, hue = strengths
    x = (images * factor(brightness)).clamp_(0, 1)
    gray = _gray(x) if channels == 3 else x
    mean = gray.mean(dim=(1, 2, 3), keepdim=True)
    x = torch.lerp(mean, x, factor(contrast)).clamp_(0, 1)  # (x - mean) * c + mean
    if channels != 3:
        return x
    x = torch.lerp(_gray(x), x, factor(saturation)).clamp_(0, 1)
    if hue > 0:
        angle = _uniform(n, -hue, hue, generator, x) * (2 * math.pi) * apply
        x = _rotate_hue(x, angle)
    return x


# RGB <-> YIQ (NTSC) matrices; rotating the I-Q plane shifts hue. The inverse is computed once
# here, in float64, not per batch (an inverse on the device waits for it on some backends).
_RGB2YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))
_YIQ2RGB = tuple(
    tuple(row) for row in torch.linalg.inv(torch.tensor(_RGB2YIQ, dtype=torch.float64)).tolist()
)


def _rotate_hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    to_yiq = x.new_tensor(_RGB2YIQ)
    from_yiq = x.new_tensor(_YIQ2RGB)
    cos, sin = angle.cos(), angle.sin()
    rot = torch.zeros(len(angle), 3, 3, dtype=x.dtype, device=x.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2] = cos, -sin
    rot[:, 2, 1], rot[:, 2, 2] = sin, cos
    matrix = from_yiq @ rot @ to_yiq  # [N, 3, 3]
    return torch.bmm(matrix, x.flatten(2)).view_as(x).clamp_(0, 1)


def random_grayscale(
    images: torch.Tensor, p: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Replace each RGB image by its luma (kept 3-channel) with probability ``p``."""
    if images.shape[1] != 3 or p <= 0:
        return images
    pick = torch.rand(len(images), generator=generator, device=images.device) < p
    return torch.where(pick.view(-1, 1, 1, 1), _gray(images).expand_as(images), images)


class BatchAugment:
    """Make ``views`` augmented views of every image of a ``uint8`` batch, on its device.

    Examples:
        >>> aug = BatchAugment(AugmentParams(), size=28)
        >>> aug(torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8), views=2).shape
        torch.Size([16, 2, 1, 28, 28])
    """

    def __init__(self, params: AugmentParams, size: int) -> None:
        self.params = params
        self.size = size

    def __call__(
        self,
        images: torch.Tensor,
        views: int = 2,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """``uint8 [B, C, H, W]`` -> ``dtype`` ``[B, views, C, size, size]`` in ``[0, 1]``
        (float64 for a float64 model, so that its results do not depend on float32
        rounding)."""
        b, c = images.shape[:2]
        x = images.to(dtype).div_(255)
        x = x.repeat_interleave(views, dim=0)  # view v of sample i at row i * views + v
        p = self.params
        if not p.enabled:
            x = resize_square(x, self.size)
        else:
            x = resized_crop_flip(x, self.size, p.crop_scale, p.crop_ratio, p.flip_p, generator)
        return self.colour(x, generator).view(b, views, c, self.size, self.size)

    def colour(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Colour jitter and random grayscale of ``[0, 1]`` float images (any leading dims):
        the colour part of the augmentation, for views whose crop was made elsewhere."""
        p = self.params
        if not p.enabled:
            return images
        x = images.reshape(-1, *images.shape[-3:])
        if p.jitter_p > 0 and any(s > 0 for s in p.jitter):
            x = color_jitter(x, p.jitter, p.jitter_p, generator)
        return random_grayscale(x, p.grayscale_p, generator).view(images.shape)


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """Eval view of a float batch: resize the short side to ``size`` and centre-crop.

    Identity when the images already have that size (the usual case for small data).
    """
    height, width = images.shape[-2:]
    if height == width == size:
        return images
    scale = size / min(height, width)
    new = (max(size, round(height * scale)), max(size, round(width * scale)))
    images = F.interpolate(images, size=new, mode="bilinear", antialias=True, align_corners=False)
    top, left = (new[0] - size) // 2, (new[1] - size) // 2
    return images[..., top : top + size, left : left + size]


def view_transform(params: AugmentParams, size: int) -> Callable[..., torch.Tensor]:
    """Per-sample crop and flip of a decoded file, for crops from the original resolution
    (:class:`CropFlip`; the eval view when augmentation is off); :meth:`BatchAugment.colour`
    adds the colour part on the device.

    Examples:
        >>> t = view_transform(AugmentParams(), 32)
        >>> t(torch.randint(0, 256, (3, 50, 40), dtype=torch.uint8)).shape
        torch.Size([3, 32, 32])
    """
    if not params.enabled:
        return eval_transform(size)
    return CropFlip(params, size)


class CropFlip:
    """Random resized crop + horizontal flip of one decoded image, resampled in Pillow.

    The crop box follows torchvision's ``RandomResizedCrop`` (up to 10 tries of area
    fraction ``U(scale)`` and log-uniform aspect ratio, else the central crop of the
    nearest allowed ratio), drawn from one ``torch.rand`` call per view; it is cut out and
    resized with Pillow's antialiased bilinear filter, which torchvision's
    ``antialias=True`` reproduces on tensors. Pillow makes both views of a quarter-scale
    JPEG in a fraction of its decode time, where torchvision's per-sample transforms on
    tensors took as long as the decode.

    Examples:
        >>> crop = CropFlip(AugmentParams(), 16)
        >>> crop(torch.zeros(1, 30, 20, dtype=torch.uint8)).shape
        torch.Size([1, 16, 16])
    """

    def __init__(self, params: AugmentParams, size: int) -> None:
        self.scale = (params.crop_scale[0], params.crop_scale[1])
        self.log_ratio = (math.log(params.crop_ratio[0]), math.log(params.crop_ratio[1]))
        self.flip_p = params.flip_p
        self.size = size

    def __call__(self, image: Image.Image | torch.Tensor) -> torch.Tensor:
        """``uint8 [C, S, S]`` view of a Pillow image or a ``uint8 [C, H, W]`` tensor."""
        from PIL import Image

        if isinstance(image, torch.Tensor):
            image = Image.fromarray(image.permute(1, 2, 0).squeeze(2).numpy())
        draws = torch.rand(_CROP_TRIES * 2 + 3).tolist()
        top, left, height, width = self.box(image.height, image.width, draws)
        view = image.crop((left, top, left + width, top + height))
        view = view.resize((self.size, self.size), Image.Resampling.BILINEAR)
        if draws[-1] < self.flip_p:
            view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return pil_to_tensor(view)

    def box(self, height: int, width: int, draws: list[float]) -> tuple[int, int, int, int]:
        """``(top, left, height, width)`` of a crop of a ``height x width`` image, from
        ``2 * tries + 2`` uniform draws in ``[0, 1)`` (torchvision's algorithm)."""
        area = height * width
        (low, high), (log_low, log_high) = self.scale, self.log_ratio
        for k in range(_CROP_TRIES):
            target = area * (low + (high - low) * draws[2 * k])
            aspect = math.exp(log_low + (log_high - log_low) * draws[2 * k + 1])
            w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(draws[2 * _CROP_TRIES] * (height - h + 1))
                return top, int(draws[2 * _CROP_TRIES + 1] * (width - w + 1)), h, w
        in_ratio, min_ratio, max_ratio = width / height, math.exp(log_low), math.exp(log_high)
        if in_ratio < min_ratio:
            w, h = width, round(width / min_ratio)
        elif in_ratio > max_ratio:
            w, h = round(height * max_ratio), height
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w


#: Tries of torchvision's RandomResizedCrop before it falls back to a central crop.
_CROP_TRIES = 10


def eval_resize_side(size: int) -> int:
    """Short side files are resized to before the eval view's centre crop of ``size``."""
    return round(size * 8 / 7)


def eval_transform(size: int) -> Callable[..., torch.Tensor]:
    """Per-sample eval view for files: resize the short side to ``size * 8/7``, centre crop
    (a decoded Pillow image becomes a tensor first, so the pixels are those of tensor
    resizing)."""
    from PIL import Image
    from torchvision.transforms import v2

    pipeline: Callable[..., torch.Tensor] = v2.Compose(
        [
            v2.Lambda(pil_to_tensor, Image.Image),
            v2.Resize(eval_resize_side(size), antialias=True),
            v2.CenterCrop(size),
        ]
    )
    return pipeline


class MultiView:
    """Apply a random per-sample transform ``views`` times and stack: ``[views, C, S, S]``."""

    def __init__(self, transform: Callable[..., torch.Tensor], views: int) -> None:
        self.transform = transform
        self.views = views

    def __call__(self, image: Image.Image | torch.Tensor) -> torch.Tensor:
        return torch.stack([self.transform(image) for _ in range(self.views)])
