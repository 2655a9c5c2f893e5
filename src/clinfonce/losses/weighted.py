"""Cl-InfoNCE with weighted positives and extra keys from a memory of past projections.

The general form of :func:`clinfonce.losses.cl_infonce_loss`. Every view ``a`` of the local
samples is an anchor; its keys are every other view of the (global) batch and, when a
memory is given, the ``M`` projections it holds. With ``w(a, k) >= 0`` the positive weight
of key ``k`` for anchor ``a`` (:class:`~clinfonce.losses.positives.Positives`: 1 for equal
cluster ids, or a weight from shared tags) and ``f(a, k) = <u_a, u_k> / tau``::

    loss_a = log sum_{k != a} exp f(a, k)  -  sum_{k != a} w(a, k) f(a, k) / sum_{k != a} w(a, k)

averaged over the anchors whose weights do not all vanish. With 0/1 weights from a
partition and no memory this is exactly the Cl-InfoNCE loss. A sample is always a positive
of itself with weight 1: its other views, and its own *past* entries in the memory (the same
image embedded at an earlier step, like MoCo's positive key), whatever its ids or tags.

Nothing of size ``anchors x keys`` is kept: the numerator only needs, per anchor sample, the
weighted sum of the key vectors, computed (and, in backward, its gradient) block by block
from the weights of one block of anchors at a time, and the denominator is the chunked
:func:`~clinfonce.losses.logsumexp.masked_logsumexp` with the memory appended to the keys.
There is no host synchronisation: the count of valid anchors stays a tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from clinfonce.losses.cl_infonce import _check_scalars, mean_over_anchors
from clinfonce.losses.distributed import (
    distributed_world,
    gather_rows,
    gather_with_grad,
)
from clinfonce.losses.logsumexp import (
    CPU_BLOCK_ELEMENTS,
    GPU_BLOCK_ELEMENTS,
    MIN_CHUNK_ROWS,
    masked_logsumexp,
)
from clinfonce.losses.positives import Positives
from clinfonce.losses.precision import at_least_float32, full_precision


@dataclass(frozen=True)
class MemoryKeys:
    """Extra keys for the loss: past projections with what makes them positive.

    Attributes:
        keys: ``[M, D]`` L2-normalised projections (no gradient flows into them).
        positives: their ids or tags (the same kind as the batch's).
        index: int64 ``[M]`` dataset index of the sample each entry came from, so that an
            anchor's own past entries are recognised.
    """

    keys: Tensor
    positives: Positives
    index: Tensor

    def __post_init__(self) -> None:
        m = self.keys.shape[0]
        if self.keys.dim() != 2 or len(self.positives) != m or self.index.shape != (m,):
            raise ValueError(
                f"memory: keys [M, D], positives [M] and index [M] must agree; got keys "
                f"{tuple(self.keys.shape)}, {len(self.positives)} positives, index "
                f"{tuple(self.index.shape)}"
            )


def weighted_cl_infonce_loss(
    features: Tensor,
    positives: Positives,
    *,
    sample_index: Tensor | None = None,
    memory: MemoryKeys | None = None,
    temperature: float = 0.1,
    base_temperature: float | None = None,
    normalize: bool = True,
    gather_distributed: bool = False,
    rows_per_rank: Sequence[int] | None = None,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Loss of a batch with weighted positives and optional memory keys, and its valid anchors.

    Args:
        features: ``[N, V, D]`` projections of this process's samples.
        positives: their ids or tags (``N`` samples).
        sample_index: int64 ``[N]`` dataset index of each sample; needed with ``memory``
            (own past entries are found by it). None: samples are told apart by position.
        memory: extra keys (see :class:`MemoryKeys`), the same on every process.
        temperature: ``tau``.
        base_temperature: multiply the loss by ``temperature / base_temperature`` (off: None).
        normalize: L2-normalise ``features`` first.
        gather_distributed: contrast against all processes' views, as
            :func:`clinfonce.losses.cl_infonce_loss` does (loss scaled so that the mean over
            processes is the global batch's loss).
        rows_per_rank: with ``gather_distributed``, every process's ``N`` when known (as for
            :func:`clinfonce.losses.cl_infonce_loss`): not exchanged on every call then.
        chunk_size: anchor rows per block (None: about 4M weights or logits per block on
            CPU, 64M on GPUs).

    Returns:
        The scalar loss (float32, float64 for float64 inputs; 0 connected to ``features``
        when no anchor has a positive) and this process's number of valid anchors, a tensor.

    Examples:
        >>> import torch
        >>> from clinfonce.losses.positives import Overlap, Positives
        >>> tags = torch.tensor([[1, 0], [1, 1], [0, 1], [0, 0]], dtype=torch.bool)
        >>> loss, valid = weighted_cl_infonce_loss(
        ...     torch.randn(4, 1, 8), Positives(tags=tags, overlap=Overlap("any")))
        >>> int(valid)       # the sample without tags has no positive with one view
        3
    """
    _check_scalars(temperature, base_temperature, chunk_size)
    if features.dim() != 3 or not features.is_floating_point() or min(features.shape) < 1:
        raise ValueError(
            f"features: expected a floating-point tensor [N, V, D] with N, V, D >= 1; got "
            f"{features.dtype} {tuple(features.shape)}"
        )
    n, views, _ = features.shape
    if len(positives) != n:
        raise ValueError(f"positives: expected {n} samples (N of features); got {len(positives)}")
    if memory is not None and sample_index is None:
        raise ValueError("sample_index: needed with a memory, to recognise own past entries")
    if sample_index is not None and sample_index.shape != (n,):
        raise ValueError(f"sample_index: expected shape [{n}]; got {tuple(sample_index.shape)}")
    device = features.device
    with full_precision(device):
        local = at_least_float32(features)
        dtype = local.dtype
        if normalize:
            local = F.normalize(local, dim=-1)
        rows = rows_per_rank
        everything, first = gather_with_grad(local, rows) if gather_distributed else (local, 0)
        batch = everything.shape[0]
        index = _batch_index(sample_index, n, device, gather_distributed, rows)
        key_positives = positives.with_values(positives.values.to(device))
        if gather_distributed:
            key_positives = key_positives.with_values(gather_rows(key_positives.values, rows)[0])
        vectors = everything.sum(dim=1)
        multiplicity = torch.full((batch,), float(views), dtype=dtype, device=device)
        memory_vectors = everything.new_zeros(0, everything.shape[2])
        if memory is not None:
            memory_vectors = memory.keys.to(device=device, dtype=dtype)
            key_positives = key_positives.concat(memory.positives)
            index = torch.cat([index, memory.index.to(device)])
            vectors = torch.cat([vectors, memory_vectors])
            multiplicity = torch.cat([multiplicity, multiplicity.new_ones(len(memory.index))])
        total_keys = batch * views + memory_vectors.shape[0]
        if total_keys < 2:
            raise ValueError(
                f"features: need at least 2 keys in total to contrast; got shape "
                f"{tuple(features.shape)} and no memory entries"
            )

        def block_weights(start: int, stop: int) -> Tensor:
            rows = slice(first + start, first + stop)
            weights = key_positives.weights(key_positives, rows, slice(None), dtype)
            own = index[rows, None] == index[None, :]
            return torch.where(own, 1.0, weights)

        rows_per_block = chunk_size or _rows_per_block(vectors.shape[0], device)
        positive_sums, weight_totals = _WeightedSums.apply(
            vectors, multiplicity, block_weights, n, rows_per_block
        )
        num_positives = weight_totals - 1.0  # the anchor itself had weight 1
        valid = num_positives > 0
        positive_dots = (local * positive_sums[:, None, :]).sum(-1) - (local * local).sum(-1)
        scale = 1.0 / temperature
        keys = torch.cat([everything.reshape(batch * views, -1), memory_vectors])
        lse = masked_logsumexp(
            local.reshape(n * views, -1), keys, scale, first * views, chunk_size
        ).view(n, views)
        per_anchor = lse - scale * positive_dots / torch.where(valid, num_positives, 1.0)[:, None]
        per_sample = torch.where(valid, per_anchor.sum(dim=1), 0.0)
        local_valid = valid.sum() * views
        loss = mean_over_anchors(
            per_sample, local_valid, gather_distributed, temperature, base_temperature
        )
    return loss, local_valid


def _batch_index(
    sample_index: Tensor | None,
    n: int,
    device: torch.device,
    gathered: bool,
    rows_per_rank: Sequence[int] | None,
) -> Tensor:
    """Dataset index of every batch sample (all processes'), or distinct negative positions."""
    if sample_index is None:
        positions = -1 - torch.arange(n, device=device)  # never equal to a dataset index
        if gathered:  # distinct across processes too
            rank = distributed_world()[0]
            positions = positions - rank * (1 << 40)
        local = positions
    else:
        local = sample_index.to(device=device, dtype=torch.int64)
    return gather_rows(local, rows_per_rank)[0] if gathered else local


def _rows_per_block(keys: int, device: torch.device) -> int:
    budget = CPU_BLOCK_ELEMENTS if device.type == "cpu" else GPU_BLOCK_ELEMENTS
    return max(MIN_CHUNK_ROWS, budget // max(keys, 1))


class _WeightedSums(torch.autograd.Function):
    """``(W @ vectors, W @ multiplicity)`` with ``W`` made one block of rows at a time.

    ``W`` is never stored: forward and backward ask ``block_weights(start, stop)`` for the
    rows they need, so memory is one ``[rows_per_block, keys]`` block.
    """

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        vectors: Tensor,
        multiplicity: Tensor,
        block_weights: Callable[[int, int], Tensor],
        rows: int,
        rows_per_block: int,
    ) -> tuple[Tensor, Tensor]:
        sums = vectors.new_empty(rows, vectors.shape[1])
        totals = vectors.new_empty(rows)
        for start in range(0, rows, rows_per_block):
            stop = min(start + rows_per_block, rows)
            weights = block_weights(start, stop)
            sums[start:stop] = weights @ vectors
            totals[start:stop] = weights @ multiplicity
        ctx.mark_non_differentiable(totals)
        ctx.block_weights = block_weights  # type: ignore[attr-defined]
        ctx.shape = (rows, rows_per_block, vectors.shape)  # type: ignore[attr-defined]
        return sums, totals

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_sums: Tensor, _grad_totals: Tensor) -> tuple[Tensor | None, ...]:
        rows, rows_per_block, shape = ctx.shape
        grad_vectors = grad_sums.new_zeros(shape)
        for start in range(0, rows, rows_per_block):
            stop = min(start + rows_per_block, rows)
            grad_vectors.addmm_(ctx.block_weights(start, stop).T, grad_sums[start:stop])
        return grad_vectors, None, None, None, None
