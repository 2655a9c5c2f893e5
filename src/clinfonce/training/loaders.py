"""The training loader: per-epoch seeded shuffling, full global batches, its workers."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader

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
            EpochShuffleSampler(len(dataset), train.seed), train.batch_size, drop_last=True
        ),
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=train.accelerator != "cpu" and torch.cuda.is_available(),
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
