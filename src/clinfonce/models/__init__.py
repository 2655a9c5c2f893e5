"""Encoders and projection heads.

Examples:
    >>> from clinfonce.models import build_encoder, ProjectionHead
    >>> encoder = build_encoder("small-cnn", in_channels=1)
    >>> head = ProjectionHead(encoder.out_dim, 256, 128)
"""

from clinfonce.models.encoders import (
    ENCODERS,
    ResNetEncoder,
    SmallCNN,
    build_encoder,
    feature_dim,
)
from clinfonce.models.heads import ProjectionHead

__all__ = [
    "ENCODERS",
    "ProjectionHead",
    "ResNetEncoder",
    "SmallCNN",
    "build_encoder",
    "feature_dim",
]
