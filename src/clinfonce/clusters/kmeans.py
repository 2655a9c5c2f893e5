"""K-means for clusters without auxiliary information (and for embedding/TF-IDF features).

faiss does the Lloyd iterations when it is importable (fast BLAS-backed assignment over all
points); a pure-torch implementation takes over otherwise, and runs on the GPU when the points
are a CUDA tensor (the embeddings of a model on the GPU never leave it, only the ids and a
seeding sample do). Two things are easy to get wrong
with faiss and are handled here:

* ``faiss.Kmeans`` trains on a random subsample when n > max_points_per_centroid * K, and
  its training assignment is only for that subsample. Here training uses every point by
  default, and the returned assignment is always a search of *all* points against the final
  centroids.
* Spherical K-means (the paper's setting: L2-normalised 128-d projections) means unit-norm
  inputs *and* centroids; faiss's ``spherical`` flag only normalises centroids, so inputs
  are normalised here.

Initialisation matters more than iterations: on data with many well separated groups,
uniform random seeding leaves groups without a centroid and Lloyd cannot recover. The default
``"k-means++"`` is the greedy D^2 seeding of scikit-learn (2 + ln K candidates per step)
run on a subsample of ``init_sample`` points, whose cost does not grow with n.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import pandas as pd

from clinfonce.clusters._codes import dense_rank
from clinfonce.clusters.tables import require_columns
from clinfonce.paths import PathOption

if TYPE_CHECKING:
    import torch

Backend = Literal["auto", "faiss", "torch"]
BACKENDS: tuple[str, ...] = get_args(Backend)
Init = Literal["k-means++", "random"]
INITS: tuple[str, ...] = get_args(Init)
_CHUNK = 16384


@dataclass(frozen=True)
class KMeansResult:
    """Outcome of :func:`kmeans`.

    Attributes:
        assignments: int64 ``[n]``, index of each point's nearest centroid (every point).
        centroids: float32 ``[K, d]`` (unit norm when spherical).
        inertia: sum of squared Euclidean distances of points to their centroid, in the
            space K-means ran in (after normalisation when spherical).
        backend: ``"faiss"`` or ``"torch"``.
    """

    assignments: np.ndarray
    centroids: np.ndarray
    inertia: float
    backend: str


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def _device_points(x: np.ndarray | torch.Tensor) -> torch.Tensor | None:
    """The points when they are a tensor on an accelerator (clustered there), else ``None``."""
    if isinstance(x, np.ndarray) or not hasattr(x, "detach"):  # not a torch tensor
        return None
    return None if x.device.type == "cpu" else x


def _host(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    array: np.ndarray = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return array


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit: np.ndarray = (x / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


def _nearest(faiss: Any, x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (squared L2) of every point."""
    if faiss is not None:
        index = faiss.IndexFlatL2(centroids.shape[1])
        index.add(np.ascontiguousarray(centroids, dtype=np.float32))
        _, nearest = index.search(x, 1)
        return np.asarray(nearest[:, 0], dtype=np.int64)
    import torch

    nearest_torch: np.ndarray = _nearest_torch(
        torch.from_numpy(x), torch.from_numpy(centroids)
    ).numpy()
    return nearest_torch


def _nearest_torch(points: Any, centroids: Any) -> Any:
    import torch

    c_sq = (centroids * centroids).sum(1)
    parts = [
        torch.argmin(c_sq[None, :] - 2 * block @ centroids.T, dim=1)
        for block in torch.split(points, _CHUNK)
    ]
    return torch.cat(parts)


def inertia(x: np.ndarray, centroids: np.ndarray, assignments: np.ndarray) -> float:
    """Sum of squared distances of points to their assigned centroid, in float64."""
    total = 0.0
    for start in range(0, len(x), _CHUNK):
        block = x[start : start + _CHUNK].astype(np.float64)
        diff = block - centroids[assignments[start : start + _CHUNK]].astype(np.float64)
        total += float(np.einsum("ij,ij->", diff, diff))
    return total


