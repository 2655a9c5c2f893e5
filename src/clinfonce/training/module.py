"""The LightningModule of the contrastive family (SimCLR, SupCon, Cl-InfoNCE).

The methods differ only in the ids their objective terms read; everything else (encoder,
heads, augmentation, optimiser) is shared. In-memory ``uint8`` batches are augmented here, on
the device, in :meth:`ContrastiveModule.on_after_batch_transfer`, with a generator seeded by
``(seed, global_step)`` so that a resumed run sees the same views as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import nn

from clinfonce.data.augment import BatchAugment, resize_square
from clinfonce.models import ProjectionHead, build_encoder, feature_dim
from clinfonce.training.config import ExperimentConfig, config_from_dict
from clinfonce.training.objective import BATCH_SOURCES, Objective, ObjectiveTerm, method_terms
from clinfonce.training.schedule import warmup_cosine

_SEED_STRIDE = 1_000_003


class ContrastiveModule(L.LightningModule):
    """Encoder + projection head(s) trained with a weighted sum of Cl-InfoNCE terms.

    Args:
        config: the run's :class:`ExperimentConfig` (as ``to_dict()``; stored in the
            checkpoint so :meth:`load_from_checkpoint` rebuilds the same model).
        in_channels: image channels.
        image_size: model input side.
        mean: per-channel normalisation mean (of ``[0, 1]`` pixels).
        std: per-channel normalisation std.
        terms: objective terms (default: the one term of ``config.method``).

    Batches are dicts with ``image`` (``uint8 [B, C, H, W]`` to augment here, or
    ``uint8 [B, V, C, S, S]`` views made by the loader), ``index`` and, as the terms need,
    ``label`` and ``cluster``.

    Examples:
        >>> cfg = ExperimentConfig()
        >>> module = ContrastiveModule(cfg.to_dict(), in_channels=3, image_size=32,
        ...                            mean=[0.5] * 3, std=[0.25] * 3)  # doctest: +SKIP
        >>> module.embed(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape  # doctest: +SKIP
        torch.Size([2, 128])
    """

    mean: torch.Tensor
    std: torch.Tensor

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
        super().__init__()
        self.save_hyperparameters(ignore=["terms"])
        self.cfg: ExperimentConfig = config_from_dict(config)
        model = self.cfg.model
        self.encoder = build_encoder(model.encoder, in_channels, model.small_stem)
        self.objective = Objective(
            terms if terms is not None else method_terms(self.cfg.method),
            base_temperature=self.cfg.method.base_temperature,
        )
        dim = feature_dim(self.encoder)
        self.heads = nn.ModuleDict(
            {
                h: ProjectionHead(dim, model.head_hidden, model.head_out)
                for h in self.objective.heads
            }
        )
        self.register_buffer("mean", torch.tensor(list(mean)).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(list(std)).view(1, -1, 1, 1), persistent=False)
        self.image_size = image_size
        self.augment = BatchAugment(self.cfg.augment, image_size)
        self.assignments: dict[str, torch.Tensor] = {}
        if model.channels_last:
            self.to(memory_format=torch.channels_last)

    # --- features ------------------------------------------------------------------------

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """``uint8`` or ``[0, 1]`` float images (any leading dims) -> normalised float input."""
        x = images.float().div(255) if images.dtype == torch.uint8 else images
        shape = x.shape
        x = (x.reshape(-1, *shape[-3:]) - self.mean) / self.std
        return x.reshape(shape)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Encoder features of normalised ``[B, C, S, S]`` images."""
        if self.cfg.model.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        features: torch.Tensor = self.encoder(images)
        return features

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Evaluation features of raw images (``uint8`` or ``[0, 1]`` float ``[B, C, H, W]``):
        resized to the input size, normalised, encoded. Call in eval mode."""
        x = images.to(self.device)
        x = x.float().div(255) if x.dtype == torch.uint8 else x
        features: torch.Tensor = self(self.normalise(resize_square(x, self.image_size)))
        return features

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

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Turn training images into normalised views ``[B, V, C, S, S]`` on the device."""
        if not self.trainer.training:
            return batch
        images = batch["image"]
        if images.dim() == 4:  # raw in-memory images: augment the whole batch here
            generator = torch.Generator(device=images.device)
            generator.manual_seed(self.cfg.train.seed * _SEED_STRIDE + self.global_step)
            views = self.augment(images, self.cfg.train.views, generator)
        else:
            views = images
        batch["image"] = self.normalise(views)
        return batch

    def compute_loss(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Objective of a batch whose ``image`` holds normalised views ``[B, V, C, S, S]``."""
        views = batch["image"]
        b, v = views.shape[:2]
        features = self(views.flatten(0, 1))
        projections = {name: head(features).view(b, v, -1) for name, head in self.heads.items()}
        ids = {source: self.batch_ids(source, batch) for source in self.objective.id_sources}
        result: tuple[torch.Tensor, dict[str, torch.Tensor]] = self.objective(projections, ids)
        return result

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, parts = self.compute_loss(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite loss {loss.item()} at step {self.global_step}; lower optim.lr or "
                "raise method.temperature"
            )
        size = len(batch["image"])
        self.log("train/loss", loss, prog_bar=True, batch_size=size)
        if len(parts) > 1:
            for name, value in parts.items():
                self.log(f"train/{name}", value, batch_size=size)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=size)
        return loss

    def configure_optimizers(self) -> Any:
        optim = self.cfg.optim
        if optim.name == "sgd":
            optimizer: torch.optim.Optimizer = torch.optim.SGD(
                self.parameters(),
                lr=optim.lr,
                momentum=optim.momentum,
                nesterov=optim.nesterov,
                weight_decay=optim.weight_decay,
            )
        else:
            optimizer = torch.optim.AdamW(
                self.parameters(), lr=optim.lr, weight_decay=optim.weight_decay
            )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = round(optim.warmup_fraction * total)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, total, warmup, optim.final_lr_ratio)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["assignments"] = dict(self.assignments)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.assignments = dict(checkpoint.get("assignments", {}))
