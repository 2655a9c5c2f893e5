"""Projection heads (docs/method.md §1): the loss reads the head, evaluation reads the encoder."""

from __future__ import annotations

import torch
from torch import nn


class ProjectionHead(nn.Module):
    """``Linear(in, hidden) -> ReLU -> Linear(hidden, out)``; the loss L2-normalises it.

    Examples:
        >>> ProjectionHead(128, 256, 64)(torch.zeros(3, 128)).shape
        torch.Size([3, 64])
    """

    def __init__(self, in_dim: int, hidden_dim: int = 2048, out_dim: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out
