"""Encoders and projection heads.

Examples:
    >>> from clinfonce.models import build_encoder, ProjectionHead
    >>> encoder = build_encoder("small-cnn", in_channels=1)
    >>> head = ProjectionHead(encoder.out_dim, 256, 128)
"""

from clinfonce.models.encoders import (
    SMALL_CNN,
    TIMM_PREFIX,
    SmallCNN,
    TimmEncoder,
    TorchvisionEncoder,
    build_encoder,
    check_encoder,
    feature_dim,
    fetch_pretrained,
    load_encoder_state,
    pretrained_file,
    pretrained_normalisation,
    uses_small_stem,
)
from clinfonce.models.heads import ProjectionHead

__all__ = [
    "SMALL_CNN",
    "TIMM_PREFIX",
    "ProjectionHead",
    "SmallCNN",
    "TimmEncoder",
    "TorchvisionEncoder",
    "build_encoder",
    "check_encoder",
    "feature_dim",
    "fetch_pretrained",
    "load_encoder_state",
    "pretrained_file",
    "pretrained_normalisation",
    "uses_small_stem",
]
