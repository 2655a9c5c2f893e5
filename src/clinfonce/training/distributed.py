"""Data-parallel training (DDP) that trains exactly what one process would.

``train.batch_size`` is the *global* batch: every step, the single-process batch of the same
seed and epoch is split across the processes (:class:`DistributedBatchSampler`), and the loss
contrasts each process's anchors against the views of all processes
(``ClInfoNCELoss(gather_distributed=True)``), scaled so that DistributedDataParallel's mean of
the per-process gradients is the gradient of the whole batch. So a run on 8 GPUs follows the
run on one device (up to floating-point order and BatchNorm, see ``train.sync_batchnorm``), and
the learning rate needs no rescaling.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, Sampler, Subset

from clinfonce.evaluation.features import extract_features
from clinfonce.losses.distributed import distributed_world, gather_rows
from clinfonce.training.objective import Objective

if TYPE_CHECKING:  # the config schema includes the methods' settings, which build on this
    from clinfonce.training.config import TrainConfig

T = TypeVar("T")


class _EpochSampler(Protocol):
    def __iter__(self) -> Iterator[int]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...


class DistributedBatchSampler(Sampler[list[int]]):
    """This process's share of every global batch drawn from ``sampler``'s order.

    The order of ``sampler`` (the same on every process, e.g. an
    :class:`~clinfonce.data.datasets.EpochShuffleSampler`) is cut into global batches of
    ``batch_size``; process ``r`` of ``W`` gets the ``r``-th of ``W`` contiguous, near-equal
    parts of each (sizes differ by at most one). Sample indices are kept and nothing is
    padded or repeated: over the processes, every sample of the epoch is seen exactly once
    (the dropped tail aside, with ``drop_last``), and the concatenation in rank order is the
    single-process batch.

    Lightning calls ``set_epoch`` on ``batch_sampler.sampler``, so the order follows the epoch
    (pass ``use_distributed_sampler=False`` to the Trainer, see :func:`trainer_kwargs`).

    Args:
        sampler: the global order of sample indices for the epoch.
        batch_size: samples per global batch.
        drop_last: drop a last, smaller global batch (training: every step contrasts a full
            batch). Without it (embedding the whole dataset), a process whose share of that
            last batch is empty gets one batch fewer, so do not run collectives per batch then.
        rank: this process's rank (default: from the initialised process group, read at
            iteration time, so the loader may be built before the group exists).
        world_size: number of processes (default: like ``rank``).

    Examples:
        >>> from clinfonce.data.datasets import EpochShuffleSampler
        >>> order = EpochShuffleSampler(7, seed=0)
        >>> list(order)
        [4, 0, 5, 3, 2, 6, 1]
        >>> [list(DistributedBatchSampler(order, 5, False, rank=r, world_size=2))
        ...  for r in (0, 1)]
        [[[4, 0, 5], [6]], [[3, 2], [1]]]
    """

    def __init__(
        self,
        sampler: _EpochSampler,
        batch_size: int,
        drop_last: bool,
        *,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if (rank is None) != (world_size is None):
            raise ValueError("give both rank and world_size, or neither (process group)")
        if world_size is not None and rank is not None and not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last
        self.rank, self.world_size = rank, world_size
        self._skip = 0

    def skip_next(self, batches: int) -> None:
        """Leave out the first ``batches`` batches of the next pass only: a run resumed from
        a mid-epoch checkpoint continues the epoch where the checkpoint left it."""
        self._skip = batches

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's order (for loops other than Lightning's)."""
        self.sampler.set_epoch(epoch)

    def _world(self) -> tuple[int, int]:
        rank, world = (
            (self.rank, self.world_size)
            if self.rank is not None and self.world_size is not None
            else distributed_world()
        )
        if self.drop_last and self.batch_size < world:
            raise ValueError(
                f"train.batch_size={self.batch_size} is the global batch and must be at least "
                f"the number of processes ({world}) so that every process gets a sample"
            )
        return rank, world

    def _global_sizes(self) -> list[int]:
        total = len(self.sampler)
        full, tail = divmod(total, self.batch_size)
        return [self.batch_size] * full + ([tail] if tail and not self.drop_last else [])

    def __len__(self) -> int:
        rank, world = self._world()
        return sum(1 for size in self._global_sizes() if _share(size, rank, world)[1] > 0)

    def __iter__(self) -> Iterator[list[int]]:
        rank, world = self._world()
        order = list(self.sampler)
        skip, self._skip = self._skip, 0
        start = 0
        for index, size in enumerate(self._global_sizes()):
            offset, count = _share(size, rank, world)
            if count > 0 and index >= skip:
                yield order[start + offset : start + offset + count]
            start += size


def shard_rows(size: int) -> range:
    """This process's contiguous share of ``size`` rows (all of them in one process).

    Examples:
        >>> shard_rows(5)
        range(0, 5)
    """
    rank, world = distributed_world()
    if size < world:
        raise ValueError(f"{size} rows cannot be shared by {world} processes")
    offset, count = _share(size, rank, world)
    return range(offset, offset + count)


