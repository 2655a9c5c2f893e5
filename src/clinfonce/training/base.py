"""What every trainable method shares: encoder, input pipeline, optimiser, loss logging.

The contrastive family (:class:`clinfonce.training.ContrastiveModule`) and the baselines
(:mod:`clinfonce.training.methods`) differ only in their heads and their loss; subclasses of
:class:`EncoderModule` add the heads and implement :meth:`EncoderModule.compute_loss`, so a
comparison between methods never depends on a difference in augmentation, schedule or
evaluation features.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import lightning as L
import torch

from clinfonce.data.augment import BatchAugment, resize_square
from clinfonce.data.splits import stream_seed
from clinfonce.losses.precision import full_precision
from clinfonce.models import build_encoder, load_encoder_state, uses_small_stem
from clinfonce.training.distributed import batch_shares
from clinfonce.training.schedule import warmup_cosine
from clinfonce.training.weights import NAMED_WEIGHTS, read_encoder_weights

if TYPE_CHECKING:  # the config schema includes the methods' settings, which build on this
    from clinfonce.training.config import ExperimentConfig

_RANK_STRIDE = 1 << 40  # DDP processes draw different views; rank 0 keeps the 1-process seeds
#: Steps between two reads of the non-finite-loss flag (:meth:`EncoderModule.check_finite`).
FINITE_CHECK_EVERY = 50


class EncoderModule(L.LightningModule):
    """Encoder, normalisation, on-device augmentation, optimiser and schedule.

    Batches from arrays (``uint8 [B, C, H, W]``) are augmented here, on the device, in
    :meth:`on_after_batch_transfer`; views of files, cropped per sample in the loader
    (``uint8 [B, V, C, S, S]``), get their colour operations here. The generator is seeded
    by ``(seed, global_step)`` so a resumed run sees the same views as an uninterrupted
    one. Subclasses call :meth:`store_hyperparameters` after ``super().__init__(...)`` (so
    their own arguments are stored too) and implement :meth:`compute_loss`.

    Args:
        config: the run's config, already checked (the checkpoint stores it as a plain dict).
        in_channels: image channels.
        image_size: model input side.
        mean: per-channel normalisation mean (of ``[0, 1]`` pixels).
        std: per-channel normalisation std.

    Examples:
        >>> class Nothing(EncoderModule):
        ...     def compute_loss(self, batch):
        ...         return self(batch["image"].flatten(0, 1)).sum(), {}
        >>> from clinfonce.training.config import config_from_dict
        >>> cfg = config_from_dict({"method": {"name": "simclr"}})
        >>> module = Nothing(cfg, in_channels=1, image_size=8, mean=[0.5],
        ...                  std=[0.25])
        >>> module.embed(torch.zeros(2, 1, 8, 8, dtype=torch.uint8)).shape
        torch.Size([2, 128])
    """

    mean: torch.Tensor
    std: torch.Tensor
    first_nonfinite: torch.Tensor

    def __init__(
        self,
        config: ExperimentConfig,
        *,
        in_channels: int,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        super().__init__()
        self.cfg = config
        self.sample_tables: dict[str, torch.Tensor] = {}
        # (step, value) of the first non-finite loss, kept on the device (-1: none yet).
        self.register_buffer("first_nonfinite", torch.tensor([-1.0, 0.0]), persistent=False)
        model = self.cfg.model
        pretrained = model.weights == "imagenet"
        self.encoder = build_encoder(
            model.encoder,
            in_channels,
            uses_small_stem(model.encoder, model.small_stem, image_size, pretrained=pretrained),
            pretrained=pretrained,
            image_size=image_size,
        )
        if model.weights not in NAMED_WEIGHTS:
            weights = read_encoder_weights(model.weights)
            load_encoder_state(self.encoder, weights.state, f"model.weights={weights.where}")
        self.register_buffer("mean", torch.tensor(list(mean)).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(list(std)).view(1, -1, 1, 1), persistent=False)
        self.image_size = image_size
        self.augment = BatchAugment(self.cfg.augment, image_size)
        #: :meth:`step`, compiled once when ``model.compile`` is on (on first use).
        self.compiled_step = torch.compile(self.step) if model.compile else self.step
        if model.channels_last:  # only 4-d weights change: heads added later need nothing
            self.to(memory_format=torch.channels_last)

    def store_hyperparameters(self, ignore: Sequence[str] = ()) -> None:
        """Save the constructor's arguments (bar ``ignore``) as the checkpoint's
        hyperparameters, the config as its plain dict: what rebuilds the module from a
        checkpoint, what checkpoints have always held, and what the loggers record. Call
        from the subclass's ``__init__``."""
        caller = inspect.currentframe()
        frame = caller.f_back if caller else None
        others = [
            name
            for name in inspect.signature(type(self).__init__).parameters
            if name not in ("self", "config", *ignore)
        ]
        self.save_hyperparameters({"config": self.cfg.to_dict()}, frame=frame)
        self.save_hyperparameters(*others, frame=frame)  # merged in after the config

    def set_sample_table(self, name: str, values: torch.Tensor) -> None:
        """Register a per-sample table (row ``i`` belongs to the training sample of ``index``
        ``i``: cluster ids, targets). It lives on the module's device and moves with it, so a
        step looks its batch's rows up without a transfer."""
        self.sample_tables[name] = values.to(self.device)

    def lookup(self, name: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The rows of the per-sample table ``name`` for a batch's samples: how every
        per-sample id or target reaches a step."""
        return self.sample_tables[name][batch["index"]]

    def rows_per_rank(self) -> list[int] | None:
        """Every process's rows in a training batch under DDP (training drops a last, smaller
        batch, so each step's global batch is ``train.batch_size``), for losses that gather
        across processes; None outside a multi-process fit."""
        world = self._trainer.world_size if self._trainer is not None else 1
        return batch_shares(self.cfg.train.batch_size, world) if world > 1 else None

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        # .to(device) and friends move the per-sample tables as they move buffers (their
        # integer dtype is kept, as for buffers).
        module = super()._apply(fn, recurse)
        self.sample_tables = {name: fn(table) for name, table in self.sample_tables.items()}
        return module

    # --- features ------------------------------------------------------------------------

    @property
    def float_dtype(self) -> torch.dtype:
        """The model's floating dtype (float64 under ``train.precision: 64-true``): images
        and augmented views are made in it."""
        return self.mean.dtype

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """``uint8`` or ``[0, 1]`` float images (any leading dims) -> normalised float input."""
        x = images.to(self.float_dtype).div(255) if images.dtype == torch.uint8 else images
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
        x = x.to(self.float_dtype).div(255) if x.dtype == torch.uint8 else x
        features: torch.Tensor = self(self.normalise(resize_square(x, self.image_size)))
        return features

    # --- training ------------------------------------------------------------------------

    def backbone_frozen(self) -> bool:
        """Whether this epoch trains the heads alone (``model.frozen_backbone_epochs``)."""
        return self.current_epoch < self.cfg.model.frozen_backbone_epochs

    def on_train_epoch_start(self) -> None:
        self.encoder.requires_grad_(not self.backbone_frozen())

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.backbone_frozen():  # BatchNorm statistics stay those of the loaded weights
            self.encoder.eval()

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Draw the random numbers of a training batch's augmentation (``draws``), on the
        device, from a generator seeded by the step: :meth:`step` makes the views."""
        if not self.trainer.training:
            return batch
        images = batch["image"]
        generator = torch.Generator(device=images.device)
        generator.manual_seed(
            stream_seed(self.cfg.train.seed, self.global_step + self.global_rank * _RANK_STRIDE)
        )
        crop = images.dim() == 4  # an array's images, else views of files cropped per sample
        rows = len(images) * (self.cfg.train.views if crop else images.shape[1])
        batch["draws"] = self.augment.draw(rows, images.shape[-3], crop, generator, images.device)
        return batch

    def views(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Normalised views ``[B, V, C, S, S]`` of a training batch from its ``uint8`` images
        and ``draws``: an array's images are augmented whole, views of files (cropped in the
        loader) get their colour part."""
        images, draws = batch["image"], batch["draws"]
        if images.dim() == 4:
            views = self.augment(images, self.cfg.train.views, draws, dtype=self.float_dtype)
        else:
            views = self.augment.colour(images.to(self.float_dtype).div(255), draws)
        return self.normalise(views)

    def step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss and named parts of a training batch as it comes from the loader: augmentation,
        encoder, heads and objective, with no data-dependent shape and no transfer to the
        host, so that ``model.compile`` compiles all of it as one graph. The views are made
        with autocast off (mixed precision is for the model, not the pixels)."""
        with full_precision(batch["image"].device):
            views = self.views(batch)
        return self.compute_loss({**batch, "image": views})

    def compute_loss(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss of a batch whose ``image`` holds normalised views ``[B, V, C, S, S]``, and
        its named parts (logged as ``train/<name>`` when there are several)."""
        raise NotImplementedError

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, parts = self.compiled_step(batch)
        self.check_finite(loss)
        size = len(batch["image"])
        # Under DDP, the mean over processes is the global batch's loss (a no-op in one).
        self.log("train/loss", loss, prog_bar=True, batch_size=size, sync_dist=True)
        if len(parts) > 1:
            for name, value in parts.items():
                self.log(f"train/{name}", value, batch_size=size, sync_dist=True)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=size)
        return loss

    def check_finite(self, loss: torch.Tensor) -> None:
        """Stop the run on a non-finite loss, naming its step and value.

        The loss is compared on the device every step; the host reads the result only at
        step 0, every :data:`FINITE_CHECK_EVERY` steps and at the last batch of an epoch
        (before its checkpoint), so a step never waits for the device to say it is fine.
        """
        step = float(self.global_step)
        first = self.first_nonfinite
        value = loss.detach().to(first.dtype)
        record = first[0].lt(0) & ~torch.isfinite(value)
        noted = torch.stack([torch.full_like(value, step), value])  # no copy to the device
        first.copy_(torch.where(record, noted, first))
        trainer = self._trainer
        due = self.global_step % FINITE_CHECK_EVERY == 0 or (trainer and trainer.is_last_batch)
        if due and first[0].item() >= 0:
            raise FloatingPointError(
                f"non-finite loss {first[1].item()} at step {int(first[0].item())}; lower "
                "optim.lr or raise method.temperature"
            )

    def configure_optimizers(self) -> Any:
        optim = self.cfg.optim
        trained = [p for p in self.parameters() if p.requires_grad]  # no momentum copies
        scale = self.cfg.model.backbone_lr_scale
        groups: Any = trained
        if scale != 1:  # one group otherwise, as in checkpoints from before the setting
            backbone = {id(p) for p in self.encoder.parameters()}
            groups = [
                {"params": [p for p in trained if id(p) not in backbone]},
                {"params": [p for p in trained if id(p) in backbone], "lr": optim.lr * scale},
            ]
        if optim.name == "sgd":
            optimizer: torch.optim.Optimizer = torch.optim.SGD(
                groups,
                lr=optim.lr,
                momentum=optim.momentum,
                nesterov=optim.nesterov,
                weight_decay=optim.weight_decay,
            )
        else:
            optimizer = torch.optim.AdamW(groups, lr=optim.lr, weight_decay=optim.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = round(optim.warmup_fraction * total)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, total, warmup, optim.final_lr_ratio)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
