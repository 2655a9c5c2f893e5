"""Row-wise logsumexp of a similarity matrix with each anchor's own column left out.

This is the denominator of every InfoNCE-style loss and the only part that costs
O(anchors x keys) memory. Autograd through ``torch.logsumexp`` keeps the whole logits matrix
alive until backward (and backward allocates another of the same size); the function below
keeps only the inputs and one number per anchor, and recomputes the logits block by block in
backward. Peak memory is one ``[chunk, keys]`` block instead of several full matrices.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from clinfonce.losses.precision import at_least_float32, full_precision

#: Logits per block when ``chunk_size`` is not given. On CPU, 16 MiB blocks were the best
#: trade-off measured (benchmarks/bench_loss.py): smaller blocks are up to 15% faster on an
#: idle machine, but every block adds a dozen multi-threaded operations, and on a busy machine
#: each can stall on a descheduled thread. On GPUs every block costs a dozen kernel launches,
#: so blocks are larger there (256 MiB; not tuned).
CPU_BLOCK_ELEMENTS = 1 << 22
GPU_BLOCK_ELEMENTS = 1 << 26
#: Fewer rows would make the matrix products inefficient for very large batches.
MIN_CHUNK_ROWS = 128


def masked_logsumexp(
    anchors: Tensor,
    keys: Tensor,
    scale: float,
    self_offset: int,
    chunk_size: int | None = None,
) -> Tensor:
    """``lse[a] = log sum_{b != self_offset + a} exp(scale * <anchors[a], keys[b]>)``.

    Args:
        anchors: ``[A, D]`` anchor vectors; anchor ``a`` is the key ``self_offset + a``.
        keys: ``[K, D]`` key vectors, ``K >= 2`` and ``self_offset + A <= K``.
        scale: multiplier of the dot products (``1 / temperature``).
        self_offset: index in ``keys`` of the first anchor (0 unless keys were gathered
            from several processes).
        chunk_size: anchor rows per block; None picks blocks of about 4M
            logits on CPU, 64M on GPUs (at least 128 rows).

    Returns:
        ``[A]`` tensor with the log-denominators, differentiable w.r.t. anchors and keys;
        computed in float32 at least, with autocast off (forward and backward).

    Examples:
        >>> import torch
        >>> x = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
        >>> lse = masked_logsumexp(x, x, scale=10.0, self_offset=0, chunk_size=4)
        >>> logits = (x @ x.T * 10.0).fill_diagonal_(float("-inf"))
        >>> torch.allclose(lse, logits.logsumexp(dim=1))
        True
    """
    if chunk_size is None:
        budget = CPU_BLOCK_ELEMENTS if keys.device.type == "cpu" else GPU_BLOCK_ELEMENTS
        chunk_size = max(MIN_CHUNK_ROWS, budget // keys.shape[0])
    elif chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None; got {chunk_size}")
    with full_precision(keys.device):
        out: Tensor = _MaskedLogSumExp.apply(
            at_least_float32(anchors), at_least_float32(keys), scale, self_offset, chunk_size
        )
    return out


def _block_logits(scaled: Tensor, keys: Tensor, diagonal: int, shift: Tensor | None) -> Tensor:
    """``scaled @ keys.T - shift`` with each row's own column set to -inf."""
    block = torch.mm(scaled, keys.T) if shift is None else torch.addmm(-shift, scaled, keys.T)
    block.diagonal(offset=diagonal).fill_(float("-inf"))
    return block


class _MaskedLogSumExp(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        anchors: Tensor,
        keys: Tensor,
        scale: float,
        self_offset: int,
        chunk_size: int,
    ) -> Tensor:
        lse = anchors.new_empty(anchors.shape[0])
        scaled = anchors * scale
        for start in range(0, anchors.shape[0], chunk_size):
            stop = min(start + chunk_size, anchors.shape[0])
            block = _block_logits(scaled[start:stop], keys, self_offset + start, None)
            row_max = block.amax(dim=1, keepdim=True)
            lse[start:stop] = row_max.squeeze(1) + block.sub_(row_max).exp_().sum(dim=1).log()
        ctx.save_for_backward(anchors, keys, lse)
        ctx.scale = scale  # type: ignore[attr-defined]
        ctx.self_offset = self_offset  # type: ignore[attr-defined]
        ctx.chunk_size = chunk_size  # type: ignore[attr-defined]
        return lse

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_lse: Tensor) -> tuple[Tensor | None, ...]:
        # d lse[a] / d logits[a, b] = softmax[a, b]; the logits are recomputed per block.
        anchors, keys, lse = ctx.saved_tensors
        with full_precision(anchors.device):
            return _MaskedLogSumExp._gradients(ctx, grad_lse, anchors, keys, lse)

    @staticmethod
    def _gradients(
        ctx: Any, grad_lse: Tensor, anchors: Tensor, keys: Tensor, lse: Tensor
    ) -> tuple[Tensor | None, ...]:
        need_anchors, need_keys = ctx.needs_input_grad[:2]
        grad_anchors = torch.empty_like(anchors) if need_anchors else None
        grad_keys = torch.zeros_like(keys) if need_keys else None
        scale: float = ctx.scale
        scaled = anchors * scale
        weights = grad_lse[:, None] * scale
        for start in range(0, anchors.shape[0], ctx.chunk_size):
            stop = min(start + ctx.chunk_size, anchors.shape[0])
            shift = lse[start:stop, None]
            prob = _block_logits(scaled[start:stop], keys, ctx.self_offset + start, shift).exp_()
            weight = weights[start:stop]
            if grad_anchors is not None:
                grad_anchors[start:stop] = weight * torch.mm(prob, keys)
            if grad_keys is not None:
                grad_keys.addmm_(prob.T, weight * anchors[start:stop])
        return grad_anchors, grad_keys, None, None, None
