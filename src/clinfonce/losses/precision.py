"""The precision losses are computed in: never below float32, whatever autocast says.

Under mixed precision the encoder runs in bfloat16 or float16, but a contrastive loss sums
exponentials of logits of order ``1 / temperature``: in 8 bits of mantissa its value is off in
the third digit. Losses therefore take their inputs up to float32 (a float64 model stays in
float64, which is what makes results reproducible across CPUs: see the golden test) and run
with autocast off, so that no matrix product inside is cast back down.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32 if its dtype is narrower (float16, bfloat16, integers), else as is.

    Examples:
        >>> at_least_float32(torch.ones(2, dtype=torch.bfloat16)).dtype
        torch.float32
        >>> at_least_float32(torch.ones(2, dtype=torch.float64)).dtype
        torch.float64
    """
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Autocast off for ``device``'s type inside the block (a no-op when it is off already).

    Examples:
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     with full_precision(torch.device("cpu")):
        ...         (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.float32
    """
    with torch.autocast(device_type=device.type, enabled=False):
        yield
