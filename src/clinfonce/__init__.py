"""clinfonce: weakly-supervised contrastive learning with auxiliary-information clusters.

Two stages: :mod:`clinfonce.clusters` turns auxiliary information into one cluster id per
sample, and :mod:`clinfonce.training` trains an encoder with the Cl-InfoNCE loss
(:mod:`clinfonce.losses`) on those clusters. :func:`load_encoder` opens a finished run's
encoder to embed new images (docs/backbones.md).

Examples:
    >>> import clinfonce
    >>> encoder = clinfonce.load_encoder("runs/photos")  # doctest: +SKIP
    >>> encoder.embed(["a.jpg", "b.jpg"]).shape  # doctest: +SKIP
    (2, 512)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clinfonce.runs.encoder import load_encoder

__version__ = "0.1.0"
__all__ = ["__version__", "load_encoder"]


def __getattr__(name: str) -> Any:
    """``clinfonce.load_encoder``, imported on first use: ``import clinfonce`` stays light
    (no torch) for the command line's start."""
    if name == "load_encoder":
        from clinfonce.runs.encoder import load_encoder

        return load_encoder
    raise AttributeError(f"module 'clinfonce' has no attribute {name!r}")
