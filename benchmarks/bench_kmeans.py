"""K-means as kmeans-clinfonce uses it, against scikit-learn's KMeans, in one process.

Target (issue 5): on 100,000 x 128 points and K = 1000, :func:`clinfonce.clusters.kmeans.kmeans`
at least 5x faster than ``sklearn.cluster.KMeans`` (k-means++ seeding, Lloyd to convergence,
one init) at equal or lower inertia (within 1%).

The points look like what the method clusters: L2-normalised 128-d embeddings. ``embedding``
data are 100 class directions, each with 10 sub-directions, plus noise (clustered, with
overlap); ``uniform`` data are uniform on the sphere (no structure: the hardest case for
seeding not to matter). Both sides minimise the same Euclidean objective on these unit
vectors (``spherical=False``), and inertia is recomputed for both in float64 from their
labels and centroids. Rows: our K-means with the method's default seeding (``random``, 20
iterations, what the training callback runs) and with ``k-means++`` seeding.

The machine may be shared: timings are noisy, ratios from the same process less so.

    .venv/bin/python benchmarks/bench_kmeans.py                      # 100,000 x 128, K 1000
    .venv/bin/python benchmarks/bench_kmeans.py --n 20000 --k 200    # quick look
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from clinfonce.clusters.kmeans import inertia, kmeans


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def make_points(kind: str, n: int, d: int, seed: int) -> np.ndarray:
    """``embedding`` (clustered directions) or ``uniform`` unit vectors, float32 ``[n, d]``."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return _unit(rng.standard_normal((n, d)))
    if kind != "embedding":
        raise ValueError(f"unknown data kind {kind!r}: use embedding or uniform")
    classes = _unit(rng.standard_normal((100, d)))
    subs = _unit(classes.repeat(10, axis=0) + 0.6 * _unit(rng.standard_normal((1000, d))))
    picked = subs[rng.integers(0, 1000, n)]
    return _unit(picked + 0.5 * _unit(rng.standard_normal((n, d))))


def bench(kind: str, n: int, d: int, k: int) -> None:
    from sklearn.cluster import KMeans

    x = make_points(kind, n, d, seed=0)
    base_s, base = _timed(lambda: KMeans(k, n_init=1, random_state=0).fit(x))
    base_inertia = inertia(x, base.cluster_centers_, base.labels_)
    print(
        f"{kind:<10} {'sklearn KMeans (k-means++, to conv.)':<40} {base_s:8.2f} {'1.0x':>8} "
        f"{1.0:9.4f}  {base.n_iter_} iterations"
    )
    for init in ("random", "k-means++"):
        ours_s, ours = _timed(partial(kmeans, x, k, spherical=False, init=init, seed=0))
        ratio = inertia(x, ours.centroids, ours.assignments) / base_inertia
        label = f"ours ({ours.backend}, {init}, 20 it)"
        print(f"{kind:<10} {label:<40} {ours_s:8.2f} {base_s / ours_s:7.1f}x {ratio:9.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="points")
    parser.add_argument("--d", type=int, default=128, help="dimensions")
    parser.add_argument("--k", type=int, default=1000, help="clusters")
    parser.add_argument("--data", default="embedding,uniform", help="embedding, uniform or both")
    args = parser.parse_args()
    print(f"K-means: {args.n:,} x {args.d}, K = {args.k}, unit-norm points, one process")
    print(f"{'data':<10} {'method':<40} {'time (s)':>8} {'speed-up':>8} {'inertia/sk':>9}")
    for kind in args.data.split(","):
        bench(kind.strip(), args.n, args.d, args.k)


if __name__ == "__main__":
    main()
