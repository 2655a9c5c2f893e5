"""Top-k accuracy from class scores, with a deterministic tie rule."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def topk_correct(
    scores: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    ks: Sequence[int] = (1, 5),
) -> dict[int, int]:
    """How many rows have their label among the ``k`` best-scored classes, for each ``k``.

    Ties count against the label: its rank is the number of *other* classes scoring at
    least as high. A query whose class got no kNN vote is therefore never "top-5 correct"
    just because fewer than five classes got votes and an arbitrary order of the zero-vote
    classes happened to put its class first (the result does not depend on class order).
    ``k`` at least the number of classes counts every row.

    Args:
        scores: ``[Q, C]`` class scores (higher is better).
        labels: ``[Q]`` classes ``0..C-1``.
        ks: the ``k`` values.

    Examples:
        >>> s = torch.tensor([[0.1, 0.5, 0.4], [0.3, 0.3, 0.4]])
        >>> topk_correct(s, torch.tensor([2, 1]), ks=(1, 2, 3))
        {1: 0, 2: 1, 3: 2}
    """
    s = torch.as_tensor(scores)
    y = torch.as_tensor(labels).long().to(s.device)
    if s.dim() != 2 or y.shape != s.shape[:1]:
        raise ValueError(
            f"scores must be [Q, C] and labels [Q]; got {tuple(s.shape)} and {tuple(y.shape)}"
        )
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= s.shape[1]):
        raise ValueError(f"labels must lie in 0..{s.shape[1] - 1} (one column of scores each)")
    if any(k < 1 for k in ks):
        raise ValueError(f"top-k needs k >= 1, got {list(ks)}")
    rank = (s >= s.gather(1, y[:, None])).sum(1) - 1  # other classes at least as good
    return {k: int((rank < k).sum()) for k in ks}


def topk_accuracy(
    scores: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    ks: Sequence[int] = (1, 5),
) -> dict[int, float]:
    """Fraction of rows whose label is among the ``k`` best-scored classes (see
    :func:`topk_correct` for the tie rule).

    Examples:
        >>> topk_accuracy(torch.tensor([[0.9, 0.1], [0.2, 0.8]]), torch.tensor([0, 0]), (1,))
        {1: 0.5}
    """
    n = len(labels)
    if n == 0:
        raise ValueError("top-k accuracy of an empty set of queries is undefined")
    return {k: c / n for k, c in topk_correct(scores, labels, ks).items()}
