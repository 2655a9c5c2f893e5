"""One training run from a config: data, clusters, model, Lightning trainer, run directory.

Run directory (``output.dir/output.name``)::

    config.yaml                 the resolved config
    clusters.csv[.json]         the cluster assignment used and its sidecar (Cl-InfoNCE)
    clusters-<name>.csv[.json]  each named clustering (clusters.named)
    kmeans.jsonl                kmeans-clinfonce: one line per K-means re-clustering
    checkpoints/last.ckpt       every epoch; resume with --resume
    checkpoints/best.ckpt       best monitor/knn_top1 so far (when labels exist)
    logs/csv/version_<n>/metrics.csv, logs/tensorboard/version_<n>/
                                CSV and TensorBoard logs, one version per (re)start
    summary.json                final metrics, steps, wall time
"""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torch.utils.data import DataLoader

from clinfonce.data.augment import view_transform
from clinfonce.data.datasets import EpochShuffleSampler
from clinfonce.data.prepare import PreparedData, prepare_data, write_clusters
from clinfonce.data.sources import ImageSource
from clinfonce.training.base import EncoderModule
from clinfonce.training.config import (
    ExperimentConfig,
    load_config,
    save_config,
    with_absolute_paths,
)
from clinfonce.training.distributed import (
    DistributedBatchSampler,
    has_idle_parameters,
    trainer_kwargs,
)
from clinfonce.training.methods import build_module, method_callbacks
from clinfonce.training.monitor import KNN_METRIC, KNNMonitor

CONFIG_FILE = "config.yaml"


class _LightningNotices(logging.Filter):
    """Drops Lightning's hardware inventory ("GPU available: False, used: False") and its
    advertising tips: noise in every run's output that says nothing about the run."""

    DROPPED = ("GPU available: ", "TPU available: ", "HPU available: ", "\N{ELECTRIC LIGHT BULB}")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.DROPPED)


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_LightningNotices())


def metric_text(key: str, value: float) -> str:
    """A logged metric for people: the learning rate in scientific notation (it ends near
    zero, where four decimals print ``0.0000``), others with four decimals, never ``-0.0000``.

    Examples:
        >>> metric_text("lr", 2e-06), metric_text("train/loss", -1e-9)
        ('2.000e-06', '0.0000')
    """
    if key == "lr" or key.endswith("/lr"):
        return f"{value:.3e}"
    text = f"{value:.4f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"


@dataclass
class TrainResult:
    """What a finished run leaves behind.

    Attributes:
        run_dir: the run directory.
        module: the trained module (``module.embed`` gives evaluation features).
        data: the prepared data it trained on.
        last_checkpoint: ``checkpoints/last.ckpt``.
        best_checkpoint: the best checkpoint by the kNN monitor, when it ran.
        metrics: final logged metrics (``train/loss``, ``monitor/knn_top1``, ...).
        global_zero: whether this process is global rank zero (under DDP every process
            returns a result; this one reports).
    """

    run_dir: Path
    module: EncoderModule
    data: PreparedData
    last_checkpoint: Path
    best_checkpoint: Path | None
    metrics: dict[str, float]
    global_zero: bool = True


def run_directory(config: ExperimentConfig) -> Path:
    """``output.dir / output.name`` (name defaults to ``run``)."""
    return Path(config.output.dir) / (config.output.name or "run")


def resolve_resume(resume: str | Path) -> tuple[Path, Path]:
    """Run directory and checkpoint of a ``--resume`` argument (a run dir or a ``.ckpt``)."""
    path = Path(resume)
    if path.is_dir():
        checkpoint = path / LAST_CHECKPOINT
        run_dir = path
    else:
        checkpoint = path
        run_dir = path.parent.parent
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"no checkpoint to resume from at {checkpoint}; pass a run directory containing "
            f"{LAST_CHECKPOINT} or a .ckpt file"
        )
    return run_dir, checkpoint


