"""Stage-1 speed: attribute clusters, granularity sweeps and K-means, against baselines.

Attribute clusters (issue 3's targets): 1,000,000 rows x 300 binary attributes, the joint
value of the top k = 20 under 10 s, and a sweep over 14 values of k under 60 s. The
baseline, in the same process: entropy from pandas ``value_counts`` per column for the
ranking, and ``groupby(columns, sort=True).ngroup()`` for the joint value (its group numbers
equal ours, which is checked).

K-means (``--kmeans``): :func:`clinfonce.clusters.kmeans.kmeans` (faiss) against
scikit-learn's ``KMeans`` (k-means++ seeding, Lloyd to convergence) on 100,000 x 128, K =
1000: time ratio and inertia ratio.

The machine may be shared: timings are noisy, ratios from the same process less so.

    .venv/bin/python benchmarks/bench_clusters.py                  # attributes only
    .venv/bin/python benchmarks/bench_clusters.py --kmeans         # + K-means (minutes)
    .venv/bin/python benchmarks/bench_clusters.py --rows 100000 --attrs 50   # quick look
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from clinfonce.clusters import build_clusters
from clinfonce.clusters.attributes import rank_attributes
from clinfonce.clusters.builders import sweep_builder
from clinfonce.clusters.kmeans import kmeans

SWEEP_KS = (3, 5, 7, 10, 13, 15, 20, 30, 50, 70, 90, 110, 130, 150)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _attribute_table(rows: int, attrs: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.5, attrs).astype(np.float32)
    data = np.empty((rows, attrs), dtype=np.uint8)
    for start in range(0, rows, 100_000):  # chunks keep the float temporaries small
        block = rng.random((min(100_000, rows - start), attrs), dtype=np.float32)
        data[start : start + len(block)] = block < p
    return pd.DataFrame(data, columns=[f"attr{j:03d}" for j in range(attrs)])


def _print_header() -> None:
    print(f"{'task':<38} {'ours (s)':>9} {'baseline (s)':>13} {'speed-up':>9}  note")


def _print_row(task: str, ours: float, base: float, note: str) -> None:
    ratio = f"{base / ours:8.1f}x" if ours > 0 and base > 0 else "        -"
    print(f"{task:<38} {ours:9.2f} {base:13.2f} {ratio}  {note}", flush=True)


def _pandas_ranking(table: pd.DataFrame) -> list[str]:
    """Baseline ranking: value_counts per column, entropy, sort (descending, then name)."""
    scores = {}
    for column in table.columns:
        p = table[column].value_counts(normalize=True, dropna=False).to_numpy()
        scores[column] = float(-(p * np.log2(p)).sum())
    return sorted(scores, key=lambda c: (-scores[c], c))


def bench_attributes(rows: int, attrs: int, k: int, sweep_ks: tuple[int, ...]) -> None:
    print(f"attribute clusters: {rows:,} rows x {attrs} binary attributes (uint8)")
    gen_s, table = _timed(lambda: _attribute_table(rows, attrs, 0))
    print(f"  (table generated in {gen_s:.1f} s)")
    sweep_ks = tuple(v for v in sweep_ks if v <= attrs)
    _print_header()

    ours_s, ranked = _timed(lambda: [r.name for r in rank_attributes(table)])
    base_s, base_ranked = _timed(lambda: _pandas_ranking(table))
    assert ranked[:k] == base_ranked[:k], "rankings differ"
    _print_row(f"rank {attrs} attributes by entropy", ours_s, base_s, "same order")

    top = ranked[:k]
    ours_s, ids = _timed(lambda: build_clusters(table, "attributes", columns=top, rank="given"))
    base_s, groups = _timed(lambda: table.groupby(top, sort=True).ngroup().to_numpy())
    assert np.array_equal(ids, groups), "ids differ from pandas groupby(sort=True).ngroup()"
    _print_row(f"joint value of {k} given attributes", ours_s, base_s, "identical ids")

    ours_s, ids = _timed(lambda: build_clusters(table, "attributes", k=k))
    base_s, _ = _timed(lambda: table.groupby(_pandas_ranking(table)[:k]).ngroup().to_numpy())
    target = "target < 10 s: " + ("met" if ours_s < 10 else "MISSED")
    _print_row(f"build k={k} (rank + joint)", ours_s, base_s, f"K={ids.max() + 1:,}; {target}")

    def ours_sweep() -> list[int]:
        return [r.num_clusters for _, r in sweep_builder(table, "attributes", list(sweep_ks))]

    def pandas_sweep() -> list[int]:
        order = _pandas_ranking(table)
        return [int(table.groupby(order[:v], sort=True).ngroup().max()) + 1 for v in sweep_ks]

    ours_s, counts = _timed(ours_sweep)
    base_s, base_counts = _timed(pandas_sweep)
    assert counts == base_counts, (counts, base_counts)
    target = "target < 60 s: " + ("met" if ours_s < 60 else "MISSED")
    _print_row(f"sweep {len(sweep_ks)} k ({sweep_ks[0]}..{sweep_ks[-1]})", ours_s, base_s, target)
    print(f"  K per k: {dict(zip(sweep_ks, counts, strict=True))}")


def _kmeans_data(kind: str, n: int, d: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        return rng.standard_normal((n, d)).astype(np.float32)
    centres = rng.standard_normal((k, d)).astype(np.float32)
    return (centres[rng.integers(0, k, n)] + 0.5 * rng.standard_normal((n, d))).astype(np.float32)


def bench_kmeans(n: int, d: int, k: int, kinds: list[str]) -> None:
    from sklearn.cluster import KMeans

    print(
        f"\nK-means: {n:,} x {d}, K = {k} (Euclidean; sklearn: k-means++, n_init=1, to convergence)"
    )
    _print_header()
    for kind in kinds:
        x = _kmeans_data(kind, n, d, k, 0)
        ours_s, ours = _timed(lambda x=x: kmeans(x, k, spherical=False, seed=0))
        base_s, base = _timed(lambda x=x: KMeans(k, n_init=1, random_state=0).fit(x))
        ratio = ours.inertia / base.inertia_
        note = f"inertia ours/sklearn = {ratio:.4f}; sklearn {base.n_iter_} iterations"
        _print_row(f"kmeans {kind} ({ours.backend})", ours_s, base_s, note)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--attrs", type=int, default=300)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--kmeans", action="store_true", help="also benchmark K-means vs sklearn")
    parser.add_argument("--kmeans-only", action="store_true")
    parser.add_argument("--kmeans-n", type=int, default=100_000)
    parser.add_argument("--kmeans-d", type=int, default=128)
    parser.add_argument("--kmeans-k", type=int, default=1000)
    parser.add_argument("--kmeans-data", default="gaussian,blobs", help="gaussian, blobs or both")
    args = parser.parse_args()
    if not args.kmeans_only:
        bench_attributes(args.rows, args.attrs, args.k, SWEEP_KS)
    if args.kmeans or args.kmeans_only:
        bench_kmeans(args.kmeans_n, args.kmeans_d, args.kmeans_k, args.kmeans_data.split(","))


if __name__ == "__main__":
    main()
