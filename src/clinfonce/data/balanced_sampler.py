"""Cluster-balanced batches: P clusters x Q samples, so fine clusters still meet in a batch.

With K clusters of a few samples each, a uniformly shuffled batch of B rarely holds two
samples of the same cluster, and Cl-InfoNCE sees almost no positive pair. This sampler
orders an epoch so that every run of ``Q`` consecutive positions holds ``Q`` samples of one
cluster; cut into batches of ``B = P * Q`` (by
:class:`~clinfonce.training.distributed.DistributedBatchSampler`, which also splits each
global batch across processes), every batch has P groups of Q cluster mates.

Every sample appears exactly once per epoch, as with plain shuffling: each cluster's
members are shuffled and cut into groups of Q; the members left over (clusters smaller than
Q, and the rest of the others) are shuffled together and cut into mixed groups of Q; the
groups are then shuffled. The order depends only on ``(seed, epoch)``, so it is the same on
every process and a resumed run sees the order of the uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

from clinfonce.data.splits import stream_seed


class ClusterBalancedSampler(Sampler[int]):
    """An epoch order of sample positions in groups of ``per_cluster`` cluster mates.

    Args:
        cluster_ids: cluster id of every training sample (by position).
        per_cluster: ``Q``, samples of one cluster next to each other.
        seed: with the epoch, determines the order.

    Examples:
        >>> sampler = ClusterBalancedSampler([0, 0, 1, 1, 1, 1, 2, 3], per_cluster=2, seed=0)
        >>> order = list(sampler)
        >>> sorted(order) == list(range(8))
        True
        >>> mates = [len({[0, 0, 1, 1, 1, 1, 2, 3][i] for i in order[g:g + 2]})
        ...          for g in range(0, 8, 2)]
        >>> sorted(mates)        # three pure groups, one of the leftovers (clusters 2 and 3)
        [1, 1, 1, 2]
    """

    def __init__(self, cluster_ids: np.ndarray | list[int], per_cluster: int, seed: int) -> None:
        ids = np.asarray(cluster_ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(
                f"cluster_ids: expected one integer id per sample; got dtype {ids.dtype}, "
                f"shape {ids.shape}"
            )
        if not isinstance(per_cluster, int) or per_cluster < 1:
            raise ValueError(f"per_cluster: expected an integer >= 1; got {per_cluster!r}")
        self.per_cluster, self.seed, self.epoch = per_cluster, seed, 0
        order = np.argsort(ids, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(ids[order]) != 0])
        self._members = np.split(order, starts[1:])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(len(m) for m in self._members)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(stream_seed(self.seed, self.epoch))

        def shuffled(values: np.ndarray) -> np.ndarray:
            permutation: np.ndarray = torch.randperm(len(values), generator=generator).numpy()
            return np.asarray(values[permutation])

        q = self.per_cluster
        groups: list[np.ndarray] = []
        leftovers: list[np.ndarray] = []
        for members in self._members:
            mixed = shuffled(members)
            full = len(mixed) // q * q
            groups.extend(mixed[:full].reshape(-1, q))
            leftovers.append(mixed[full:])
        rest = shuffled(np.concatenate([np.empty(0, dtype=np.int64), *leftovers]))
        groups.extend(rest[start : start + q] for start in range(0, len(rest), q))
        order = [groups[i] for i in torch.randperm(len(groups), generator=generator).tolist()]
        # A short mixed group (the leftovers' tail) goes last, so that it cannot shift the
        # groups after it across batch boundaries.
        order.sort(key=lambda group: len(group) < q)
        yield from np.concatenate(order).tolist()