def kmeans_plusplus(x: np.ndarray, n_clusters: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeding: rows of ``x`` chosen by D^2 sampling, best of 2 + ln K.

    Each step samples candidates with probability proportional to the squared distance to
    the nearest chosen centre and keeps the one that lowers the potential most.
    """
    m = len(x)
    trials = 2 + int(math.log(n_clusters))
    sq = np.einsum("ij,ij->i", x, x)
    chosen = np.empty(n_clusters, dtype=np.int64)
    chosen[0] = rng.integers(m)
    closest = np.maximum(sq - 2 * (x @ x[chosen[0]]) + sq[chosen[0]], 0)
    for c in range(1, n_clusters):
        cumulative = np.cumsum(closest, dtype=np.float64)
        if cumulative[-1] <= 0:  # every point sits on a centre: any new point will do
            candidates = rng.integers(m, size=1)
        else:
            draws = rng.random(trials) * cumulative[-1]
            candidates = np.minimum(np.searchsorted(cumulative, draws), m - 1)
        dist = x[candidates] @ x.T
        dist *= -2
        dist += sq[None, :]
        dist += sq[candidates][:, None]
        np.maximum(dist, 0, out=dist)
        np.minimum(dist, closest[None, :], out=dist)
        best = int(np.argmin(dist.sum(axis=1)))
        chosen[c] = candidates[best]
        closest = dist[best]
    seeds: np.ndarray = x[chosen].copy()
    return seeds


def _rows(x: np.ndarray | torch.Tensor, rows: np.ndarray | None) -> np.ndarray:
    """Rows of the points (all of them: ``None``) as a host array (a copy)."""
    if isinstance(x, np.ndarray):
        taken: np.ndarray = x.copy() if rows is None else x[rows]
        return taken
    import torch

    picked = x if rows is None else x[torch.from_numpy(rows).to(x.device)]
    host: np.ndarray = picked.cpu().numpy()
    return host


def _initial_centroids(
    x: np.ndarray | torch.Tensor, n_clusters: int, init: str, init_sample: int | None, seed: int
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if init == "random":
        return _rows(x, np.sort(rng.choice(len(x), n_clusters, replace=False)))
    size = len(x) if init_sample is None else min(len(x), max(int(init_sample), n_clusters))
    rows = None if size == len(x) else np.sort(rng.choice(len(x), size, replace=False))
    sample = x if rows is None and isinstance(x, np.ndarray) else _rows(x, rows)
    return kmeans_plusplus(sample, n_clusters, rng)


def _lloyd_faiss(
    faiss: Any, x: np.ndarray, init: np.ndarray, spherical: bool, iterations: int, seed: int
) -> np.ndarray:
    n_clusters, dim = init.shape
    km = faiss.Kmeans(
        dim,
        n_clusters,
        niter=iterations,
        seed=seed,
        spherical=spherical,
        max_points_per_centroid=max(len(x) // n_clusters + 1, 1),
        min_points_per_centroid=1,
        verbose=False,
    )
    km.train(x, init_centroids=init)
    return np.asarray(km.centroids, dtype=np.float32)


def _lloyd_torch(
    points: torch.Tensor, init: np.ndarray, spherical: bool, iterations: int
) -> torch.Tensor:
    """Lloyd's iterations in torch, on the points' device; the centroids stay there."""
    import torch

    centroids = torch.from_numpy(init.copy()).to(points.device)
    n_clusters = len(init)
    for _ in range(iterations):
        assign = _nearest_torch(points, centroids)
        sums = torch.zeros_like(centroids).index_add_(0, assign, points)
        counts = torch.bincount(assign, minlength=n_clusters)
        empty = counts == 0
        updated = sums / counts.clamp(min=1).unsqueeze(1).to(sums.dtype)
        if bool(empty.any()):
            # Re-seed empty centroids on the points farthest from their centroid.
            dist = ((points - centroids[assign]) ** 2).sum(1)
            far = torch.topk(dist, int(empty.sum())).indices
            updated[empty] = points[far]
        if spherical:
            updated = torch.nn.functional.normalize(updated, dim=1)
        centroids = updated.contiguous()
    return centroids


def _kmeans_on_device(
    x: torch.Tensor,
    n_clusters: int,
    spherical: bool,
    iterations: int,
    restarts: int,
    seed: int,
    init: str,
    init_sample: int | None,
) -> KMeansResult:
    """:func:`kmeans` of points on a GPU: points, centroids and distances stay there; the
    seeding reads a host copy of its sample, and only the winner's ids and centroids come
    back."""
    import torch

    points = x.float()
    if spherical:
        points = torch.nn.functional.normalize(points, dim=1, eps=1e-12)
    points = points.contiguous()
    best: tuple[float, torch.Tensor, torch.Tensor] | None = None
    for run in range(restarts):
        start = _initial_centroids(points, n_clusters, init, init_sample, seed + run)
        if spherical:
            start = _normalise(start)
        centroids = _lloyd_torch(points, start, spherical, iterations)
        assignments = _nearest_torch(points, centroids)
        total = sum(  # float64 in blocks, as :func:`inertia`
            float(((block.double() - centroids.double()[ids]) ** 2).sum())
            for block, ids in zip(
                torch.split(points, _CHUNK), torch.split(assignments, _CHUNK), strict=True
            )
        )
        if best is None or total < best[0]:
            best = (total, assignments, centroids)
    assert best is not None
    total, assignments, centroids = best
    return KMeansResult(assignments.cpu().numpy(), centroids.cpu().numpy(), total, "torch")


def kmeans(
    x: np.ndarray | torch.Tensor,
    n_clusters: int,
    *,
    spherical: bool = True,
    iterations: int = 20,
    restarts: int = 1,
    seed: int = 0,
    init: str = "k-means++",
    init_sample: int | None = 20_000,
    backend: str = "auto",
) -> KMeansResult:
    """Lloyd's K-means over all points; the best of ``restarts`` runs by inertia.

    Args:
        x: float ``[n, d]`` points (converted to float32). A tensor on a GPU is clustered
            there by the torch backend (the seeding reads a host copy of its sample); a CPU
            tensor is clustered as its array.
        n_clusters: K, at most n.
        spherical: cosine K-means (unit-norm points and centroids; the paper's setting for
            projections) instead of Euclidean.
        iterations: Lloyd iterations per run.
        restarts: independent runs (seeds ``seed``, ``seed + 1``, ...); the lowest inertia
            wins.
        seed: seed of the initialisation.
        init: ``"k-means++"`` (greedy D^2 seeding on a subsample; robust) or ``"random"``
            (K distinct points; cheapest, fine for diffuse data).
        init_sample: points the k-means++ seeding looks at (``None``: all); at least K.
        backend: ``"faiss"``, ``"torch"`` or ``"auto"`` (faiss when importable, torch for
            points on a GPU).

    Returns:
        :class:`KMeansResult` with every point assigned to its nearest final centroid.

    Raises:
        ValueError: bad shapes, non-finite values, K out of range or unknown options.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> x = np.concatenate([rng.normal(-5, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
        >>> r = kmeans(x, 2, spherical=False)
        >>> sorted(np.bincount(r.assignments).tolist())
        [50, 50]
    """
    on_device = _device_points(x)
    host = np.empty((0, 0), np.float32)
    shape: tuple[int, ...]
    if on_device is None:
        host = np.ascontiguousarray(_host(x), dtype=np.float32)
        shape, finite = host.shape, bool(np.isfinite(host).all())
    else:
        shape, finite = tuple(on_device.shape), bool(on_device.isfinite().all())
    if len(shape) != 2 or shape[0] == 0:
        raise ValueError(f"kmeans needs a non-empty [n, d] array, got shape {shape}")
    if not finite:
        raise ValueError("kmeans: the points contain NaN or infinite values")
    if isinstance(n_clusters, bool) or not 1 <= int(n_clusters) <= shape[0]:
        raise ValueError(f"n_clusters={n_clusters!r}: need 1 <= K <= n (n = {shape[0]})")
    if iterations < 0 or restarts < 1:
        raise ValueError(f"need iterations >= 0 and restarts >= 1 (got {iterations}, {restarts})")
    if init not in INITS:
        raise ValueError(f"init={init!r}: use one of {', '.join(INITS)}")
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}: use one of {', '.join(BACKENDS)}")
    if on_device is not None:
        if backend == "faiss":
            raise ValueError("backend='faiss' clusters host arrays; pass the points on the CPU")
        return _kmeans_on_device(
            on_device, int(n_clusters), spherical, iterations, restarts, seed, init, init_sample
        )
    faiss = _faiss() if backend in ("auto", "faiss") else None
    if backend == "faiss" and faiss is None:
        raise ValueError("backend='faiss' but faiss is not installed (pip install faiss-cpu)")
    if spherical:
        host = _normalise(host)
    best: KMeansResult | None = None
    for run in range(restarts):
        start = _initial_centroids(host, int(n_clusters), init, init_sample, seed + run)
        if spherical:
            start = _normalise(start)
        if faiss is not None:
            centroids = _lloyd_faiss(faiss, host, start, spherical, iterations, seed + run)
        else:
            import torch

            centroids = _lloyd_torch(torch.from_numpy(host), start, spherical, iterations).numpy()
        assignments = _nearest(faiss, host, centroids)
        result = KMeansResult(
            assignments,
            centroids,
            inertia(host, centroids, assignments),
            "faiss" if faiss is not None else "torch",
        )
        if best is None or result.inertia < best.inertia:
            best = result
    assert best is not None
    return best


def _features(
    table: pd.DataFrame, columns: Sequence[str] | None, embeddings: str | None
) -> np.ndarray:
    if (columns is None) == (embeddings is None):
        raise ValueError("kmeans builder: give either columns=[...] or embeddings=<file.npy>")
    if embeddings is not None:
        path = Path(embeddings)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such embeddings file")
        x = np.load(path, allow_pickle=False)
        if x.ndim != 2 or len(x) != len(table):
            raise ValueError(
                f"{path}: embeddings must be [rows, dim] with one row per table row "
                f"({len(table)}), got shape {x.shape}"
            )
        loaded: np.ndarray = np.asarray(x, dtype=np.float32)
        return loaded
    columns = [columns] if isinstance(columns, str) else list(columns or [])
    require_columns(table, columns, "kmeans columns")
    frame = table[columns]
    non_numeric = [c for c in columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise ValueError(f"kmeans columns must be numeric: {', '.join(map(str, non_numeric))}")
    values: np.ndarray = frame.to_numpy(dtype=np.float32)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        rows = ", ".join(map(str, np.flatnonzero(bad)[:5]))
        raise ValueError(f"kmeans columns have missing or infinite values (rows {rows})")
    return values


def build_kmeans(
    table: pd.DataFrame,
    *,
    n_clusters: int,
    columns: Sequence[str] | None = None,
    embeddings: PathOption | None = None,
    spherical: bool = True,
    iterations: int = 20,
    restarts: int = 1,
    seed: int = 0,
    init: Init = "k-means++",
    backend: Backend = "auto",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Cluster id = K-means cluster of numeric columns or of a ``.npy`` embedding file.

    Ids follow centroid order with empty centroids dropped (so they are ``0..K'-1``,
    K' <= K). Details record the inertia, the backend and K'.

    Args:
        table: one row per sample.
        n_clusters: K.
        columns: numeric feature columns (or give ``embeddings``).
        embeddings: a ``.npy [rows, dim]`` file, one row per table row.
        spherical: cosine K-means on L2-normalised vectors; ``False``: Euclidean.
        iterations: Lloyd iterations per run.
        restarts: runs from different seeds; the lowest inertia is kept.
        seed: random seed of the initialisation.
        init: ``"k-means++"`` (greedy seeding on a 20,000-point sample) or ``"random"``
            (K random points).
        backend: ``"faiss"``, pure ``"torch"``, or ``"auto"`` (faiss when installed).

    Examples:
        >>> t = pd.DataFrame({"x": [0.0, 0.1, 9.0, 9.1], "y": [0.0, 0.0, 1.0, 1.0]})
        >>> ids, _ = build_kmeans(t, n_clusters=2, columns=["x", "y"], spherical=False)
        >>> bool(ids[0] == ids[1] != ids[2] == ids[3])
        True
    """
    result = kmeans(
        _features(table, columns, embeddings),
        n_clusters,
        spherical=spherical,
        iterations=iterations,
        restarts=restarts,
        seed=seed,
        init=init,
        backend=backend,
    )
    ids, used = dense_rank(result.assignments)
    return ids, {"inertia": result.inertia, "backend": result.backend, "num_used": used}
