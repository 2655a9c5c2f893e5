"""Cl-InfoNCE: contrastive loss whose positives are the views of samples in the same cluster.

For ``N`` samples with ``V`` views each, ``u`` the (L2-normalised) embeddings and
``f(a, b) = <u_a, u_b> / temperature``, every one of the ``N * V`` views is an anchor ``a``:

* positives ``P(a)``: every *other* view whose sample is in ``a``'s cluster (this always
  includes the other views of ``a``'s own sample);
* ``loss_a = -1/|P(a)| * sum_{p in P(a)} [f(a, p) - log sum_{b != a} exp f(a, b)]``
  (the mean over positives is outside the log);
* the loss is the mean of ``loss_a`` over the anchors with ``|P(a)| >= 1``; anchors without
  positives (a singleton cluster with one view) are left out, not counted as zero.

Every sample its own cluster gives SimCLR's NT-Xent; clusters equal to the labels give
SupCon. See docs/method.md §1.

How it stays fast and lean: nothing of size ``(N*V)^2`` is built except one block of
logits at a time inside :func:`~clinfonce.losses.logsumexp.masked_logsumexp` (the
denominator, with the anchor's own column masked, recomputed in backward). The numerator
needs no mask at all: with ``S_c`` the sum of all views in cluster ``c``,
``sum_{p in P(a)} <u_a, u_p> = <u_a, S_{z(a)}> - <u_a, u_a>`` and
``|P(a)| = V * n_{z(a)} - 1``, which costs ``O(N*V*D)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from clinfonce.losses.distributed import (
    all_reduce_sum,
    distributed_world,
    gather_rows,
    gather_with_grad,
)
from clinfonce.losses.logsumexp import masked_logsumexp
from clinfonce.losses.precision import at_least_float32, full_precision


def cl_infonce_loss(
    features: Tensor,
    cluster_ids: Tensor | None = None,
    mask: Tensor | None = None,
    *,
    temperature: float = 0.1,
    base_temperature: float | None = None,
    normalize: bool = True,
    gather_distributed: bool = False,
    rows_per_rank: Sequence[int] | None = None,
    chunk_size: int | None = None,
) -> Tensor:
    """The Cl-InfoNCE loss of a batch (functional form of :class:`ClInfoNCELoss`).

    Args:
        features: ``[N, V, D]`` embeddings, ``V >= 1`` views per sample, ``N * V >= 2``.
            float16/bfloat16 inputs are computed in float32, with autocast off inside (a
            surrounding ``torch.autocast`` does not lower its precision). Non-finite values
            give a non-finite loss (they are not scanned for: that would wait for the device
            on every call).
        cluster_ids: integer ``[N]`` cluster id per sample (any integer values). None makes
            every sample its own cluster (SimCLR).
        mask: boolean ``[N, N]`` sample-level positive relation, for positives that are not
            a partition (shared tags, hierarchy distance); ``mask[i, j]`` makes all views of
            ``j`` positives of the views of ``i``. Need not be symmetric. The diagonal is
            ignored: a sample's own other views are always positives, as in the cluster form.
            Exclusive with ``cluster_ids``. With ``gather_distributed`` it must be this
            process's rows of the global mask, ``[N_local, N_global]``, with columns in rank
            order.
        temperature: ``tau`` in ``f(a, b) = <u_a, u_b> / tau``.
        base_temperature: if given, the loss is multiplied by ``temperature /
            base_temperature`` (the official code's hidden factor with 0.07); off by default.
        normalize: L2-normalise the features first (the method assumes unit vectors).
        gather_distributed: under ``torch.distributed`` with several processes, contrast the
            local anchors against the views (and cluster ids) of all processes, with
            gradients flowing to every process. The returned value is then scaled so that its
            *mean* over processes is the loss of the concatenated global batch, which makes
            DistributedDataParallel's averaged gradient equal the single-process gradient of
            the global batch (even when processes have different numbers of valid anchors).
            A no-op on one process.
        rows_per_rank: with ``gather_distributed``, every process's ``N`` in rank order when
            the caller knows them (a training loop does, from its global batch size): saves
            exchanging them, and waiting for that, on every call. None exchanges them.
        chunk_size: anchor rows per block of the denominator (memory vs. speed); None picks
            blocks of about 4M logits
            (CPU) or 64M logits (GPU).

    Returns:
        Scalar float32 tensor (float64 for float64 inputs), also under autocast. If no anchor
        has a positive, a zero that is still connected to ``features`` (its gradient is
        zero), never NaN.

    Raises:
        ValueError: malformed shapes, dtypes or values (the message names the argument).

    Examples:
        >>> import torch
        >>> features = torch.randn(8, 2, 16)           # 8 samples, 2 views, 16 dims
        >>> ids = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
        >>> loss = cl_infonce_loss(features, ids, temperature=0.1)
        >>> loss.shape, bool(loss > 0)
        (torch.Size([]), True)
        >>> simclr = cl_infonce_loss(features)          # every sample its own cluster
    """
    loss, _ = cl_infonce_loss_with_count(
        features,
        cluster_ids,
        mask,
        temperature=temperature,
        base_temperature=base_temperature,
        normalize=normalize,
        gather_distributed=gather_distributed,
        rows_per_rank=rows_per_rank,
        chunk_size=chunk_size,
    )
    return loss


def cl_infonce_loss_with_count(
    features: Tensor,
    cluster_ids: Tensor | None = None,
    mask: Tensor | None = None,
    *,
    temperature: float = 0.1,
    base_temperature: float | None = None,
    normalize: bool = True,
    gather_distributed: bool = False,
    rows_per_rank: Sequence[int] | None = None,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """:func:`cl_infonce_loss` plus the number of this process's anchors that had a positive.

    Anchors without positives do not enter the mean; the count tells how many did (for
    logging, e.g. when V = 1 and many clusters are singletons). It is a 0-dim int64 tensor on
    the features' device, so that computing it never waits for the device.

    Examples:
        >>> import torch
        >>> features = torch.randn(4, 1, 8)              # one view per sample
        >>> loss, valid = cl_infonce_loss_with_count(features, torch.tensor([0, 0, 1, 2]))
        >>> int(valid)                                    # samples 2 and 3 have no positive
        2
    """
    _check_scalars(temperature, base_temperature, chunk_size)
    _check_features(features)
    n = features.shape[0]
    ids = None if cluster_ids is None else _as_cluster_ids(cluster_ids, n, features.device)
    if mask is not None:
        if ids is not None:
            raise ValueError(
                "cluster_ids and mask were both given; pass cluster_ids for a partition into "
                "clusters or mask for a general positive relation, not both"
            )
        mask = _as_mask(mask, n, features.device)
    with full_precision(features.device):
        return _loss_and_count(
            at_least_float32(features),
            ids,
            mask,
            temperature=temperature,
            base_temperature=base_temperature,
            normalize=normalize,
            gather_distributed=gather_distributed,
            rows_per_rank=rows_per_rank,
            chunk_size=chunk_size,
        )


def _loss_and_count(
    features: Tensor,
    ids: Tensor | None,
    mask: Tensor | None,
    *,
    temperature: float,
    base_temperature: float | None,
    normalize: bool,
    gather_distributed: bool,
    rows_per_rank: Sequence[int] | None,
    chunk_size: int | None,
) -> tuple[Tensor, Tensor]:
    """The loss of checked inputs (float32 or float64 features), with shapes that do not depend
    on the values and no transfer to the host: what a training step can run asynchronously
    and what ``torch.compile`` can trace whole."""
    n, views, _ = features.shape
    local = F.normalize(features, dim=-1) if normalize else features
    if gather_distributed:
        everything, first = gather_with_grad(local, rows_per_rank)
    else:
        everything, first = local, 0
    total_views = everything.shape[0] * views
    if total_views < 2:
        raise ValueError(
            f"features: need at least 2 views in total to contrast; got shape "
            f"{tuple(features.shape)} (N={n}, V={views}). Use more samples or views."
        )

    if ids is not None and gather_distributed:
        ids = gather_rows(ids, rows_per_rank)[0]
    positive_sums, positive_samples = _positive_groups(everything.sum(dim=1), ids, mask, first, n)
    num_positives = views * positive_samples - 1  # [N], the same for every view of a sample
    valid = num_positives >= 1
    positive_dots = (local * positive_sums[:, None, :]).sum(-1) - (local * local).sum(-1)

    scale = 1.0 / temperature
    lse = masked_logsumexp(
        local.reshape(n * views, -1),
        everything.reshape(total_views, -1),
        scale,
        first * views,
        chunk_size,
    ).view(n, views)
    per_anchor = lse - scale * positive_dots / num_positives.clamp(min=1)[:, None]
    per_sample = torch.where(valid, per_anchor.sum(dim=1), 0.0)

    local_valid = valid.sum() * views
    loss = mean_over_anchors(
        per_sample, local_valid, gather_distributed, temperature, base_temperature
    )
    return loss, local_valid


def mean_over_anchors(
    per_sample: Tensor,
    local_valid: Tensor,
    gather_distributed: bool,
    temperature: float,
    base_temperature: float | None,
) -> Tensor:
    """The loss from each sample's summed anchor losses: their mean over the valid anchors of
    every process, times the number of processes when gathering (so that DDP's averaged
    gradient is the single-process one), times ``temperature / base_temperature`` if given."""
    global_valid = all_reduce_sum(local_valid) if gather_distributed else local_valid
    world = distributed_world()[1] if gather_distributed else 1
    # Kept as a product even when nothing is valid so that the graph (and, across processes,
    # the gather's backward collective) is the same in every case.
    loss = per_sample.sum() * world / global_valid.clamp(min=1).to(per_sample.dtype)
    if base_temperature is not None:
        loss = loss * (temperature / base_temperature)
    return loss


class ClInfoNCELoss(nn.Module):
    """Cl-InfoNCE loss module; see :func:`cl_infonce_loss` for the semantics.

    After every call, :attr:`last_num_valid_anchors` holds how many of the batch's anchors
    (this process's) had at least one positive.

    Args:
        temperature: softmax temperature ``tau`` (paper: 0.1 for attribute and hierarchy
            clusters, 0.2 for K-means clusters).
        base_temperature: if given, multiply the loss by ``temperature / base_temperature``
            (0.07 reproduces the official code's scale); None (default) leaves it out.
        normalize: L2-normalise the features first.
        gather_distributed: contrast against the views of all processes under
            ``torch.distributed`` (see :func:`cl_infonce_loss`).
        chunk_size: anchor rows per block of the denominator; None picks automatically.

    Examples:
        >>> import torch
        >>> loss_fn = ClInfoNCELoss(temperature=0.2)
        >>> features = torch.randn(6, 2, 32, requires_grad=True)
        >>> loss = loss_fn(features, cluster_ids=torch.tensor([0, 1, 0, 1, 2, 2]))
        >>> loss.backward()
        >>> loss_fn.last_num_valid_anchors
        12
    """

    def __init__(
        self,
        temperature: float = 0.1,
        base_temperature: float | None = None,
        normalize: bool = True,
        gather_distributed: bool = False,
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        _check_scalars(temperature, base_temperature, chunk_size)
        self.temperature = temperature
        self.base_temperature = base_temperature
        self.normalize = normalize
        self.gather_distributed = gather_distributed
        self.chunk_size = chunk_size
        self._last_valid = torch.zeros((), dtype=torch.int64)

    @property
    def last_num_valid_anchors(self) -> int:
        """Anchors (this process's) with at least one positive in the last call (reading it
        waits for the device; the loss itself does not)."""
        return int(self._last_valid)

    def forward(
        self,
        features: Tensor,
        cluster_ids: Tensor | None = None,
        mask: Tensor | None = None,
        rows_per_rank: Sequence[int] | None = None,
    ) -> Tensor:
        """Loss of one batch; ``features`` ``[N, V, D]``, ``cluster_ids`` ``[N]`` or ``mask``
        (``rows_per_rank``: see :func:`cl_infonce_loss`)."""
        loss, self._last_valid = cl_infonce_loss_with_count(
            features,
            cluster_ids,
            mask,
            temperature=self.temperature,
            base_temperature=self.base_temperature,
            normalize=self.normalize,
            gather_distributed=self.gather_distributed,
            rows_per_rank=rows_per_rank,
            chunk_size=self.chunk_size,
        )
        return loss

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, base_temperature={self.base_temperature}, "
            f"normalize={self.normalize}, gather_distributed={self.gather_distributed}"
        )


def _positive_groups(
    view_sums: Tensor, all_ids: Tensor | None, mask: Tensor | None, first: int, n: int
) -> tuple[Tensor, Tensor]:
    """For each local sample: the sum of all views of its positive samples, itself included
    (``[n, D]``), and how many samples that is (``[n]``).

    ``view_sums`` (``[N_all, D]``) and ``all_ids`` cover every process's samples; the local
    ones start at row ``first``.
    """
    if all_ids is not None:
        cluster = _dense_ids(all_ids)
        rows = all_ids.shape[0]  # at most this many clusters: no data-dependent shape
        # index_put with accumulate: index_add's multi-threaded CPU kernel is far slower here.
        cluster_sums = view_sums.new_zeros(rows, view_sums.shape[1])
        cluster_sums = cluster_sums.index_put((cluster,), view_sums, accumulate=True)
        sizes = torch.zeros(rows, dtype=torch.int64, device=all_ids.device)
        sizes = sizes.index_put((cluster,), torch.ones_like(cluster), accumulate=True)
        own = cluster[first : first + n]
        return cluster_sums[own], sizes[own]
    if mask is not None:
        if mask.shape[1] != view_sums.shape[0]:
            raise ValueError(
                f"mask: expected shape [N_local, N_global] = [{n}, {view_sums.shape[0]}] "
                f"(rows: this process's samples, columns: all processes' samples); got "
                f"{tuple(mask.shape)}"
            )
        with_self = mask.clone()
        with_self.diagonal(offset=first).fill_(True)
        return with_self.to(view_sums.dtype) @ view_sums, with_self.sum(dim=1)
    own_views = view_sums[first : first + n]  # no clusters: a sample is its only positive
    return own_views, torch.ones(n, dtype=torch.int64, device=view_sums.device)


def _dense_ids(ids: Tensor) -> Tensor:
    """``ids`` renumbered ``0..K-1`` in increasing order of value (what ``torch.unique``'s
    inverse gives), from a sort: the result has the input's shape whatever the values.

    Examples:
        >>> _dense_ids(torch.tensor([7, -2, 7, 40]))
        tensor([1, 0, 1, 2])
    """
    ordered, order = torch.sort(ids)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[1:] = ordered[1:] != ordered[:-1]
    dense = torch.empty_like(ids)
    dense[order] = starts.cumsum(0) - 1
    return dense


def _check_scalars(
    temperature: float, base_temperature: float | None, chunk_size: int | None
) -> None:
    if not (
        isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0
    ):
        raise ValueError(f"temperature: expected a finite number > 0; got {temperature!r}")
    if base_temperature is not None and not (
        isinstance(base_temperature, (int, float))
        and math.isfinite(base_temperature)
        and base_temperature > 0
    ):
        raise ValueError(
            f"base_temperature: expected None or a finite number > 0; got {base_temperature!r}"
        )
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size: expected None or a positive integer; got {chunk_size!r}")


def _check_features(features: Tensor) -> None:
    if not isinstance(features, Tensor):
        raise ValueError(f"features: expected a torch.Tensor [N, V, D]; got {type(features)}")
    if features.dim() != 3:
        hint = " (one view per sample: use features.unsqueeze(1))" if features.dim() == 2 else ""
        raise ValueError(
            f"features: expected shape [N, V, D] (samples, views, dim); got "
            f"{tuple(features.shape)}{hint}"
        )
    if min(features.shape) < 1:
        raise ValueError(
            f"features: expected N, V, D >= 1 in shape [N, V, D]; got {tuple(features.shape)}"
        )
    if not features.is_floating_point():
        raise ValueError(f"features: expected a floating-point tensor; got {features.dtype}")


def _as_cluster_ids(cluster_ids: Tensor, n: int, device: torch.device) -> Tensor:
    ids = torch.as_tensor(cluster_ids)
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise ValueError(
            f"cluster_ids: expected an integer tensor; got dtype {ids.dtype} "
            f"(convert exact integer values with .long())"
        )
    if ids.shape != (n,):
        raise ValueError(
            f"cluster_ids: expected shape [N] = [{n}] (one id per sample of features); got "
            f"{tuple(ids.shape)}"
        )
    return ids.to(device=device, dtype=torch.int64)


def _as_mask(mask: Tensor, n: int, device: torch.device) -> Tensor:
    mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        raise ValueError(
            f"mask: expected a boolean tensor [N, N]; got dtype {mask.dtype} (use mask.bool() "
            f"if it holds 0/1)"
        )
    if mask.dim() != 2 or mask.shape[0] != n:
        raise ValueError(f"mask: expected shape [N, N] with N = {n}; got {tuple(mask.shape)}")
    return mask.to(device)
