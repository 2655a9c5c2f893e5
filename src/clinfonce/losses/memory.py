"""A memory of the last projections of the global batch, used as extra keys by the loss.

With small batches few samples of a fine cluster meet in one batch, so Cl-InfoNCE finds few
positives and falls back towards SimCLR. The memory keeps the last ``size`` projections
(one per sample: its first view) with the dataset index of the sample each came from;
:func:`clinfonce.losses.weighted.weighted_cl_infonce_loss` contrasts every anchor against
them too, as negatives and, where the cluster ids (looked up by index when the loss is
computed, so re-clustered ids apply to old entries at once) agree, as positives.

Under ``torch.distributed`` every process pushes the whole global batch (gathered, in rank
order), so every process holds the same memory. It is a module: its buffers, the write
position and the fill count are part of the ``state_dict`` and of checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from clinfonce.losses.distributed import gather_rows


class ProjectionMemory(nn.Module):
    """A ring buffer of ``size`` projections with their sample index and label.

    Args:
        size: entries kept (``M``).
        dim: projection width.

    Examples:
        >>> import torch
        >>> memory = ProjectionMemory(size=3, dim=2)
        >>> memory.push(torch.eye(2), torch.tensor([7, 8]))
        >>> memory.push(torch.ones(2, 2), torch.tensor([9, 10]))
        >>> memory.entries()[1]          # the oldest entry (7) was overwritten
        tensor([10,  8,  9])
    """

    keys: Tensor
    index: Tensor
    labels: Tensor

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"memory size: expected an integer >= 1; got {size!r}")
        self.size = size
        self.register_buffer("keys", torch.zeros(size, dim))
        self.register_buffer("index", torch.full((size,), -1, dtype=torch.int64))
        self.register_buffer("labels", torch.full((size,), -1, dtype=torch.int64))
        self.filled = 0  # host integers: slicing with them needs no device synchronisation
        self.position = 0

    @torch.no_grad()
    def push(
        self,
        keys: Tensor,
        index: Tensor,
        labels: Tensor | None = None,
        rows_per_rank: Sequence[int] | None = None,
    ) -> None:
        """Append this step's ``[n, D]`` projections (every process's, gathered) with their
        dataset ``index`` and ``labels`` (-1 where unknown), overwriting the oldest
        (``rows_per_rank``: every process's ``n`` when known, see :func:`gather_rows`)."""
        rows = rows_per_rank
        keys, _ = gather_rows(keys.detach().to(self.keys.dtype), rows)
        index, _ = gather_rows(index.to(self.index.device, torch.int64), rows)
        labels = torch.full_like(index, -1) if labels is None else gather_rows(labels, rows)[0]
        count = keys.shape[0]
        if count > self.size:  # more than fits: keep the newest
            keys, index, labels = keys[-self.size :], index[-self.size :], labels[-self.size :]
            count = self.size
        slots = (self.position + torch.arange(count, device=self.keys.device)) % self.size
        self.keys.index_copy_(0, slots, keys.to(self.keys.device))
        self.index.index_copy_(0, slots, index.to(self.index.device))
        self.labels.index_copy_(0, slots, labels.to(self.labels.device, torch.int64))
        self.position = (self.position + count) % self.size
        self.filled = min(self.size, self.filled + count)

    def entries(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(keys [m, D], index [m], labels [m])`` of the ``m`` filled entries."""
        m = self.filled
        return self.keys[:m], self.index[:m], self.labels[:m]

    def nbytes(self) -> int:
        """Bytes held by the buffers."""
        return sum(t.numel() * t.element_size() for t in (self.keys, self.index, self.labels))

    def get_extra_state(self) -> Any:
        return {"filled": self.filled, "position": self.position}

    def set_extra_state(self, state: Any) -> None:
        self.filled, self.position = int(state["filled"]), int(state["position"])

    def extra_repr(self) -> str:
        return f"size={self.size}, dim={self.keys.shape[1]}, filled={self.filled}"
