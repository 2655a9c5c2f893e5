"""Weighted kNN and the linear probes against plain loops and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from clinfonce.evaluation import (
    ProbeResult,
    extract_features,
    knn_accuracy,
    knn_evaluate,
    knn_predict,
    linear_probe,
    logistic_probe,
    sgd_probe,
)


def knn_reference(bank, labels, queries, k, temperature, classes):  # type: ignore[no-untyped-def]
    """Float64 loop: cosine similarities, top-k, exp(sim / T) votes per class."""
    scores = np.zeros((len(queries), classes))
    for qi, q in enumerate(queries.tolist()):
        sims = []
        for bi, b in enumerate(bank.tolist()):
            dot = sum(x * y for x, y in zip(q, b, strict=True))
            norm = math.sqrt(sum(x * x for x in q)) * math.sqrt(sum(y * y for y in b))
            sims.append((dot / norm, bi))
        for sim, bi in sorted(sims, reverse=True)[:k]:
            scores[qi, int(labels[bi])] += math.exp(sim / temperature)
    return scores


def topk_loop(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of rows with fewer than k other classes scoring at least the label's score."""
    hits = [
        sum(1 for c, v in enumerate(row) if c != y and v >= row[y]) < k
        for row, y in zip(scores.tolist(), labels.tolist(), strict=True)
    ]
    return sum(hits) / len(hits)


def test_knn_matches_reference_loop() -> None:
    gen = torch.Generator().manual_seed(0)
    bank, queries = torch.randn(30, 4, generator=gen), torch.randn(7, 4, generator=gen)
    labels = torch.randint(0, 3, (30,), generator=gen)
    scores = knn_predict(bank, labels, queries, k=5, temperature=0.5, chunk_size=3)
    expected = knn_reference(bank.double(), labels, queries.double(), 5, 0.5, 3)
    np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("chunk_size", [None, 4])
def test_knn_evaluate_matches_loop_for_every_k(chunk_size: int | None) -> None:
    gen = torch.Generator().manual_seed(1)
    bank, queries = torch.randn(60, 5, generator=gen), torch.randn(25, 5, generator=gen)
    bank_labels = torch.randint(0, 8, (60,), generator=gen)
    query_labels = torch.randint(0, 8, (25,), generator=gen)
    got = knn_evaluate(
        bank,
        bank_labels,
        queries,
        query_labels,
        ks=(3, 20, 100),
        temperature=0.07,
        num_classes=8,
        chunk_size=chunk_size,
    )
    for k in (3, 20, 100):  # 100 > bank size: every bank sample votes
        ref = knn_reference(bank.double(), bank_labels, queries.double(), k, 0.07, 8)
        for t in (1, 5):
            assert got[k][t] == pytest.approx(topk_loop(ref, query_labels.numpy(), t)), (k, t)


def test_knn_hand_computed_temperature_and_top5() -> None:
    # unit directions at 0, +-60, 90, 180 and -120 degrees, at various lengths (normalised away)
    half, root = 0.5, math.sqrt(3) / 2
    bank = torch.tensor(
        [[-3.0, 0.0], [half, root], [0.0, 2.0], [5.0, 0.0], [half, -root], [-half, -root]]
    )
    bank_labels = torch.tensor([3, 0, 1, 2, 0, 4])
    queries = torch.tensor([[2.0, 0.0]] * 4)  # cosines: -1, .5, 0, 1, .5, -.5
    query_labels = torch.tensor([2, 0, 1, 3])
    t = 0.07
    # k = 4 neighbours: cos 1 (class 2), two cos .5 (class 0), cos 0 (class 1)
    expected = [2 * math.exp(0.5 / t), 1.0, math.exp(1 / t), 0.0, 0.0, 0.0]
    scores = knn_predict(bank, bank_labels, queries[:1], k=4, temperature=t, num_classes=6)
    np.testing.assert_allclose(scores[0].numpy(), expected, rtol=1e-5)
    assert 2 * math.exp(0.5 / t) < math.exp(1 / t)  # class 2 wins at T = 0.07 ...
    hot = knn_predict(bank, bank_labels, queries[:1], k=4, temperature=2.0, num_classes=6)
    assert 2 * math.exp(0.25) > math.exp(0.5) and int(hot.argmax()) == 0  # ... class 0 at T = 2
    # labels 2, 0, 1 rank 1st, 2nd, 3rd; label 3 got no vote: never top-k (6 classes > 5)
    got = knn_evaluate(
        bank,
        bank_labels,
        queries,
        query_labels,
        ks=(1, 4),
        temperature=t,
        topk=(1, 2, 3, 5),
        num_classes=6,
    )
    assert got[4] == {1: 0.25, 2: 0.5, 3: 0.75, 5: 0.75}
    assert got[1] == {1: 0.25, 2: 0.25, 3: 0.25, 5: 0.25}  # only the cos-1 neighbour votes
    assert knn_accuracy(bank, bank_labels, queries, query_labels, k=4) == 0.25


