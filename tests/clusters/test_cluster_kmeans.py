"""K-means: every point assigned, inertia as defined, faiss and torch backends, builder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clinfonce.clusters import build_clusters
from clinfonce.clusters.kmeans import kmeans


def _blobs(n_per: int, centres: np.ndarray, scale: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([c + scale * rng.standard_normal((n_per, len(c))) for c in centres])


def _loop_inertia(x: np.ndarray, centroids: np.ndarray, assign: np.ndarray) -> float:
    total = 0.0
    for i in range(len(x)):
        total += float(np.sum((x[i].astype(np.float64) - centroids[assign[i]]) ** 2))
    return total


@pytest.mark.parametrize("backend", ["faiss", "torch"])
@pytest.mark.parametrize("spherical", [False, True])
def test_recovers_separated_groups(backend: str, spherical: bool) -> None:
    centres = np.array([[8.0, 0, 0], [0, 8.0, 0], [0, 0, 8.0], [-8.0, -8.0, 0]])
    x = _blobs(40, centres, 0.3)
    result = kmeans(x, 4, spherical=spherical, backend=backend, seed=1)
    truth = np.repeat(np.arange(4), 40)
    assert pd.crosstab(result.assignments, truth).gt(0).sum(axis=1).eq(1).all()
    assert result.backend == backend
    points = x / np.linalg.norm(x, axis=1, keepdims=True) if spherical else x
    assert result.inertia == pytest.approx(
        _loop_inertia(points, result.centroids, result.assignments), rel=1e-5
    )
    if spherical:
        assert np.allclose(np.linalg.norm(result.centroids, axis=1), 1.0, atol=1e-5)


def test_every_point_assigned_beyond_faiss_subsample() -> None:
    """n > 256 * K makes plain faiss train on a subsample; all points must still be assigned
    to their nearest final centroid."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 4)).astype(np.float32)
    result = kmeans(x, 2, spherical=False, iterations=5)
    assert result.assignments.shape == (600,)
    distances = ((x[:, None, :] - result.centroids[None]) ** 2).sum(-1)
    assert np.array_equal(result.assignments, distances.argmin(1))


def test_restarts_keep_the_best_and_seed_is_deterministic() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    single = [kmeans(x, 10, spherical=False, init="random", seed=s).inertia for s in range(3)]
    best = kmeans(x, 10, spherical=False, init="random", restarts=3, seed=0)
    assert best.inertia == pytest.approx(min(single), rel=1e-6)
    again = kmeans(x, 10, spherical=False, init="random", restarts=3, seed=0)
    assert np.array_equal(best.assignments, again.assignments)


def test_kmeans_plusplus_beats_random_seeding_on_many_groups() -> None:
    centres = np.random.default_rng(2).standard_normal((30, 16)) * 10
    x = _blobs(20, centres, 0.5, seed=3)
    plus = kmeans(x, 30, spherical=False, init="k-means++", iterations=10)
    optimum = _loop_inertia(x, centres, np.repeat(np.arange(30), 20))
    assert plus.inertia <= optimum * 1.05


def test_bad_arguments() -> None:
    x = np.zeros((5, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="1 <= K <= n"):
        kmeans(x, 6)
    with pytest.raises(ValueError, match="NaN"):
        kmeans(np.full((3, 2), np.nan), 1)
    with pytest.raises(ValueError, match=r"\[n, d\]"):
        kmeans(np.zeros(4), 1)
    with pytest.raises(ValueError, match="backend='gpu'"):
        kmeans(x, 1, backend="gpu")


def test_builder_columns_and_embeddings(tmp_path: Path) -> None:
    x = _blobs(10, np.array([[5.0, 5.0], [-5.0, -5.0]]), 0.2)
    table = pd.DataFrame({"f1": x[:, 0], "f2": x[:, 1], "name": [f"s{i}" for i in range(20)]})
    ids = build_clusters(table, "kmeans", columns=["f1", "f2"], n_clusters=2, spherical=False)
    assert sorted(np.bincount(ids).tolist()) == [10, 10]
    np.save(tmp_path / "emb.npy", x)
    from_file = build_clusters(
        table, "kmeans", embeddings=str(tmp_path / "emb.npy"), n_clusters=2, spherical=False
    )
    assert np.array_equal(from_file, ids)
    with pytest.raises(ValueError, match="either columns"):
        build_clusters(table, "kmeans", n_clusters=2)
    with pytest.raises(ValueError, match="must be numeric: name"):
        build_clusters(table, "kmeans", columns=["name"], n_clusters=2)
    np.save(tmp_path / "short.npy", x[:5])
    with pytest.raises(ValueError, match="one row per table row"):
        build_clusters(table, "kmeans", embeddings=str(tmp_path / "short.npy"), n_clusters=2)
    table.loc[3, "f1"] = np.nan
    with pytest.raises(ValueError, match=r"missing or infinite values \(rows 3\)"):
        build_clusters(table, "kmeans", columns=["f1", "f2"], n_clusters=2)
