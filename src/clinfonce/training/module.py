"""The LightningModule of the contrastive family (SimCLR, SupCon, Cl-InfoNCE).

The methods differ only in the ids their objective terms read; everything else (encoder,
heads, augmentation, optimiser) is shared, the encoder, input pipeline and optimiser with the
baselines too (:class:`clinfonce.training.base.EncoderModule`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from clinfonce.models import ProjectionHead, feature_dim
from clinfonce.training.base import EncoderModule
from clinfonce.training.objective import BATCH_SOURCES, Objective, ObjectiveTerm, objective_terms


class ContrastiveModule(EncoderModule):
    """Encoder + projection head(s) trained with a weighted sum of Cl-InfoNCE terms.

    Args:
        config: the run's :class:`ExperimentConfig` (as ``to_dict()``; stored in the
            checkpoint so :meth:`load_from_checkpoint` rebuilds the same model).
        in_channels: image channels.
        image_size: model input side.
        mean: per-channel normalisation mean (of ``[0, 1]`` pixels).
        std: per-channel normalisation std.
        terms: objective terms (default: :func:`~clinfonce.training.objective.objective_terms`
            of the config: its ``objective`` list or its method's preset). One projection
            head per head name of the terms.

    Batches are dicts with ``image`` (``uint8 [B, C, H, W]`` to augment here, or
    ``uint8 [B, V, C, S, S]`` views made by the loader), ``index`` and, as the terms need,
    ``label`` and ``cluster``. Named clusterings are registered with :meth:`set_assignment`.

    Examples:
        >>> from clinfonce.training.config import ExperimentConfig
        >>> cfg = ExperimentConfig()
        >>> module = ContrastiveModule(cfg.to_dict(), in_channels=3, image_size=32,
        ...                            mean=[0.5] * 3, std=[0.25] * 3)  # doctest: +SKIP
        >>> module.embed(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape  # doctest: +SKIP
        torch.Size([2, 128])
    """

    def __init__(
        self,
        config: dict[str, Any],
        *,
        in_channels: int,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        terms: Sequence[ObjectiveTerm] | None = None,
    ) -> None:
        super().__init__(config, in_channels=in_channels, image_size=image_size, mean=mean, std=std)
        self.save_hyperparameters(ignore=["terms"])
        model = self.cfg.model
        self.objective = Objective(
            terms if terms is not None else objective_terms(self.cfg),
            base_temperature=self.cfg.method.base_temperature,
        )
        dim = feature_dim(self.encoder)
        self.heads = nn.ModuleDict(
            {
                h: ProjectionHead(dim, model.head_hidden, model.head_out)
                for h in self.objective.heads
            }
        )
        self.assignments: dict[str, torch.Tensor] = {}

    # --- per-sample ids ------------------------------------------------------------------

    def set_assignment(self, name: str, cluster_ids: torch.Tensor) -> None:
        """Register per-sample cluster ids (indexed by the batch's ``index``) under ``name``,
        for terms whose ``ids`` is ``name`` (e.g. re-computed K-means ids each epoch)."""
        if name in BATCH_SOURCES:
            raise ValueError(f"assignment name {name!r} is reserved ({', '.join(BATCH_SOURCES)})")
        self.assignments[name] = torch.as_tensor(cluster_ids, dtype=torch.int64).cpu()

    def batch_ids(self, source: str, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The ``[B]`` cluster ids of a batch for an ids source (``None`` = instances)."""
        if source == "instance":
            return None
        if source in ("label", "cluster"):
            if source not in batch:
                raise ValueError(f"the objective needs batch[{source!r}] but the data has none")
            ids = batch[source]
            if source == "label" and bool((ids < 0).any()):
                raise ValueError("SupCon needs a label for every training sample (found -1)")
            return ids
        if source not in self.assignments:
            raise ValueError(
                f"no assignment {source!r} registered (set_assignment); have: "
                f"{', '.join(self.assignments) or 'none'}"
            )
        return self.assignments[source][batch["index"].cpu()].to(self.device)

    # --- training ------------------------------------------------------------------------

    def compute_loss(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Objective of a batch whose ``image`` holds normalised views ``[B, V, C, S, S]``, in
        the current epoch: only the heads and ids of the terms active in it are computed."""
        views = batch["image"]
        b, v = views.shape[:2]
        features = self(views.flatten(0, 1))
        epoch = self.current_epoch
        terms = self.objective.active_terms(epoch)
        projections = {
            h: self.heads[h](features).view(b, v, -1) for h in dict.fromkeys(t.head for t in terms)
        }
        ids = {t.ids: self.batch_ids(t.ids, batch) for t in terms}
        result: tuple[torch.Tensor, dict[str, torch.Tensor]] = self.objective(
            projections, ids, epoch
        )
        return result

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["assignments"] = dict(self.assignments)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.assignments = dict(checkpoint.get("assignments", {}))
