"""Encoders and heads: shapes, stems, channel options."""

from __future__ import annotations

import pytest
import torch

from clinfonce.models import ProjectionHead, SmallCNN, build_encoder, feature_dim


def test_small_cnn_matches_the_reference_layout() -> None:
    net = SmallCNN(in_channels=1)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net.modules()) == 2
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 128)


@pytest.mark.parametrize("small_stem", [True, False])
def test_resnet18_stems(small_stem: bool) -> None:
    net = build_encoder("resnet18", in_channels=1, small_stem=small_stem)
    assert feature_dim(net) == 512
    assert net(torch.zeros(2, 1, 32, 32)).shape == (2, 512)
    assert net.net.conv1.kernel_size == ((3, 3) if small_stem else (7, 7))  # type: ignore[union-attr]


def test_head_and_unknown_encoder() -> None:
    head = ProjectionHead(128, 64, 32)
    assert head(torch.zeros(5, 128)).shape == (5, 32)
    with pytest.raises(ValueError, match="valid encoders: small-cnn"):
        build_encoder("vgg")
