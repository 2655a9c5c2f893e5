"""The checks of a whole config, run once when it is bound (:func:`check_config`).

A single field's type is the binder's business; these are the rules that span fields or
that a type cannot say (ranges, what a method needs). Each method checks its own needs and
settings (:meth:`clinfonce.training.methods.spec.Method.check`), and resolving the objective
checks its terms, so a config that loads can train.
"""

from __future__ import annotations

import math

from clinfonce.data.sources import check_source_options
from clinfonce.models import check_encoder
from clinfonce.training.config.schema import ExperimentConfig
from clinfonce.training.methods.attributes import check_baseline_section
from clinfonce.training.methods.contrastive import ContrastiveModule
from clinfonce.training.methods.registry import find_method, objective_terms


def check_config(cfg: ExperimentConfig) -> None:
    """Cross-field checks that a single field's type cannot express.

    Raises:
        ValueError: naming the setting and how to fix it.
    """
    method = find_method(cfg.method.name)
    method.check(cfg)
    workers = cfg.train.num_workers
    if workers != "auto" and (not isinstance(workers, int) or workers < 0):
        raise ValueError(f"train.num_workers must be a count >= 0 or auto, got {workers!r}")
    check_source_options(cfg.data.dataset, cfg.data.options)
    if cfg.optim.name not in ("sgd", "adamw"):
        raise ValueError(f"optim.name must be sgd or adamw, got {cfg.optim.name!r}")
    positive = {
        "train.epochs": cfg.train.epochs,
        "train.batch_size": cfg.train.batch_size,
        "train.num_nodes": cfg.train.num_nodes,
        "optim.lr": cfg.optim.lr,
        "method.temperature": cfg.method.temperature,
        "monitor.every_n_epochs": cfg.monitor.every_n_epochs,
        "monitor.k": cfg.monitor.k,
    }
    for key, value in positive.items():
        if not 0 < value < math.inf:  # NaN and infinity too: they train NaN weights
            raise ValueError(f"{key} must be a finite number > 0, got {value}")
    devices = cfg.train.devices
    if devices in (0, "0") or (isinstance(devices, int) and devices < -1):
        raise ValueError(
            f"train.devices must be a count >= 1, -1 (all) or auto, got {devices!r}; to train "
            "on the CPU set train.accelerator=cpu"
        )
    if cfg.train.checkpoint_every_n_steps < 0:
        raise ValueError(
            "train.checkpoint_every_n_steps must be >= 0 (0: at epoch ends only), got "
            f"{cfg.train.checkpoint_every_n_steps}"
        )
    if cfg.train.per_cluster < 0:
        raise ValueError(
            f"train.per_cluster must be >= 0 (0: plain shuffling), got {cfg.train.per_cluster}"
        )
    if cfg.train.views < 1:
        raise ValueError(f"train.views must be >= 1, got {cfg.train.views}")
    if not 0 <= cfg.optim.warmup_fraction < 1:
        raise ValueError(
            f"optim.warmup_fraction must be in [0, 1), got {cfg.optim.warmup_fraction}"
        )
    memory = cfg.method.memory
    if memory.size < 0:
        raise ValueError(f"method.memory.size must be >= 0 (0: off), got {memory.size}")
    if not 0 <= memory.momentum < 1:
        raise ValueError(
            f"method.memory.momentum must be in [0, 1) (0: the online encoder fills the "
            f"memory), got {memory.momentum}"
        )
    if memory.size and not issubclass(method.module, ContrastiveModule):
        raise ValueError(
            f"method.memory needs a contrastive method (simclr, supcon, clinfonce*, auto, "
            f"kmeans-clinfonce), not {cfg.method.name}; set method.memory.size=0"
        )
    check_baseline_section(cfg.baseline)
    check_model_section(cfg)
    objective_terms(cfg)


def check_model_section(cfg: ExperimentConfig) -> None:
    """The encoder exists (closest names otherwise) and takes the fine-tuning settings."""
    model = cfg.model
    check_encoder(
        model.encoder, small_stem=bool(model.small_stem), pretrained=model.weights == "imagenet"
    )
    if not model.weights:
        raise ValueError("model.weights must be none, imagenet or a path, got ''")
    if model.backbone_lr_scale < 0:
        raise ValueError(f"model.backbone_lr_scale must be >= 0, got {model.backbone_lr_scale}")
    if not 0 <= model.frozen_backbone_epochs < cfg.train.epochs:
        raise ValueError(
            f"model.frozen_backbone_epochs must be in [0, train.epochs={cfg.train.epochs}), "
            f"got {model.frozen_backbone_epochs}"
        )