def load_run_config(run_dir: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """The resolved config saved in a run directory, with overrides applied."""
    return load_config(Path(run_dir) / CONFIG_FILE, list(overrides))


def resolve_precision(precision: str, accelerator: str) -> str:
    """Lightning precision for ``train.precision`` (resolves ``auto``, see TrainConfig).

    Examples:
        >>> resolve_precision("32-true", "cpu")
        '32-true'
    """
    if precision != "auto":
        return precision
    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        native = torch.cuda.is_bf16_supported()
    else:
        native = bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())
    return "bf16-mixed" if native else "32-true"


def train(
    config: ExperimentConfig,
    *,
    resume: str | Path | None = None,
    source: ImageSource | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train one run; see the module docstring for what it writes.

    Args:
        config: the experiment.
        resume: a run directory or checkpoint to continue exactly (same global step,
            weights, optimiser, schedule and data order); training goes on in that run dir.
        source: already loaded data (skips loading ``config.data``; the demo reuses one).
        callbacks: extra Lightning callbacks.

    Examples:
        >>> from clinfonce.training import load_config, train
        >>> result = train(load_config("configs/synthetic-attributes-clinfonce.yaml",
        ...                            ["train.epochs=1"]))  # doctest: +SKIP
        >>> result.metrics["monitor/knn_top1"]  # doctest: +SKIP
        0.41
    """
    config = with_absolute_paths(config)  # config.yaml must work from any folder
    checkpoint: Path | None = None
    if resume is not None:
        run_dir, checkpoint = resolve_resume(resume)
    else:
        run_dir = run_directory(config)
        if (run_dir / LAST_CHECKPOINT).exists() and not config.output.overwrite:
            raise ValueError(
                f"run directory {run_dir} already holds a run; continue it with --resume "
                f"{run_dir}, pick another output.name, or set output.overwrite=true"
            )
    run_dir.mkdir(parents=True, exist_ok=True)
    L.seed_everything(config.train.seed, workers=True, verbose=False)
    monitor = config.monitor
    data = prepare_data(
        config.data,
        config.clusters,
        monitor_split=monitor.split if monitor.enabled else None,
        holdout_fraction=monitor.holdout_fraction,
        seed=config.train.seed,
        source=source,
    )
    module = build_module(config, data)  # the method's module, per-sample tables registered
    loader = train_loader(config, data)
    checkpoints = run_dir / "checkpoints"
    all_callbacks: list[Callback] = [
        RunFiles(config, data, run_dir),
        ModelCheckpoint(dirpath=checkpoints, save_last=True, save_top_k=0),
    ]
    knn = knn_monitor(config, data)
    if knn is not None:
        all_callbacks.insert(0, knn)
        all_callbacks.append(
            ModelCheckpoint(
                dirpath=checkpoints,
                filename="best",
                monitor=KNN_METRIC,
                mode="max",
                every_n_epochs=monitor.every_n_epochs,
                auto_insert_metric_name=False,
            )
        )
    # A bar redraws one line: in a log file (SLURM, CI, nohup) it becomes megabytes of
    # fragments, so there a line per epoch reports progress instead.
    bar = config.train.progress_bar and sys.stderr.isatty()
    trainer = L.Trainer(
        max_epochs=config.train.epochs,
        accelerator=config.train.accelerator,
        **trainer_kwargs(config.train, idle_parameters=has_idle_parameters(module)),
        precision=resolve_precision(config.train.precision, config.train.accelerator),  # type: ignore[arg-type]
        logger=[  # version_<n> under each: one per (re)start, the same n for both
            CSVLogger(run_dir / "logs", name="csv"),
            TensorBoardLogger(run_dir / "logs", name="tensorboard"),
        ],
        callbacks=[
            *all_callbacks,
            *method_callbacks(config, data, run_dir),
            *([EpochLines()] if config.train.progress_bar and not bar else []),
            *callbacks,
        ],
        log_every_n_steps=min(config.train.log_every_n_steps, len(loader)),
        enable_progress_bar=bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        # In-memory data is augmented on the device: loader workers would not help.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        # A resumed run writes into its own, non-empty checkpoint folder by design.
        warnings.filterwarnings("ignore", message="Checkpoint directory .* is not empty")
        # Lightning 2.6 with torch 2.14 warns about its own use of a torch API.
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
        trainer.fit(module, train_dataloaders=loader, ckpt_path=checkpoint)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    best = all_callbacks[-1] if knn is not None else None
    best_path = Path(best.best_model_path) if isinstance(best, ModelCheckpoint) else None
    summary = {
        "metrics": metrics,
        "global_step": trainer.global_step,
        "epochs": trainer.current_epoch,
        "train_samples": len(data.train_rows),
        "fit_seconds": round(time.perf_counter() - start, 2),
        "best_checkpoint": str(best_path) if best_path else None,
    }
    if trainer.is_global_zero:
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return TrainResult(
        run_dir,
        module,
        data,
        run_dir / LAST_CHECKPOINT,
        best_path,
        metrics,
        trainer.is_global_zero,
    )


class EpochLines(Callback):
    """Progress lines (global rank zero) where no progress bar can draw: one per epoch, or
    every n-th epoch so that a long run prints at most :attr:`MAX_LINES` of them."""

    MAX_LINES = 20

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epochs = trainer.max_epochs or 1
        every = -(-epochs // self.MAX_LINES)
        done = trainer.current_epoch + 1
        if not trainer.is_global_zero or (done % every and done != epochs):
            return
        seconds = time.perf_counter() - self._start  # this epoch's
        metrics = trainer.callback_metrics
        shown = [f"{k} {metric_text(k, float(v))}" for k, v in sorted(metrics.items()) if k != "lr"]
        print(
            f"epoch {done}/{epochs}: {', '.join(shown)} "
            f"({seconds:.0f} s, about {seconds * (epochs - done):.0f} s left)",
            flush=True,
        )


class RunFiles(Callback):
    """Writes the resolved config and the clusters used into the run directory, once.

    A callback, because only once the strategy is set up is the global rank known for every
    launcher (Lightning's, torchrun, SLURM): under DDP every process runs :func:`train`, and
    only global rank zero may write the shared run directory.
    """

    def __init__(self, config: ExperimentConfig, data: PreparedData, run_dir: Path) -> None:
        self.config, self.data, self.run_dir = config, data, run_dir

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.is_global_zero:
            save_config(self.config, self.run_dir / CONFIG_FILE)
            write_clusters(self.data, self.config.data, self.run_dir)


def train_loader(config: ExperimentConfig, data: PreparedData) -> DataLoader[Any]:
    """Shuffled (per-epoch seeded), full batches only: every step contrasts a full batch."""
    train = config.train
    transform = None
    if not data.source.in_memory:
        transform = view_transform(config.augment, data.image_size, data.channels)
    dataset = data.train_dataset(train.views, transform)
    if len(dataset) < train.batch_size:
        raise ValueError(
            f"train.batch_size={train.batch_size} exceeds the {len(dataset)} training samples; "
            "lower train.batch_size"
        )
    return DataLoader(
        dataset,
        batch_sampler=DistributedBatchSampler(  # this process's share of the global batch
            EpochShuffleSampler(len(dataset), train.seed), train.batch_size, drop_last=True
        ),
        num_workers=train.num_workers,
        persistent_workers=train.num_workers > 0,
    )


def knn_monitor(config: ExperimentConfig, data: PreparedData) -> KNNMonitor | None:
    """The kNN monitor callback, or ``None`` without labels or held-out rows."""
    monitor = config.monitor
    train_labels = data.train_labels()
    if not monitor.enabled or data.monitor_rows is None or train_labels is None:
        return None
    if len(data.monitor_rows) == 0:
        return None
    rng = np.random.default_rng(config.train.seed + 1)
    bank = data.train_rows[train_labels >= 0]
    bank = _subset(bank, monitor.max_bank, rng)
    queries = _subset(data.monitor_rows, monitor.max_queries, rng)
    return KNNMonitor(
        data.eval_dataset(bank),
        data.eval_dataset(queries),
        num_classes=data.num_classes,
        k=monitor.k,
        temperature=monitor.temperature,
        every_n_epochs=monitor.every_n_epochs,
        batch_size=monitor.batch_size,
    )


def _subset(rows: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    if len(rows) <= limit:
        return rows
    return np.sort(rng.choice(rows, size=limit, replace=False))
