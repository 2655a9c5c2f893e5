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


class Uniforms:
    """The uniform ``[0, 1)`` draws of an augmentation, one ``[n]`` column per call, in order.

    Eagerly they come from a generator, one ``torch.rand`` call each. A compiled step cannot
    take a generator, so its draws are made first (:meth:`BatchAugment.draw`, eagerly, the
    same calls) and the augmentation reads them from that ``[n, k]`` table: the same views
    either way.

    Args:
        n: images (rows) per column.
        source: a generator (None: the global one) or a table of draws ``[n, k]``.
        device: where eager draws are made.
    """

    def __init__(
        self,
        n: int,
        source: torch.Generator | torch.Tensor | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.n, self.source, self.device = n, source, device
        self.used = 0

    def __call__(self) -> torch.Tensor:
        """The next ``[n]`` float32 draws."""
        if isinstance(self.source, torch.Tensor):
            column = self.source[:, self.used]
        else:
            column = torch.rand(self.n, generator=self.source, device=self.device)
        self.used += 1
        return column

    def between(self, low: float, high: float, like: torch.Tensor) -> torch.Tensor:
        """The next draws as ``U(low, high)`` in ``like``'s dtype. Drawn in float32 whatever
        the dtype (so a float64 model sees the views a float32 one does); everything after
        the draw is computed in the images' dtype."""
        return self().to(like.dtype) * (high - low) + low


def _uniforms(source: torch.Generator | Uniforms | None, images: torch.Tensor) -> Uniforms:
    return source if isinstance(source, Uniforms) else Uniforms(len(images), source, images.device)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """Luma ``[N, 1, H, W]`` of RGB ``[N, 3, H, W]``. The weights stay Python numbers: a
    constant tensor would be copied to the device, and wait for it, on every batch."""
    red, green, blue = _LUMA
    return x[:, 0:1] * red + x[:, 1:2] * green + x[:, 2:3] * blue


def resized_crop_flip(
    images: torch.Tensor,
    size: int,
    scale: tuple[float, float] | list[float],
    ratio: tuple[float, float] | list[float],
    flip_p: float,
    generator: torch.Generator | Uniforms | None = None,
) -> torch.Tensor:
    """Independent random resized crop + horizontal flip of every image, in one resampling.

    The crop covers a fraction ``U(scale)`` of the area with log-uniform aspect ratio; sides
    that would exceed the image are clamped to it (torchvision re-draws instead). Bilinear
    sampling through ``affine_grid``/``grid_sample``.

    Args:
        images: float ``[N, C, H, W]``.
        size: output side.
        scale, ratio, flip_p: as :class:`AugmentParams`.
        generator: random source (e.g. seeded per step for exact resumes), or the
            :class:`Uniforms` of a whole augmentation.

    Returns:
        float ``[N, C, size, size]``.

    Examples:
        >>> out = resized_crop_flip(torch.rand(4, 3, 32, 32), 24, (0.4, 1.0), (0.75, 1.33), 0.5)
        >>> out.shape
        torch.Size([4, 3, 24, 24])
    """
    n, _, height, width = images.shape
    draw = _uniforms(generator, images)
    area = draw.between(scale[0], scale[1], images)
    log_ratio = draw.between(math.log(ratio[0]), math.log(ratio[1]), images)
    aspect = log_ratio.exp()
    # Crop sides as fractions of the image's width and height.
    w = (area * aspect * height / width).sqrt().clamp(max=1.0)
    h = (area / aspect * width / height).sqrt().clamp(max=1.0)
    cx = draw.between(-1, 1, images) * (1 - w)
    cy = draw.between(-1, 1, images) * (1 - h)
    flip = draw() < flip_p
    sign = 1.0 - 2.0 * flip.to(images.dtype)
    zero = torch.zeros_like(w)
    theta = torch.stack([w * sign, zero, cx, zero, h, cy], dim=1).view(n, 2, 3)
    grid = F.affine_grid(theta, [n, images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def color_jitter(
    images: torch.Tensor,
    strengths: tuple[float, float, float, float] | list[float],
    p: float,
    generator: torch.Generator | Uniforms | None = None,
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
    draw = _uniforms(generator, images)
    apply = draw() < p

    def factor(strength: float) -> torch.Tensor:
        f = draw.between(max(0.0, 1 - strength), 1 + strength, images)
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
        angle = draw.between(-hue, hue, x) * (2 * math.pi) * apply
        x = _rotate_hue(x, angle)
    return x


# RGB -> YIQ (NTSC); rotating the I-Q plane by an angle a shifts hue. In RGB that rotation
# is the matrix YIQ^-1 R(a) YIQ = FIXED + cos(a) COS + sin(a) SIN, three constant matrices
# computed once here in float64, so a batch needs no inverse and no constant on the device
# (either would wait for the device).
_RGB2YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def _hue_basis() -> tuple[list[float], list[float], list[float]]:
    """Row-major entries of FIXED, COS and SIN (see above)."""
    to_yiq = torch.tensor(_RGB2YIQ, dtype=torch.float64)
    from_yiq = torch.linalg.inv(to_yiq)
    fixed = torch.diag(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    cos = torch.diag(torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64))
    sin = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    fixed_rgb, cos_rgb, sin_rgb = (from_yiq @ m @ to_yiq for m in (fixed, cos, sin))
    return fixed_rgb.flatten().tolist(), cos_rgb.flatten().tolist(), sin_rgb.flatten().tolist()


_HUE_FIXED, _HUE_COS, _HUE_SIN = _hue_basis()


def _rotate_hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    cos, sin = angle.cos(), angle.sin()
    entries = [
        cos * c + sin * s + f for f, c, s in zip(_HUE_FIXED, _HUE_COS, _HUE_SIN, strict=True)
    ]
    matrix = torch.stack(entries, dim=1).view(-1, 3, 3)  # [N, 3, 3]
    return torch.bmm(matrix, x.flatten(2)).view_as(x).clamp_(0, 1)


def random_grayscale(
    images: torch.Tensor, p: float, generator: torch.Generator | Uniforms | None = None
) -> torch.Tensor:
    """Replace each RGB image by its luma (kept 3-channel) with probability ``p``."""
    if images.shape[1] != 3 or p <= 0:
        return images
    pick = _uniforms(generator, images)() < p
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
        generator: torch.Generator | torch.Tensor | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """``uint8 [B, C, H, W]`` -> ``dtype`` ``[B, views, C, size, size]`` in ``[0, 1]``
        (float64 for a float64 model, so that its results do not depend on float32
        rounding). ``generator`` may be the table of :meth:`draw` instead."""
        b, c = images.shape[:2]
        x = images.to(dtype).div_(255)
        x = x.repeat_interleave(views, dim=0)  # view v of sample i at row i * views + v
        draw = Uniforms(len(x), generator, x.device)
        p = self.params
        if not p.enabled:
            x = resize_square(x, self.size)
        else:
            x = resized_crop_flip(x, self.size, p.crop_scale, p.crop_ratio, p.flip_p, draw)
        return self.colour(x, draw).view(b, views, c, self.size, self.size)

    def colour(
        self,
        images: torch.Tensor,
        generator: torch.Generator | torch.Tensor | Uniforms | None = None,
    ) -> torch.Tensor:
        """Colour jitter and random grayscale of ``[0, 1]`` float images (any leading dims):
        the colour part of the augmentation, for views whose crop was made elsewhere."""
        p = self.params
        if not p.enabled:
            return images
        x = images.reshape(-1, *images.shape[-3:])
        draw = (
            generator if isinstance(generator, Uniforms) else Uniforms(len(x), generator, x.device)
        )
        if self.jitters:
            x = color_jitter(x, p.jitter, p.jitter_p, draw)
        return random_grayscale(x, p.grayscale_p, draw).view(images.shape)

    @property
    def jitters(self) -> bool:
        """Whether the colour part includes the jitter."""
        return self.params.jitter_p > 0 and any(s > 0 for s in self.params.jitter)

    def draw_count(self, channels: int, crop: bool) -> int:
        """Uniform columns one image's views consume: the crop's five (area, ratio, centre,
        flip) when ``crop``, the jitter's (apply, brightness, contrast, and for RGB
        saturation and hue), random grayscale's one (RGB)."""
        p = self.params
        if not p.enabled:
            return 0
        rgb = channels == 3
        jitter = 3 + (1 + (p.jitter[3] > 0) if rgb else 0) if self.jitters else 0
        return 5 * crop + jitter + (rgb and p.grayscale_p > 0)

    def draw(
        self,
        rows: int,
        channels: int,
        crop: bool,
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
    ) -> torch.Tensor:
        """The float32 ``[rows, k]`` draws of an augmentation of ``rows`` views, made eagerly
        with the calls that :meth:`__call__` (``crop``) or :meth:`colour` would make: pass
        the table as their ``generator`` for the same views, e.g. inside a compiled step.

        Examples:
            >>> aug = BatchAugment(AugmentParams(), size=8)
            >>> images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
            >>> table = aug.draw(8, 3, crop=True, generator=torch.Generator().manual_seed(0))
            >>> table.shape
            torch.Size([8, 11])
            >>> eager = aug(images, 2, torch.Generator().manual_seed(0))
            >>> torch.equal(aug(images, 2, table), eager)
            True
        """
        draw = Uniforms(rows, generator, device)
        columns = [draw() for _ in range(self.draw_count(channels, crop))]
        if not columns:
            return torch.empty(rows, 0, device=device)
        return torch.stack(columns, dim=1)


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
