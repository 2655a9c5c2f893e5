"""The schema of an experiment config: one dataclass per section, nothing else.

A config has the sections ``data``, ``clusters``, ``augment``, ``model``, ``method``,
``objective``, ``optim``, ``train``, ``monitor``, ``output``, ``kmeans`` and ``baseline``
(the settings of ``kmeans-clinfonce`` and of ``cmc-attributes``, declared with their methods
in :mod:`clinfonce.training.methods`); anything left out keeps its default. Values become
these dataclasses through :mod:`clinfonce.binder` and are checked once by
:mod:`clinfonce.training.config.checks` (:func:`clinfonce.training.config.config_from_dict`
does both).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from clinfonce.data.augment import AugmentParams
from clinfonce.data.config import ClustersConfig, DataConfig
from clinfonce.paths import PathOption
from clinfonce.training.methods.attributes import BaselineConfig
from clinfonce.training.methods.kmeans import KMeansConfig


@dataclass
class ModelConfig:
    """The ``model`` section (docs/backbones.md).

    Attributes:
        encoder: ``small-cnn``, any torchvision classification model (``resnet18``,
            ``resnet50``, ``convnext_tiny``, ``efficientnet_b0``, ``vit_b_16``, ...) or any
            timm model as ``timm:NAME`` (``pip install 'clinfonce[timm]'``).
        weights: where the encoder starts: ``none`` (random), ``imagenet`` (the library's
            default pretrained weights; input normalisation follows them), or the path of a
            state dict, a clinfonce checkpoint or a run directory (its ``last.ckpt``; its
            normalisation comes along).
        small_stem: CIFAR-style ResNet stem for small inputs; ``null``: on for ResNets
            without ImageNet weights on images of at most 64 px.
        backbone_lr_scale: the encoder's learning rate is ``optim.lr`` times this (heads
            keep ``optim.lr``); below 1 to fine-tune pretrained weights gently.
        frozen_backbone_epochs: train only the heads for this many first epochs (the
            encoder's weights and BatchNorm statistics stay as loaded).
        head_hidden: hidden width of the projection head.
        head_out: output width of the projection head.
        channels_last: use the channels-last memory format (measured 1.35x faster for the
            small CNN on this 2-core CPU).
        compile: compile the training step (augmentation, encoder, heads, objective) as one
            ``torch.compile`` graph; the first step pays the compilation (tens of seconds).
            Off by default until measured on a GPU; on a 2-core CPU the small CNN's step was
            1.14x faster (benchmarks/bench_train.py --compile).
    """

    encoder: str = "small-cnn"
    weights: str = "none"
    small_stem: bool | None = None
    backbone_lr_scale: float = 1.0
    frozen_backbone_epochs: int = 0
    head_hidden: int = 256
    head_out: int = 128
    channels_last: bool = True
    compile: bool = False


@dataclass
class MemoryConfig:
    """The ``method.memory`` section: past projections as extra keys (docs/method.md §11).

    Attributes:
        size: projections kept (one per sample: its first view), the last ones of the global
            batch; 0 (default) turns the memory off. Keep it below the number of training
            samples, or samples meet their own stale copies.
        momentum: 0 fills the memory with the online projections; a value in (0, 1) with
            those of a momentum copy of the encoder and heads (MoCo style, e.g. 0.99),
            updated before every step as ``m * copy + (1 - m) * online``.
    """

    size: int = 0
    momentum: float = 0.0


@dataclass
class MethodConfig:
    """The ``method`` section: a named objective (ignored terms-wise when ``objective`` is set).

    Methods (:data:`clinfonce.training.methods.registry.REGISTRY`; ``clinfonce train --help``
    lists them):

    - ``simclr``: instances are the positives; ``supcon``: downstream labels.
    - ``clinfonce``: Cl-InfoNCE on the stage-1 clusters (one term per clustering of the
      ``clusters`` section). Best when the clusters are informative about the labels.
    - ``clinfonce-plus-simclr``: the same terms plus InfoNCE (SimCLR), weights 1, one shared
      head. Never far below SimCLR, even for clusters much coarser than the labels.
    - ``clinfonce-two-head``: the official two-head recipe: InfoNCE on head ``instance``,
      Cl-InfoNCE on head ``cluster``; InfoNCE alone for the first ``warmup_epochs``.
    - ``auto`` (default): ``clinfonce-plus-simclr`` when clusters are configured, else
      ``simclr``; the safe choice when nobody knows how informative the clusters are.
    - ``kmeans-clinfonce``: no auxiliary information: SimCLR for ``warmup_epochs`` (default
      a tenth of the epochs, at least 1), then Cl-InfoNCE on K-means clusters of the model's
      own embedding, recomputed during training (the ``kmeans`` section), one term per K,
      averaged. Its temperature defaults to 0.2 (paper). With an ``objective`` list, the
      terms name the clusterings ``kmeans-<K>`` and set their own weights; re-clustering
      starts with the first such term.
    - Baselines with the same auxiliary information (:mod:`clinfonce.training.methods`):
      ``ce-clusters`` (predict the cluster id), ``attribute-prediction`` (predict the
      attribute columns), ``cmc-attributes`` (contrast image views with attribute vectors).

    Attributes:
        name: one of the methods above.
        temperature: loss temperature (paper: 0.1 for attribute/hierarchy clusters).
        base_temperature: the official code's hidden ``tau / base`` loss factor (off: null).
        warmup_epochs: epochs of InfoNCE alone before the cluster terms start (``clinfonce``:
            SimCLR then Cl-InfoNCE alone). ``null``: 0, except ``clinfonce-two-head``:
            a tenth of ``train.epochs`` (at least 1).
        memory: the memory of past projections (:class:`MemoryConfig`); off by default.
    """

    name: str = "auto"
    temperature: float = 0.1
    base_temperature: float | None = None
    warmup_epochs: int | None = None
    memory: MemoryConfig = field(default_factory=MemoryConfig)


@dataclass
class TermConfig:
    """One entry of the ``objective`` list: a weighted contrastive term.

    A non-empty ``objective`` replaces the method's terms (leave ``method.name`` at ``auto``,
    or ``kmeans-clinfonce`` to weight its K-means clusterings ``kmeans-<K>``).
    The total loss is ``sum(weight * term)`` over the terms active in the epoch.

    Attributes:
        loss: ``clinfonce`` (positives: same cluster), ``simclr`` (InfoNCE: a sample's own
            views), ``supcon`` (same label; needs ``data.label_column``) or ``overlap``
            (positives weighted by shared tags, see ``tags``).
        clusters: ``clinfonce`` only: a clustering named in ``clusters`` (``null``: the
            section's unnamed clustering, or its only named one).
        tags: ``overlap`` only: the table's tag column (``#a #b``, ``a|b``, JSON lists);
            the positive weight of two samples comes from the tags they share.
        overlap: ``overlap`` only: ``any`` (share a tag), ``at-least`` (share
            ``min_shared`` tags) or ``jaccard`` (weight = shared / union).
        min_shared: tags two samples must share for ``overlap: at-least``.
        weight: the term's weight (>= 0).
        head: the projection head it reads; terms naming the same head share it.
        temperature: its temperature (``null``: ``method.temperature``).
        start_epoch: first (0-based) epoch it trains; before, the other terms train alone.
        end_epoch: the epoch it stops at (``null``: trains to the end).
        name: log name, ``train/<name>`` (``null``: the loss, plus ``-<clusters>`` when a
            clustering is named).

    Examples:
        >>> from clinfonce.training.config import config_from_dict
        >>> cfg = config_from_dict({
        ...     "clusters": {"level1": {"builder": "attributes"}},
        ...     "objective": [{"loss": "simclr"}, {"clusters": "level1", "weight": 0.5}]})
        >>> [(t.loss, t.clusters, t.weight) for t in cfg.objective]
        [('simclr', None, 1.0), ('clinfonce', 'level1', 0.5)]
    """

    loss: str = "clinfonce"
    clusters: str | None = None
    tags: str | None = None
    overlap: str = "any"
    min_shared: int = 1
    weight: float = 1.0
    head: str = "main"
    temperature: float | None = None
    start_epoch: int = 0
    end_epoch: int | None = None
    name: str | None = None


@dataclass
class OptimConfig:
    """The ``optim`` section (docs/method.md §4 defaults).

    Attributes:
        name: ``sgd`` (Nesterov) or ``adamw``.
        lr: peak learning rate.
        momentum: SGD momentum.
        nesterov: Nesterov momentum for SGD.
        weight_decay: weight decay (all parameters, as the official code).
        warmup_fraction: fraction of the steps with a linear warm-up.
        final_lr_ratio: the cosine decay ends at ``lr * final_lr_ratio``.
    """

    name: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.95
    nesterov: bool = True
    weight_decay: float = 1e-4
    warmup_fraction: float = 1 / 3
    final_lr_ratio: float = 1e-3


@dataclass
class TrainConfig:
    """The ``train`` section.

    Attributes:
        epochs: training epochs.
        batch_size: samples per step (each gives ``views`` views to the loss); the *global*
            batch, split across DDP processes, so more devices train the same thing.
        views: augmented views per sample.
        seed: seeds initialisation, data order and augmentation (exactly resumable).
        accelerator: Lightning accelerator (``auto``, ``cpu``, ``gpu``).
        devices: Lightning devices per node (a count, ``auto``, or ``-1`` for all).
        num_nodes: machines (DDP over ``num_nodes * devices`` processes).
        strategy: Lightning strategy (``auto``: DDP when there are several devices; ``ddp``
            for launches by ``torchrun`` or SLURM).
        sync_batchnorm: BatchNorm statistics over the global batch (SyncBatchNorm) instead
            of each process's share; with it, DDP matches the single-process run.
        precision: Lightning precision (``32-true``, ``bf16-mixed``, ...) or ``auto``:
            ``bf16-mixed`` where the device computes bfloat16 natively (CPUs with
            AVX512-BF16/AMX, recent GPUs), else ``32-true``. On this 2-core CPU bf16 made the
            small CNN 1.7x faster with the same Fashion-MNIST accuracy.
        num_workers: loader processes, or ``auto``: none for images held in memory or
            prepared (they are augmented on the device), the usable cores (shared by the
            processes of this machine) for image files read while training.
        log_every_n_steps: logging interval.
        checkpoint_every_n_steps: besides the end of every epoch, save ``last.ckpt`` every
            this many steps (0: epoch ends only); for epochs too long to lose.
        progress_bar: show progress: Lightning's bar on a terminal, a line per epoch when
            the output goes to a file.
        per_cluster: ``Q`` > 1: cluster-balanced batches of ``batch_size / Q`` groups of
            ``Q`` samples of one cluster (every sample still once per epoch), for clusters
            too fine to meet in a shuffled batch; 0 (default): plain shuffling.
        balance_by: the clustering the groups follow: null (the unnamed clustering, or the
            only named one), a name of the ``clusters`` section, or ``label``.
    """

    epochs: int = 100
    batch_size: int = 256
    views: int = 2
    seed: int = 0
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    sync_batchnorm: bool = False
    precision: str = "32-true"
    num_workers: int | str = "auto"
    log_every_n_steps: int = 10
    checkpoint_every_n_steps: int = 0
    progress_bar: bool = True
    per_cluster: int = 0
    balance_by: str | None = None


@dataclass
class MonitorConfig:
    """The ``monitor`` section: online kNN top-1 on held-out labelled data.

    Attributes:
        enabled: run the monitor when labels exist.
        split: the held-out split (rows of ``data.split_column``).
        holdout_fraction: without that split, hold out this fraction of training rows.
        every_n_epochs: monitor interval.
        k: neighbours.
        temperature: vote weights ``exp(sim / temperature)``.
        max_bank: training samples (seeded subset) that vote.
        max_queries: held-out samples (seeded subset) evaluated.
        batch_size: feature-extraction batch size.
    """

    enabled: bool = True
    split: str = "test"
    holdout_fraction: float = 0.1
    every_n_epochs: int = 1
    k: int = 20
    temperature: float = 0.07
    max_bank: int = 10000
    max_queries: int = 5000
    batch_size: int = 512


@dataclass
class OutputConfig:
    """The ``output`` section: the run directory is ``dir/name``.

    Attributes:
        dir: parent directory of runs.
        name: run name (default: the config file's stem, or ``run``); a plain name, not
            a path.
        overwrite: start a new run in a non-empty run directory by deleting its contents
            first, checkpoints included (otherwise an error; use ``--resume`` to continue
            a run).
    """

    dir: PathOption = "runs"
    name: str | None = None
    overwrite: bool = False


@dataclass
class ExperimentConfig:
    """A whole training run. Load with :func:`clinfonce.training.config.load_config`.

    Examples:
        >>> from clinfonce.training.config import config_from_dict
        >>> cfg = config_from_dict({"train": {"epochs": 2}}, overrides=["method.name=simclr"])
        >>> cfg.train.epochs, cfg.method.name
        (2, 'simclr')
    """

    data: DataConfig = field(default_factory=DataConfig)
    clusters: ClustersConfig = field(default_factory=ClustersConfig)
    augment: AugmentParams = field(default_factory=AugmentParams)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    objective: list[TermConfig] = field(default_factory=list)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    kmeans: KMeansConfig = field(default_factory=KMeansConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (what the run directory's ``config.yaml`` holds)."""
        return dataclasses.asdict(self)
