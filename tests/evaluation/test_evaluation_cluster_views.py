"""K-means agreement with the labels, and the t-SNE PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clinfonce.evaluation import embedding_kmeans, tsne_plot


def blobs(n_per: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three tight groups in distinct directions (scaled: only the direction matters)."""
    rng = np.random.default_rng(seed)
    directions = np.eye(3, 6)
    labels = np.repeat(np.arange(3), n_per)
    scale = rng.uniform(0.5, 4.0, size=(len(labels), 1))
    x = (directions[labels] + 0.02 * rng.normal(size=(len(labels), 6))) * scale
    return x, labels


def test_embedding_kmeans_recovers_separated_groups() -> None:
    x, y = blobs(20)
    clusters, info = embedding_kmeans(x, y)
    assert info["num_clusters"] == 3 and info["nmi"] == pytest.approx(1.0)
    # every group is exactly one cluster
    assert all(len(set(clusters[y == c])) == 1 for c in range(3))
    assert len(set(clusters)) == 3
    shuffled = np.random.default_rng(1).permutation(y)
    _, chance = embedding_kmeans(x, shuffled)
    assert chance["nmi"] < 0.3
    _, two = embedding_kmeans(x, y, num_clusters=2)
    assert two["num_clusters"] == 2 and 0 < two["nmi"] < 1
    with pytest.raises(ValueError, match="K = 99"):
        embedding_kmeans(x[:5], y[:5], num_clusters=99)


def test_tsne_plot_writes_two_panel_png(tmp_path: Path) -> None:
    import matplotlib.image

    x, y = blobs(15)
    path = tsne_plot(
        x,
        y,
        (y + 1) % 3,
        tmp_path / "sub" / "tsne.png",
        label_names=["a", "b", "c"],
        max_points=40,
        title="test",
    )
    assert path == tmp_path / "sub" / "tsne.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = matplotlib.image.imread(path).shape[:2]
    assert width > 1.8 * height  # two panels side by side
    with pytest.raises(ValueError, match="differ"):
        tsne_plot(x, y[:-1], y, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="at least 4"):
        tsne_plot(x[:3], y[:3], y[:3], tmp_path / "bad.png")
