"""Gathering tensors from every process of a ``torch.distributed`` group.

Contrasting local anchors against the views of all processes needs the other processes'
embeddings *with* their gradients: a plain ``all_gather`` cuts the graph, so the other
processes' views would act as constants and the result would only approximate the
single-process loss. :func:`gather_with_grad` routes the gradient back: every process
computes the gradient of its own loss w.r.t. the whole gathered tensor; summing those over
processes (``all_reduce``) gives the gradient of the sum of all processes' losses, and each
process keeps the slice that belongs to its own input.

Processes may hold different numbers of rows (e.g. a last, smaller batch); rows are padded
for the transfer and trimmed afterwards. The counts are exchanged first, and read on the
host, unless the caller passes them (``sizes``): a training loop knows them from its global
batch size, and then a gather never waits for the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.autograd.function import FunctionCtx


def distributed_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the default group, ``(0, 1)`` when not running distributed.

    Examples:
        >>> distributed_world()
        (0, 1)
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_rows(tensor: Tensor, sizes: Sequence[int] | None = None) -> tuple[Tensor, int]:
    """Concatenate ``tensor`` from all processes along dim 0, without gradient.

    Args:
        tensor: ``[n_rank, ...]``; the trailing shape and dtype must agree across processes.
        sizes: every process's ``n_rank`` in rank order, when known (else exchanged).

    Returns:
        ``(gathered, offset)``: the rows of every process in rank order, and the index of
        this process's first row in ``gathered``. Outside a multi-process group the input
        itself and offset 0.

    Examples:
        >>> import torch
        >>> gather_rows(torch.arange(3))
        (tensor([0, 1, 2]), 0)
    """
    rank, world = distributed_world()
    if world == 1:
        return tensor, 0
    sizes = _row_counts(tensor, sizes)
    return _all_gather_rows(tensor, sizes), sum(sizes[:rank])


def gather_with_grad(tensor: Tensor, sizes: Sequence[int] | None = None) -> tuple[Tensor, int]:
    """Like :func:`gather_rows`, but gradients reach every process's input.

    The backward pass sums the gradient of the gathered tensor over processes and returns this
    process's slice, i.e. the gradient of the *sum* of all processes' losses. Under
    DistributedDataParallel, whose gradient is the *mean* over processes, each process's loss
    should therefore be scaled so that the mean of the per-process losses is the global loss
    (:func:`clinfonce.losses.cl_infonce_loss` does this).

    Examples:
        >>> import torch
        >>> x = torch.ones(2, 3, requires_grad=True)
        >>> gathered, offset = gather_with_grad(x)   # single process: a no-op
        >>> gathered is x, offset
        (True, 0)
    """
    rank, world = distributed_world()
    if world == 1:
        return tensor, 0
    sizes = _row_counts(tensor, sizes)
    offset = sum(sizes[:rank])
    gathered: Tensor = _GatherWithGrad.apply(tensor, sizes, offset)
    return gathered, offset


def all_reduce_sum(value: Tensor) -> Tensor:
    """Sum of ``value`` over processes (a copy; the input is untouched); no-op on one process.

    Examples:
        >>> import torch
        >>> all_reduce_sum(torch.tensor(3))
        tensor(3)
    """
    if distributed_world()[1] == 1:
        return value
    total = value.clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


def _row_counts(tensor: Tensor, known: Sequence[int] | None) -> list[int]:
    if known is not None:
        rank, world = distributed_world()
        if len(known) != world or known[rank] != tensor.shape[0]:
            raise ValueError(
                f"sizes: expected {world} row counts with this process's ({tensor.shape[0]}) "
                f"at index {rank}; got {list(known)}"
            )
        return list(known)
    local = torch.tensor([tensor.shape[0]], device=tensor.device, dtype=torch.int64)
    counts = [torch.empty_like(local) for _ in range(distributed_world()[1])]
    dist.all_gather(counts, local)
    return [int(c.item()) for c in counts]


def _all_gather_rows(tensor: Tensor, sizes: list[int]) -> Tensor:
    longest = max(sizes)
    padded = tensor.new_zeros((longest, *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, tensor: Tensor, sizes: list[int], offset: int) -> Tensor:
        ctx.rows = (offset, offset + tensor.shape[0])  # type: ignore[attr-defined]
        return _all_gather_rows(tensor.detach(), sizes)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        total = grad.contiguous().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        start, stop = ctx.rows
        return total[start:stop], None, None
