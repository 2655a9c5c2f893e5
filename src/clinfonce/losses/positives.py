"""Who is a positive of whom: one cluster id per sample, or weights from shared tags.

A partition (one cluster id per sample) makes two samples positive when their ids are
equal. Multi-label auxiliary information (a tag column, several attribute columns turned
into one presence column each) has no single id; :class:`Overlap` turns what two samples
share into a positive weight in ``[0, 1]``:

* ``any``: weight 1 when they share at least one tag;
* ``at-least``: weight 1 when they share at least ``min_shared`` tags;
* ``jaccard``: ``|A & B| / |A | B|``, the share of their tags they have in common.

A sample is always a positive of itself with weight 1 (its other views, and its own past
entries in a memory), whatever its tags, as in the cluster form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import Tensor

OverlapKind = Literal["any", "at-least", "jaccard"]
OVERLAP_KINDS: tuple[str, ...] = get_args(OverlapKind)


@dataclass(frozen=True)
class Overlap:
    """How shared tags become a positive weight.

    Attributes:
        kind: ``any``, ``at-least`` or ``jaccard`` (see the module docstring).
        min_shared: tags two samples must share for ``at-least`` (``any`` is 1).

    Examples:
        >>> import torch
        >>> tags = torch.tensor([[1, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=torch.bool)
        >>> Overlap("jaccard").weights(tags, tags)
        tensor([[1.0000, 0.3333, 0.0000],
                [0.3333, 1.0000, 0.5000],
                [0.0000, 0.5000, 1.0000]])
    """

    kind: OverlapKind = "any"
    min_shared: int = 1

    def __post_init__(self) -> None:
        if self.kind not in OVERLAP_KINDS:
            raise ValueError(
                f"overlap kind: expected one of {', '.join(OVERLAP_KINDS)}; got {self.kind!r}"
            )
        if not isinstance(self.min_shared, int) or self.min_shared < 1:
            raise ValueError(f"min_shared: expected an integer >= 1; got {self.min_shared!r}")

    def weights(self, rows: Tensor, columns: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """``[R, C]`` weights between boolean tag sets ``rows [R, T]`` and ``columns [C, T]``."""
        a, b = rows.to(dtype), columns.to(dtype)
        shared = a @ b.T
        if self.kind == "jaccard":
            union = a.sum(1, keepdim=True) + b.sum(1) - shared
            return shared / union.clamp(min=1)  # no tags on either side: 0 shared, weight 0
        needed = 1 if self.kind == "any" else self.min_shared
        return (shared >= needed).to(dtype)


@dataclass(frozen=True)
class Positives:
    """Per-sample positive information: cluster ids or tag sets (exactly one).

    Attributes:
        cluster_ids: integer ``[N]``; equal ids are positives (weight 1).
        tags: boolean ``[N, T]`` tag presence; weighted by ``overlap``.
        overlap: the rule for ``tags``.

    Examples:
        >>> import torch
        >>> by_ids = Positives(cluster_ids=torch.tensor([0, 0, 1]))
        >>> by_ids.weights(by_ids, slice(0, 2), slice(0, 3), torch.float32)
        tensor([[1., 1., 0.],
                [1., 1., 0.]])
    """

    cluster_ids: Tensor | None = None
    tags: Tensor | None = None
    overlap: Overlap = Overlap()

    def __post_init__(self) -> None:
        if (self.cluster_ids is None) == (self.tags is None):
            raise ValueError("Positives: give exactly one of cluster_ids and tags")
        if self.cluster_ids is not None:
            ids = self.cluster_ids
            if ids.dim() != 1 or ids.is_floating_point() or ids.dtype == torch.bool:
                raise ValueError(
                    f"cluster_ids: expected an integer tensor [N]; got dtype {ids.dtype}, shape "
                    f"{tuple(ids.shape)}"
                )
        if self.tags is not None and (self.tags.dim() != 2 or self.tags.dtype != torch.bool):
            raise ValueError(
                f"tags: expected a boolean tensor [N, T] (tag presence per sample); got dtype "
                f"{self.tags.dtype}, shape {tuple(self.tags.shape)}"
            )

    def __len__(self) -> int:
        values = self.cluster_ids if self.cluster_ids is not None else self.tags
        assert values is not None
        return int(values.shape[0])

    @property
    def values(self) -> Tensor:
        """The ids or tags, whichever is set."""
        values = self.cluster_ids if self.cluster_ids is not None else self.tags
        assert values is not None
        return values

    def with_values(self, values: Tensor) -> Positives:
        """The same kind of information (and rule) with other values, e.g. gathered ones."""
        if self.cluster_ids is not None:
            return Positives(cluster_ids=values)
        return Positives(tags=values, overlap=self.overlap)

    def weights(self, keys: Positives, rows: slice, columns: slice, dtype: torch.dtype) -> Tensor:
        """Weights ``[rows, columns]`` between this object's samples ``rows`` (anchors) and the
        samples ``columns`` of ``keys`` (of the same kind)."""
        if self.cluster_ids is not None:
            assert keys.cluster_ids is not None
            return (self.cluster_ids[rows, None] == keys.cluster_ids[None, columns]).to(dtype)
        assert self.tags is not None and keys.tags is not None
        return self.overlap.weights(self.tags[rows], keys.tags[columns], dtype)

    def concat(self, other: Positives) -> Positives:
        """This object's samples followed by ``other``'s (a memory's entries after a batch)."""
        return self.with_values(torch.cat([self.values, other.values.to(self.values.device)]))