def test_knn_cold_temperature_does_not_overflow() -> None:
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.5]])
    scores = knn_predict(
        bank, torch.tensor([0, 1, 1]), torch.tensor([[1.0, 0.1]]), k=3, temperature=0.005
    )
    assert torch.isfinite(scores).all() and int(scores.argmax()) == 0


def test_knn_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        knn_predict(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), torch.ones(1, 2))
    with pytest.raises(ValueError, match="bank labels"):
        knn_predict(torch.ones(2, 2), torch.zeros(3, dtype=torch.long), torch.ones(1, 2))
    with pytest.raises(ValueError, match="dimension"):
        knn_predict(torch.ones(2, 2), torch.zeros(2, dtype=torch.long), torch.ones(1, 3))
    with pytest.raises(ValueError, match="unlabelled"):
        knn_predict(torch.ones(2, 2), torch.tensor([0, -1]), torch.ones(1, 2))
    with pytest.raises(ValueError, match="temperature"):
        knn_predict(torch.ones(2, 2), torch.tensor([0, 1]), torch.ones(1, 2), temperature=0)


def logistic_reference_weight(x: list[float], c: float) -> tuple[float, float]:
    """Newton's method for sklearn's binary objective 0.5 w^2 + C sum log(1 + exp(-s w z))
    on data symmetric about 0 (labels s = sign(x), so the intercept is 0), z = x / std(x)."""
    std = math.sqrt(sum(v * v for v in x) / len(x))
    z = [v / std for v in x]
    w = 0.0
    for _ in range(50):
        grad, hess = w, 1.0
        for zi in z:
            margin = abs(zi)  # s_i z_i
            p = 1 / (1 + math.exp(w * margin))  # sigma(-w s z)
            grad -= c * margin * p
            hess += c * margin * margin * p * (1 - p)
        w -= grad / hess
    return w, std


def test_logistic_probe_hand_computed_symmetric_case() -> None:
    x = [-2.0, -1.0, 1.0, 2.0]
    w, std = logistic_reference_weight(x, c=1.0)
    x_test = np.array([[-1.5], [0.3], [3.0]])
    result = logistic_probe(
        np.array(x)[:, None],
        np.array([0, 0, 1, 1]),
        x_test,
        np.array([0, 1, 1]),
        cs=(1.0,),
        tol=1e-10,
    )
    expected = [1 / (1 + math.exp(-w * v / std)) for v in x_test[:, 0]]
    np.testing.assert_allclose(result.scores[:, 1], expected, rtol=1e-6)
    np.testing.assert_allclose(result.scores.sum(1), 1.0)
    assert result.accuracy == {1: 1.0, 5: 1.0}
    assert result.params["c"] == 1.0 and result.params["weight_decay"] == 0.25
    assert result.params["validation"] == {}  # one C: nothing to pick