def gather_shards(local: torch.Tensor) -> torch.Tensor:
    """Every process's :func:`shard_rows` part concatenated in rank order, on every process.

    Since the shares are contiguous and in rank order, row ``i`` of the result is sample
    ``i``. The transfer runs on the collective's device (CUDA for NCCL); the result is on
    ``local``'s device.

    Examples:
        >>> gather_shards(torch.arange(3))
        tensor([0, 1, 2])
    """
    if distributed_world()[1] == 1:
        return local
    device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    return gather_rows(local.to(device))[0].to(local.device)


def extract_features_sharded(
    embed: Callable[[torch.Tensor], torch.Tensor],
    dataset: Dataset[dict[str, torch.Tensor]],
    *,
    batch_size: int = 512,
    model: nn.Module | None = None,
) -> torch.Tensor:
    """:func:`~clinfonce.evaluation.extract_features` of a whole dataset, split over processes.

    Each process embeds only its share (no sample twice, none padded), then the shares are
    gathered, so every process holds the features of all ``len(dataset)`` samples in dataset
    order, as one process computing them alone would. Every process must call this.

    Examples:
        >>> data = {"image": torch.arange(6.0).view(3, 2)}
        >>> rows = [dict(image=data["image"][i]) for i in range(3)]
        >>> extract_features_sharded(lambda x: x * 2, rows).tolist()
        [[0.0, 2.0], [4.0, 6.0], [8.0, 10.0]]
    """
    share = Subset(dataset, shard_rows(len(dataset)))  # type: ignore[arg-type]
    features, _ = extract_features(embed, share, batch_size=batch_size, model=model)
    return gather_shards(features)


def broadcast_object(value: T, src: int = 0) -> T:
    """``value`` of process ``src`` on every process (e.g. K-means ids clustered once).

    Examples:
        >>> broadcast_object({"ids": [0, 1]})
        {'ids': [0, 1]}
    """
    if distributed_world()[1] == 1:
        return value
    box: list[Any] = [value]
    dist.broadcast_object_list(box, src=src)
    out: T = box[0]
    return out


def batch_shares(batch_size: int, world: int) -> list[int]:
    """Rows of every process in a global batch of ``batch_size`` (as
    :class:`DistributedBatchSampler` splits it).

    Examples:
        >>> batch_shares(10, 4)
        [3, 3, 2, 2]
    """
    return [_share(batch_size, rank, world)[1] for rank in range(world)]


def _share(size: int, rank: int, world: int) -> tuple[int, int]:
    """``(offset, count)`` of rank's contiguous part when ``size`` items split ``world`` ways."""
    base, extra = divmod(size, world)
    return rank * base + min(rank, extra), base + (rank < extra)


def trainer_kwargs(train: TrainConfig, *, idle_parameters: bool = False) -> dict[str, Any]:
    """Lightning ``Trainer`` arguments for the devices, nodes and DDP settings of ``train``.

    The loaders bring their own :class:`DistributedBatchSampler`, so Lightning must not
    replace the sampler with its padding ``DistributedSampler``.

    Args:
        train: the ``train`` section.
        idle_parameters: some parameters get no gradient in some steps (a head whose terms
            are off during a warm-up, :func:`has_idle_parameters`); DDP must then look for
            them (``find_unused_parameters``), or it fails at the next step.

    Examples:
        >>> from clinfonce.training.config import TrainConfig
        >>> kwargs = trainer_kwargs(TrainConfig(devices=8, num_nodes=2, strategy="ddp"))
        >>> kwargs["devices"], kwargs["num_nodes"], kwargs["use_distributed_sampler"]
        (8, 2, False)
        >>> trainer_kwargs(TrainConfig(devices=2), idle_parameters=True)["strategy"]
        'ddp_find_unused_parameters_true'
    """
    strategy = train.strategy
    several = train.devices != 1 or train.num_nodes > 1
    on_cpu = train.accelerator == "cpu" or (
        train.accelerator == "auto" and not torch.cuda.is_available()
    )
    if train.sync_batchnorm and several and on_cpu:
        raise ValueError(
            "train.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm does not run on CPU); "
            "set train.sync_batchnorm=false for CPU runs"
        )
    if idle_parameters:
        if strategy == "auto" and several:
            strategy = "ddp"
        if strategy in _DDP_LAUNCHERS:
            strategy = f"{strategy}_find_unused_parameters_true"
    return {
        "devices": train.devices,
        "num_nodes": train.num_nodes,
        "strategy": strategy,
        "sync_batchnorm": train.sync_batchnorm,
        "use_distributed_sampler": False,
    }


_DDP_LAUNCHERS = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")


def has_idle_parameters(module: nn.Module) -> bool:
    """Whether a module's objective has terms limited to some epochs (their heads may idle).

    Examples:
        >>> from clinfonce.training.objective import Objective, ObjectiveTerm
        >>> class M(nn.Module):
        ...     def __init__(self, **epochs):
        ...         super().__init__()
        ...         self.objective = Objective([ObjectiveTerm("a", "instance", **epochs)])
        >>> has_idle_parameters(M()), has_idle_parameters(M(start_epoch=3))
        (False, True)
    """
    objective = getattr(module, "objective", None)
    if not isinstance(objective, Objective):
        return False
    return any(t.start_epoch > 0 or t.end_epoch is not None for t in objective.terms)
