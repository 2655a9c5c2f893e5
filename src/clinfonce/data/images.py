"""Image decoding with errors that name the file and the table row, and the report of
missing or unreadable image files (an error, or rows skipped with a warning).

One resize rule serves every path that stores images at the training resolution (the
in-memory cache and the prepared array): the shorter side is resized to the target with
antialiasing, then the centre square is cropped. JPEGs are decoded at a reduced scale first
(Pillow's draft mode picks the largest 1/2, 1/4 or 1/8 scale that keeps both sides at least
the size asked for), which makes decoding large originals several times faster.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from PIL import Image


def decode_image(
    path: Path, channels: int, *, row: int | None = None, min_side: int | None = None
) -> torch.Tensor:
    """Decode an image file (PNG, JPEG, ... via Pillow) to ``uint8 [channels, H, W]``.

    Args and errors as :func:`open_image`.

    Examples:
        >>> decode_image(Path("cat.png"), 3, row=7).shape  # doctest: +SKIP
        torch.Size([3, 32, 32])
    """
    return pil_to_tensor(open_image(path, channels, row=row, min_side=min_side))


def open_image(
    path: Path, channels: int, *, row: int | None = None, min_side: int | None = None
) -> Image.Image:
    """Decode an image file to a Pillow image in RGB (``channels`` 3) or ``L`` mode (1),
    for transforms that resample in Pillow without a tensor in between.

    Args:
        path: the image file.
        channels: 3 decodes as RGB, 1 as grayscale.
        row: the metadata row, named in errors.
        min_side: when given, a JPEG may be decoded at a reduced scale whose sides stay at
            least this long (other formats decode at full size).

    Raises:
        ValueError: the file is missing or cannot be decoded; the message names the file
            and, when given, the metadata row.
    """
    from PIL import Image

    where = f"image {path}" + (f" (metadata row {row})" if row is not None else "")
    mode = "RGB" if channels == 3 else "L"
    try:
        with Image.open(path) as image:
            if min_side is not None:
                image.draft(mode, (min_side, min_side))
            converted: Image.Image = eight_bit(image).convert(mode)
            return converted
    except (OSError, ValueError) as exc:  # missing, truncated or not an image
        raise ValueError(
            f"cannot read {where}: {exc}; fix or remove the file, or set "
            "data.options.missing=skip (with data.options.cache or data.options.prepare) to drop "
            "unreadable rows"
        ) from exc


def eight_bit(image: Image.Image) -> Image.Image:
    """A one-channel image of more than 8 bits per pixel brought to 8 bits by its real range.

    Pillow's own conversion clips such pixels to 0-255: a 16-bit PNG comes out nearly
    white, a float TIFF of values in [0, 1] black. Here 16-bit pixels are scaled from
    0-65535 (32-bit integers too, when they fit 16 bits), float pixels from [0, 1] (or
    taken as they are when they lie in [0, 255]); other images pass unchanged.

    Raises:
        ValueError: pixels outside those ranges (or not finite), which no scale fits.

    Examples:
        >>> from PIL import Image
        >>> sixteen = Image.fromarray(np.full((2, 2), 65535, dtype=np.uint16))
        >>> np.asarray(eight_bit(sixteen)).max()
        np.uint8(255)
    """
    from PIL import Image

    if not image.mode.startswith(("I", "F")):
        return image
    pixels = np.asarray(image).astype(np.float64)
    low, high = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 0.0)
    if image.mode.startswith("I") and low >= 0 and high <= 65535:
        scale = 255 / 65535
    elif image.mode == "F" and low >= 0 and high <= 1:
        scale = 255.0
    elif image.mode == "F" and low >= 0 and high <= 255:
        scale = 1.0
    else:
        raise ValueError(
            f"{image.mode} pixels from {low:g} to {high:g} fit no 8-bit scale (16-bit: "
            "0-65535, float: 0-1 or 0-255); save the image as 8- or 16-bit"
        )
    return Image.fromarray(np.rint(pixels * scale).astype(np.uint8))


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """``uint8 [C, H, W]`` copy of a Pillow image (``L`` mode gives one channel)."""
    pixels = np.asarray(image)
    pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
    return torch.from_numpy(pixels.transpose(2, 0, 1).copy())


def decode_resized(path: Path, channels: int, size: int, *, row: int | None = None) -> torch.Tensor:
    """Decode an image and bring it to ``uint8 [channels, size, size]`` by the module's rule
    (reduced-scale JPEG decode, shorter side to ``size``, centre crop).

    Examples:
        >>> decode_resized(Path("photo.jpg"), 3, 64).shape  # doctest: +SKIP
        torch.Size([3, 64, 64])
    """
    from torchvision.transforms.v2 import functional as tvf

    image = decode_image(path, channels, row=row, min_side=size)
    image = tvf.resize(image, [size], antialias=True)
    resized: torch.Tensor = tvf.center_crop(image, [size, size])
    return resized


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
