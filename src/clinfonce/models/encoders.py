"""Encoders (image -> feature vector): torchvision ResNets and a small CNN for CPU runs."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Four conv3x3-BN-ReLU blocks, max-pool after the first two, global average pool.

    The docs/method.md §8 encoder: widths 16, 32, 64, 128 give a 128-d feature.

    Examples:
        >>> SmallCNN(in_channels=1)(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 128])
    """

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for i, width in enumerate(widths):
            layers += [
                nn.Conv2d(previous, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            if i < 2:
                layers.append(nn.MaxPool2d(2))
            previous = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        self.out_dim: int = previous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


class ResNetEncoder(nn.Module):
    """A torchvision ResNet (random init) without its classifier.

    Args:
        name: ``resnet18``, ``resnet34`` or ``resnet50``.
        in_channels: input channels (the first conv is rebuilt when not 3).
        small_stem: the CIFAR-style stem for 28-32 px images: a 3x3 stride-1 first conv and
            no max-pool, so the last stage still sees a 4x4 map.

    Examples:
        >>> net = ResNetEncoder("resnet18", in_channels=1, small_stem=True)
        >>> net(torch.zeros(2, 1, 32, 32)).shape, net.out_dim
        (torch.Size([2, 512]), 512)
    """

    def __init__(self, name: str, in_channels: int = 3, small_stem: bool = False) -> None:
        super().__init__()
        from torchvision import models

        builders: dict[str, Callable[..., nn.Module]] = {
            "resnet18": models.resnet18,
            "resnet34": models.resnet34,
            "resnet50": models.resnet50,
        }
        net = builders[name](weights=None)
        if small_stem:
            net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        elif in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        assert isinstance(net.fc, nn.Linear)
        self.out_dim: int = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


ENCODERS: tuple[str, ...] = ("small-cnn", "resnet18", "resnet34", "resnet50")


def build_encoder(name: str, in_channels: int = 3, small_stem: bool = False) -> nn.Module:
    """Build an encoder by name; its feature size is ``encoder.out_dim``.

    Examples:
        >>> build_encoder("small-cnn", in_channels=3).out_dim
        128
    """
    if name == "small-cnn":
        return SmallCNN(in_channels)
    if name in ENCODERS:
        return ResNetEncoder(name, in_channels, small_stem)
    raise ValueError(f"unknown model.encoder {name!r}; valid encoders: {', '.join(ENCODERS)}")


def feature_dim(encoder: nn.Module) -> int:
    """The feature size of an encoder built by :func:`build_encoder`."""
    return int(getattr(encoder, "out_dim"))  # noqa: B009
