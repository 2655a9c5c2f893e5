"""``ce-clusters``: a baseline that predicts the stage-1 cluster id (docs/method.md §5).

It uses the same auxiliary information as Cl-InfoNCE, and shares the encoder, augmentation,
optimiser and schedule of the contrastive methods
(:class:`~clinfonce.training.base.EncoderModule`): a linear layer on the encoder (the
linear-probe architecture) predicts the cluster id, cross-entropy over every view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clinfonce.clusters._codes import dense_rank
from clinfonce.data.config import UNNAMED_CLUSTERING
from clinfonce.data.prepare import PreparedData
from clinfonce.losses.precision import at_least_float32
from clinfonce.models import feature_dim
from clinfonce.training.base import EncoderModule
from clinfonce.training.methods.spec import BaselineMethod, data_shape
from clinfonce.training.objective import ObjectiveTerm

if TYPE_CHECKING:  # the config schema includes the methods' settings sections
    from clinfonce.training.config import ExperimentConfig


class ClusterClassifier(EncoderModule):
    """``ce-clusters``: encoder + linear layer, cross-entropy on the stage-1 cluster id.

    Args:
        config: the run's checked config.
        in_channels: image channels.
        image_size: model input side.
        mean: per-channel normalisation mean.
        std: per-channel normalisation std.
        num_clusters: K; the ids registered with :meth:`set_cluster_ids` are in ``0..K-1``.

    Examples:
        >>> from clinfonce.training.config import config_from_dict
        >>> cfg = config_from_dict({"method": {"name": "ce-clusters"},
        ...                         "clusters": {"builder": "attributes"}})
        >>> module = ClusterClassifier(cfg, in_channels=1, image_size=8,
        ...                            mean=[0.5], std=[0.25], num_clusters=6)
        >>> module.head
        Linear(in_features=128, out_features=6, bias=True)
    """

    def __init__(
        self,
        config: ExperimentConfig,
        *,
        in_channels: int,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        num_clusters: int,
    ) -> None:
        super().__init__(config, in_channels=in_channels, image_size=image_size, mean=mean, std=std)
        self.store_hyperparameters()
        if num_clusters < 1:
            raise ValueError(f"ce-clusters needs at least one cluster, got {num_clusters}")
        self.head = nn.Linear(feature_dim(self.encoder), num_clusters)

    def set_cluster_ids(self, ids: torch.Tensor | np.ndarray) -> None:
        """Register the target id (``0..K-1``) of every training sample (row = ``index``);
        not saved in checkpoints, training rebuilds them from the data."""
        table = torch.as_tensor(ids, dtype=torch.int64).cpu()
        if (
            table.dim() != 1
            or bool((table < 0).any())
            or bool((table >= self.head.out_features).any())
        ):
            raise ValueError(
                f"cluster ids must be a vector of ids in 0..{self.head.out_features - 1}"
            )
        self.set_sample_table("cluster_ids", table)

    def compute_loss(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if "cluster_ids" not in self.sample_tables:
            raise ValueError("ce-clusters needs cluster ids (set_cluster_ids; configure clusters)")
        views = batch["image"]
        logits = self.head(self(views.flatten(0, 1)))
        targets = self.lookup("cluster_ids", batch).repeat_interleave(views.shape[1])
        return F.cross_entropy(at_least_float32(logits), targets), {}


@dataclass(frozen=True)
class ClusterClassifierMethod(BaselineMethod):
    """``ce-clusters``: its targets are the unnamed clustering, renumbered ``0..K-1``."""

    module: type[EncoderModule] = ClusterClassifier

    def check(self, config: ExperimentConfig) -> None:
        super().check(config)
        if UNNAMED_CLUSTERING not in config.clusters.sources:
            raise ValueError(
                "method.name=ce-clusters predicts the stage-1 cluster ids: set "
                "clusters.assignment or clusters.builder (+ clusters.params) at the top of the "
                "clusters section"
            )

    def build(
        self, config: ExperimentConfig, data: PreparedData, terms: Sequence[ObjectiveTerm]
    ) -> EncoderModule:
        """The classifier, with exactly one output per cluster (ids renumbered in id order;
        ``data.clusters`` stays as built)."""
        if data.clusters is None:
            raise ValueError("ce-clusters needs cluster ids: configure the clusters section")
        ids, count = dense_rank(data.clusters)
        module = ClusterClassifier(config, num_clusters=count, **data_shape(data, config))
        module.set_cluster_ids(ids)
        return module


CE_CLUSTERS = ClusterClassifierMethod(
    "ce-clusters", "baseline: predict the stage-1 cluster id", needs=("clusters",)
)
