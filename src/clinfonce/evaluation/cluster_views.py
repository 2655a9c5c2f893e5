"""Cluster-aware views of an embedding: K-means agreement with the labels, and a t-SNE map.

Both work on L2-normalised features, the geometry the contrastive loss and the kNN probe
use: K-means is spherical, and t-SNE's Euclidean distances between unit vectors order pairs
as cosine similarity does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _unit(features: torch.Tensor | np.ndarray) -> np.ndarray:
    x = features.detach().cpu().numpy() if isinstance(features, torch.Tensor) else features
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ValueError(f"features must be a non-empty [N, D] array, got shape {x.shape}")
    unit: np.ndarray = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return unit


def embedding_kmeans(
    features: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    *,
    num_clusters: int | None = None,
    restarts: int = 3,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, float]]:
    """Spherical K-means of the embedding (K = number of labels) and its agreement with them.

    Args:
        features: ``[N, D]``.
        labels: ``[N]`` classes.
        num_clusters: K (default: the number of distinct labels).
        restarts: K-means runs; the lowest inertia wins.
        seed: K-means seed.

    Returns:
        The cluster of every sample and ``{"num_clusters", "nmi", "ami", "i_zt",
        "i_zt_over_h_t", "h_z_given_t"}`` (information in bits, see
        :func:`clinfonce.clusters.cluster_metrics`).

    Examples:
        >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> _, m = embedding_kmeans(x, np.array([0, 0, 1, 1]))
        >>> m["nmi"]
        1.0
    """
    from clinfonce.clusters import cluster_metrics
    from clinfonce.clusters.kmeans import kmeans

    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    x = _unit(features)
    if len(y) != len(x):
        raise ValueError(f"{len(x)} features but {len(y)} labels")
    k = num_clusters if num_clusters is not None else len(np.unique(y))
    if not 1 <= k <= len(x):
        raise ValueError(f"K-means needs 1 <= K <= {len(x)} samples, got K = {k}")
    result = kmeans(x, k, spherical=True, restarts=restarts, seed=seed)
    metrics = cluster_metrics(result.assignments, y)
    keys = ("nmi", "ami", "i_zt", "i_zt_over_h_t", "h_z_given_t")
    return result.assignments, {"num_clusters": float(k), **{key: metrics[key] for key in keys}}


def tsne_plot(
    features: torch.Tensor | np.ndarray,
    labels: np.ndarray | torch.Tensor,
    clusters: np.ndarray | torch.Tensor,
    path: str | Path,
    *,
    label_names: Sequence[Any] | None = None,
    max_points: int = 2000,
    perplexity: float = 30.0,
    seed: int = 0,
    title: str = "",
) -> Path:
    """Save a two-panel 2-D t-SNE PNG of the embedding: coloured by label, and by cluster.

    A seeded random subset of ``max_points`` samples is mapped (t-SNE is quadratic-ish in
    the points and unreadable beyond a few thousand). Legends are drawn for up to 20 groups.

    Args:
        features: ``[N, D]``.
        labels: ``[N]`` label codes ``0..C-1``.
        clusters: ``[N]`` cluster ids (e.g. from :func:`embedding_kmeans`).
        path: the PNG to write (parent folders are created).
        label_names: display name of each label code.
        max_points: points mapped.
        perplexity: t-SNE perplexity (capped below the number of points).
        seed: subset and t-SNE seed.
        title: figure title.

    Returns:
        ``path``.

    Examples:
        >>> x = np.random.default_rng(0).normal(size=(60, 8))
        >>> y = np.arange(60) % 3
        >>> tsne_plot(x, y, y, "tsne.png")  # doctest: +SKIP
        PosixPath('tsne.png')
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    x = _unit(features)
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    z = np.asarray(clusters.cpu() if isinstance(clusters, torch.Tensor) else clusters)
    if not len(x) == len(y) == len(z):
        raise ValueError(f"{len(x)} features, {len(y)} labels and {len(z)} clusters differ")
    if len(x) < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {len(x)}")
    rng = np.random.default_rng(seed)
    if len(x) > max_points:
        keep = np.sort(rng.choice(len(x), size=max_points, replace=False))
        x, y, z = x[keep], y[keep], z[keep]
    tsne = TSNE(
        n_components=2,
        perplexity=min(perplexity, (len(x) - 1) / 3),
        init="pca",
        random_state=seed,
    )
    # One OpenMP thread: on a busy machine scikit-learn's threaded t-SNE waits at every
    # barrier (measured here: 21 s instead of 0.05 s for 15 points, 47 s vs 11 s for 2000).
    with threadpool_limits(limits=1, user_api="openmp"):
        xy = tsne.fit_transform(x)
    fig, axes = plt.subplots(1, 2, figsize=(13, 6))
    names = list(label_names) if label_names is not None else None
    for ax, groups, what in ((axes[0], y, "label"), (axes[1], z, "K-means cluster")):
        _scatter(ax, xy, groups, names if what == "label" else None)
        ax.set_title(f"coloured by {what} ({len(np.unique(groups))} groups)")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{title} t-SNE of {len(x)} L2-normalised embeddings".strip())
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _scatter(ax: Any, xy: np.ndarray, groups: np.ndarray, names: list[Any] | None) -> None:
    import matplotlib.pyplot as plt

    values = np.unique(groups)
    size = float(np.clip(8000 / len(xy), 4, 30))  # small maps get visible points
    cmap = plt.get_cmap("tab10" if len(values) <= 10 else "tab20" if len(values) <= 20 else "hsv")
    for i, value in enumerate(values):
        pick = groups == value
        colour = cmap(i % cmap.N if len(values) <= 20 else i / len(values))
        name = names[int(value)] if names is not None else value
        ax.scatter(xy[pick, 0], xy[pick, 1], s=size, color=colour, label=str(name), linewidths=0)
    if len(values) <= 20:
        ax.legend(markerscale=6 / size**0.5, fontsize=7, loc="best", frameon=False)
