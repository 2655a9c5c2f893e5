"""Image decoding with errors that name the file and the table row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def decode_image(path: Path, channels: int, *, row: int | None = None) -> torch.Tensor:
    """Decode an image file (PNG, JPEG, ... via Pillow) to ``uint8 [channels, H, W]``.

    Raises:
        ValueError: the file is missing or cannot be decoded; the message names the file
            and, when given, the metadata row.

    Examples:
        >>> decode_image(Path("cat.png"), 3, row=7).shape  # doctest: +SKIP
        torch.Size([3, 32, 32])
    """
    from PIL import Image

    where = f"image {path}" + (f" (metadata row {row})" if row is not None else "")
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB" if channels == 3 else "L"))
    except (OSError, ValueError) as exc:  # missing, truncated or not an image
        raise ValueError(
            f"cannot read {where}: {exc}; fix or remove the file, or set "
            "data.options.missing=skip (with data.options.cache=true) to drop unreadable rows"
        ) from exc
    pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
    return torch.from_numpy(pixels.transpose(2, 0, 1).copy())
