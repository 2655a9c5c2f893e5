"""Top-k accuracy against a plain loop, including ties and the k >= classes case."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clinfonce.evaluation import topk_accuracy, topk_correct


def topk_reference(scores: np.ndarray, labels: np.ndarray, k: int) -> int:
    """Loop: a row is correct when fewer than k other classes score at least its label's."""
    correct = 0
    for row, label in zip(scores.tolist(), labels.tolist(), strict=True):
        at_least = sum(1 for c, v in enumerate(row) if c != label and v >= row[label])
        correct += at_least < k
    return correct


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_topk_matches_loop_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # few distinct values: many ties, as zero-vote classes in a kNN vote
    scores = rng.integers(0, 4, size=(50, 7)).astype(np.float64)
    labels = rng.integers(0, 7, size=50)
    ks = (1, 2, 3, 5, 7, 9)
    got = topk_correct(torch.from_numpy(scores), torch.from_numpy(labels), ks)
    assert got == {k: topk_reference(scores, labels, k) for k in ks}
    acc = topk_accuracy(scores, labels, ks)
    assert acc == {k: got[k] / 50 for k in ks}
    assert acc[7] == acc[9] == 1.0  # k >= classes counts every row


def test_topk_continuous_scores_match_argsort() -> None:
    rng = np.random.default_rng(3)
    scores, labels = rng.normal(size=(40, 12)), rng.integers(0, 12, size=40)
    order = np.argsort(-scores, axis=1)
    for k in (1, 5):
        expected = sum(int(label in row[:k]) for row, label in zip(order, labels, strict=True))
        assert topk_correct(scores, labels, (k,))[k] == expected


def test_ties_never_help_the_label() -> None:
    scores = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [5.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    # label 0 tied with five others: rank 5, only k = 6 counts it; label 1 has no vote
    assert topk_correct(scores, torch.tensor([0, 1]), (1, 5, 6)) == {1: 0, 5: 0, 6: 2}


def test_topk_errors() -> None:
    with pytest.raises(ValueError, match=r"labels must lie in 0..2"):
        topk_correct(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="k >= 1"):
        topk_correct(torch.zeros(2, 3), torch.tensor([0, 1]), (0,))
    with pytest.raises(ValueError, match=r"\[Q, C\]"):
        topk_correct(torch.zeros(3), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="empty"):
        topk_accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