def test_logistic_probe_picks_c_on_validation_and_refits() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 10)) * 1.5
    y = rng.integers(0, 6, 300)
    x = centres[y] + rng.normal(size=(300, 10))
    result = logistic_probe(x[:200], y[:200], x[200:], y[200:], cs=(10.0, 0.001, 1.0), seed=3)
    val = {float(c): a for c, a in result.params["validation"].items()}
    assert sorted(val) == [0.001, 1.0, 10.0]
    best = max(sorted(val), key=lambda c: (val[c], -c))
    assert result.params["c"] == best
    refit = logistic_probe(x[:200], y[:200], x[200:], y[200:], cs=(best,))
    np.testing.assert_allclose(result.scores, refit.scores)  # refitted on all training rows
    scores = result.scores
    assert result.accuracy[1] == topk_loop(scores, y[200:], 1) >= 0.8
    assert result.accuracy[5] == topk_loop(scores, y[200:], 5)
    again = logistic_probe(x[:200], y[:200], x[200:], y[200:], cs=(10.0, 0.001, 1.0), seed=3)
    assert again.params == result.params


def test_linear_probe_separable_and_chance() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    assert linear_probe(x[:150], y[:150], x[150:], y[150:]) >= 0.95
    noise = rng.integers(0, 2, 200)
    assert linear_probe(x[:150], noise[:150], x[150:], noise[150:]) < 0.75
    with pytest.raises(ValueError, match="two classes"):
        linear_probe(x[:10], np.zeros(10), x[:10], np.zeros(10))
    with pytest.raises(ValueError, match="whole numbers"):
        linear_probe(x[:4], np.array([0, 0.5, 1, 1]), x[:4], np.array([0, 0, 1, 1]))
    with pytest.raises(ValueError, match="unlabelled"):
        linear_probe(x[:4], np.array([0, -1, 1, 1]), x[:4], np.array([0, 0, 1, 1]))


def test_sgd_probe_learns_separable_data_in_eval_mode() -> None:
    rng = np.random.default_rng(0)
    images = torch.tensor(rng.normal(size=(64, 3)), dtype=torch.float32)
    labels = (images[:, 0] > 0).long() + 2 * (images[:, 1] > 0).long()  # 4 quadrant classes
    data = [{"image": images[i], "label": labels[i]} for i in range(64)]
    encoder = torch.nn.BatchNorm1d(3)  # stands for a frozen encoder with running statistics
    encoder.train()
    modes: list[bool] = []

    def embed(x: torch.Tensor) -> torch.Tensor:
        modes.append(encoder.training)
        return x[:, :2]

    def jitter(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x * (1 + 0.01 * torch.randn(x.shape, generator=generator))

    def fit() -> ProbeResult:
        return sgd_probe(
            embed,
            data,
            images[:, :2],
            labels,
            num_classes=4,
            augment=jitter,
            epochs=12,
            lr=0.5,
            batch_size=16,
            seed=1,
            model=encoder,
        )

    result = fit()
    assert result.accuracy[1] >= 0.95 and result.accuracy[5] == 1.0
    assert not any(modes) and encoder.training  # eval while probing, restored after
    np.testing.assert_array_equal(fit().scores, result.scores)
    assert result.params["epochs"] == 12
    with pytest.raises(ValueError, match="epochs >= 1"):
        sgd_probe(embed, data, images[:, :2], labels, num_classes=4, epochs=0)


def test_extract_features_restores_mode_and_reads_labels() -> None:
    from clinfonce.data import ContrastiveDataset

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.BatchNorm1d(4))
    net.train()
    modes = []

    def embed(x: torch.Tensor) -> torch.Tensor:
        modes.append(net.training)
        return net(x.float())

    data = ContrastiveDataset(torch.ones(5, 1, 2, 2, dtype=torch.uint8), labels=torch.arange(5))
    feats, labels = extract_features(embed, data, batch_size=2, model=net)
    assert feats.shape == (5, 4) and labels is not None and labels.tolist() == [0, 1, 2, 3, 4]
    assert modes == [False, False, False] and net.training
    tensor_feats, none = extract_features(embed, torch.ones(5, 1, 2, 2), batch_size=3, desc="x")
    assert tensor_feats.shape == (5, 4) and none is None
