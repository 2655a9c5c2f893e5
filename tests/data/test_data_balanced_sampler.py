"""Cluster-balanced batches: every sample once, pure groups, same order on every process."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from clinfonce.data.balanced_sampler import ClusterBalancedSampler
from clinfonce.training import config_from_dict
from clinfonce.training.distributed import DistributedBatchSampler

IDS = np.repeat(np.arange(12), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 4])  # 60 samples


@pytest.mark.parametrize("q", [2, 4, 5])
@pytest.mark.parametrize("epoch", [0, 3])
def test_every_sample_once_in_groups_of_cluster_mates(q: int, epoch: int) -> None:
    sampler = ClusterBalancedSampler(IDS, per_cluster=q, seed=1)
    sampler.set_epoch(epoch)
    order = list(sampler)
    assert sorted(order) == list(range(len(IDS))) and len(sampler) == len(IDS)
    groups = [IDS[order[g : g + q]] for g in range(0, len(order), q)]
    pure = sum(len(set(group.tolist())) == 1 for group in groups)
    sizes = Counter(IDS.tolist())
    assert pure >= sum(size // q for size in sizes.values())  # every full group is pure


def test_order_depends_on_seed_and_epoch_only() -> None:
    a, b = ClusterBalancedSampler(IDS, 3, seed=0), ClusterBalancedSampler(IDS, 3, seed=0)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    assert list(ClusterBalancedSampler(IDS, 3, seed=1)) != list(a)


def test_processes_split_each_global_batch_and_resume_skips_batches() -> None:
    order = ClusterBalancedSampler(IDS, per_cluster=4, seed=2)
    single = list(DistributedBatchSampler(order, 12, drop_last=True, rank=0, world_size=1))
    parts = [
        list(DistributedBatchSampler(order, 12, drop_last=True, rank=r, world_size=2))
        for r in (0, 1)
    ]
    assert [a + b for a, b in zip(*parts, strict=True)] == single
    groups = [set(IDS[batch[g : g + 4]].tolist()) for batch in single for g in range(0, 12, 4)]
    assert sum(len(g) == 1 for g in groups) == 11  # the full groups stay whole in batches
    resumed = DistributedBatchSampler(order, 12, drop_last=True, rank=0, world_size=1)
    resumed.skip_next(2)
    assert list(resumed) == single[2:]


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="per_cluster"):
        ClusterBalancedSampler(IDS, per_cluster=0, seed=0)
    with pytest.raises(ValueError, match="integer id"):
        ClusterBalancedSampler(np.array([0.5, 1.0]), per_cluster=2, seed=0)
    with pytest.raises(ValueError, match=r"train\.per_cluster"):
        config_from_dict({"method": {"name": "simclr"}, "train": {"per_cluster": -1}})


@pytest.mark.parametrize("q", [0, 4])
def test_positives_per_anchor_matches_the_sampler(q: int) -> None:
    from clinfonce.clusters.assess import positives_per_anchor
    from clinfonce.data.datasets import EpochShuffleSampler

    ids = np.repeat(np.arange(150), np.arange(150) % 9 + 1)  # 150 clusters of 1-9
    batch = 32
    order = ClusterBalancedSampler(ids, q, seed=0) if q else EpochShuffleSampler(len(ids), 0)
    counts = []
    for epoch in range(20):
        order.set_epoch(epoch)
        for batch_rows in DistributedBatchSampler(order, batch, True, rank=0, world_size=1):
            batch_ids = ids[batch_rows]
            counts.extend((batch_ids[:, None] == batch_ids[None, :]).sum(1) - 1)
    sizes = np.bincount(ids)
    assert np.mean(counts) == pytest.approx(positives_per_anchor(sizes, batch, q), rel=0.1)
