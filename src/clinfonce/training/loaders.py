"""The training loader: per-epoch seeded shuffling, full global batches, its workers."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from clinfonce.data.balanced_sampler import ClusterBalancedSampler
from clinfonce.data.config import UNNAMED_CLUSTERING
from clinfonce.data.datasets import EpochShuffleSampler
from clinfonce.data.prepare import PreparedData
from clinfonce.data.prepared import usable_cores
from clinfonce.training.config import ExperimentConfig, TrainConfig
from clinfonce.training.distributed import DistributedBatchSampler


def train_loader(config: ExperimentConfig, data: PreparedData) -> DataLoader[Any]:
    """Shuffled (per-epoch seeded), full batches only: every step contrasts a full batch."""
    train = config.train
    dataset = data.train_dataset(train.views, config.augment)
    if len(dataset) < train.batch_size:
        raise ValueError(
            f"train.batch_size={train.batch_size} exceeds the {len(dataset)} training samples; "
            "lower train.batch_size"
        )
    workers = loader_workers(train, data.view_maker.on_device)
    return DataLoader(
        dataset,
        batch_sampler=DistributedBatchSampler(  # this process's share of the global batch
            epoch_order(config, data), train.batch_size, drop_last=True
        ),
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=train.accelerator != "cpu" and torch.cuda.is_available(),
    )


def epoch_order(
    config: ExperimentConfig, data: PreparedData
) -> EpochShuffleSampler | ClusterBalancedSampler:
    """The global order of an epoch: shuffled, or cluster-balanced with ``train.per_cluster``."""
    train = config.train
    if train.per_cluster <= 1:
        return EpochShuffleSampler(len(data.train_rows), train.seed)
    if train.batch_size % train.per_cluster:
        raise ValueError(
            f"train.per_cluster={train.per_cluster} must divide train.batch_size="
            f"{train.batch_size} (batches of P clusters x Q samples); e.g. "
            f"train.batch_size={train.batch_size // train.per_cluster * train.per_cluster}"
        )
    return ClusterBalancedSampler(balance_ids(config, data), train.per_cluster, train.seed)


def balance_ids(config: ExperimentConfig, data: PreparedData) -> np.ndarray:
    """Per training sample, the ids ``train.balance_by`` names (see :class:`TrainConfig`)."""
    name = config.train.balance_by
    if name == "label":
        labels = data.train_labels()
        if labels is None:
            raise ValueError("train.balance_by=label needs labels: set data.label_column")
        return labels
    if name in (None, UNNAMED_CLUSTERING) and data.clusters is not None:
        return np.asarray(data.clusters)
    if name is None and len(data.named_clusters) == 1:
        return next(iter(data.named_clusters.values()))
    if name in data.named_clusters:
        return data.named_clusters[name]
    have = ", ".join(["label", *data.named_clusters]) + (
        f", {UNNAMED_CLUSTERING}" if data.clusters is not None else ""
    )
    raise ValueError(
        f"train.balance_by={name!r}: no such clustering for cluster-balanced batches "
        f"(train.per_cluster); have: {have}"
    )


def loader_workers(train: TrainConfig, in_memory: bool) -> int:
    """Loader processes for ``train.num_workers``: a count as given; ``auto`` is 0 for
    arrays (augmented on the device, workers would only copy) and otherwise this process's
    share of the usable cores, so decoding files runs in parallel with the model step.

    Examples:
        >>> loader_workers(TrainConfig(num_workers="auto"), in_memory=True)
        0
        >>> loader_workers(TrainConfig(num_workers=3), in_memory=True)
        3
    """
    if isinstance(train.num_workers, int):
        return train.num_workers
    if in_memory:
        return 0
    processes = train.devices if isinstance(train.devices, int) and train.devices > 0 else 1
    return max(1, usable_cores() // processes)
