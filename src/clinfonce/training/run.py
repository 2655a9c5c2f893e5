"""One training run from a config: data, clusters, model, Lightning trainer.

What the run leaves in its run directory: :mod:`clinfonce.training.run_directory`.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from clinfonce.clusters.assess import MIN_POSITIVES, expected_alone_fraction, positives_per_anchor
from clinfonce.data.prepare import PreparedData, prepare_data
from clinfonce.data.sources import ImageSource
from clinfonce.evaluation.features import use_tf32_matmul
from clinfonce.outputs import atomic_write
from clinfonce.training.base import EncoderModule
from clinfonce.training.checkpointing import (
    AtomicCheckpointIO,
    LastCheckpoint,
    TrainingInterrupted,
    new_run_id,
    read_run_id,
    rows_fingerprint,
    stop_gracefully,
)
from clinfonce.training.config import ExperimentConfig, with_absolute_paths
from clinfonce.training.distributed import (
    DistributedBatchSampler,
    has_idle_parameters,
    trainer_kwargs,
)
from clinfonce.training.loaders import train_loader
from clinfonce.training.methods.contrastive import ContrastiveModule
from clinfonce.training.methods.registry import find_method, objective_terms
from clinfonce.training.monitor import KNN_METRIC, KNNMonitor
from clinfonce.training.objective import ObjectiveTerm
from clinfonce.training.progress import EpochLines
from clinfonce.training.run_directory import (
    LAST_CHECKPOINT,
    RunFiles,
    RunLock,
    check_run_directory,
    claim_run_directory,
    requeued_slurm_job,
    resolve_resume,
    run_directory,
)


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
    keep: Sequence[str] = (),
) -> TrainResult:
    """Train one run; :mod:`clinfonce.training.run_directory` lists what it writes.

    Args:
        config: the experiment.
        resume: a run directory or checkpoint to continue exactly (same global step,
            weights, optimiser, schedule and data order); training goes on in that run dir.
        source: already loaded data (skips loading ``config.data``; the demo reuses one).
        callbacks: extra Lightning callbacks.
        keep: files of the caller in the run directory (see
            :func:`~clinfonce.training.run_directory.claim_run_directory`).

    Raises:
        TrainingInterrupted: SIGINT, SIGTERM or SLURM's pre-emption signal stopped training;
            ``last.ckpt`` holds the state after the last finished step.

    Examples:
        >>> from clinfonce.training import load_config, train
        >>> result = train(load_config("configs/synthetic-attributes-clinfonce.yaml",
        ...                            ["train.epochs=1"]))  # doctest: +SKIP
        >>> result.metrics["monitor/knn_top1"]  # doctest: +SKIP
        0.41
    """
    config = with_absolute_paths(config)  # config.yaml must work from any folder
    checkpoint: Path | None = None
    if (
        resume is None
        and requeued_slurm_job()
        and (run_directory(config) / LAST_CHECKPOINT).is_file()
    ):
        resume = run_directory(config)  # the job script's command, rerun after pre-emption
        print(f"requeued SLURM job: resuming {resume}", flush=True)
    if resume is not None:
        run_dir, checkpoint = resolve_resume(resume, config)
        run_id = read_run_id(run_dir) or new_run_id()
    else:
        # Under DDP every process gets here; only the first checks and empties the directory.
        if getattr(rank_zero_only, "rank", 0) == 0:  # from the launcher's environment
            check_run_directory(config, keep)  # a refusal before the data loads
        run_dir = run_directory(config)
        run_id = new_run_id()  # global rank zero's is the one written
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
    # Emptied once the files the data was read from are known (none of them may go).
    if resume is None and getattr(rank_zero_only, "rank", 0) == 0:
        claim_run_directory(config, keep, data.source.inputs)
    method = find_method(config.method.name)
    terms = objective_terms(config)  # resolved once, for the module and the callbacks
    module = method.build(config, data, terms)  # per-sample tables registered
    loader = train_loader(config, data)
    warn_degenerate_objective(config, data, terms)
    memory_note = module.memory_summary() if isinstance(module, ContrastiveModule) else None
    if memory_note and getattr(rank_zero_only, "rank", 0) == 0:
        print(memory_note, flush=True)
    checkpoints = run_dir / "checkpoints"
    assert isinstance(loader.batch_sampler, DistributedBatchSampler)
    all_callbacks: list[Callback] = [
        RunFiles(config, data, run_dir),
        LastCheckpoint(
            run_dir / LAST_CHECKPOINT,
            config.train.checkpoint_every_n_steps,
            loader.batch_sampler,
            run_id,
            rows_fingerprint(
                data.source.table[config.data.id_column].iloc[data.train_rows].astype(str).tolist()
            ),
        ),
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
                enable_version_counter=False,  # the directory is this run's: replace best.ckpt
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
            RunLock(run_dir),
            *all_callbacks,
            *method.callbacks(config, data, terms, run_dir),
            *([EpochLines()] if config.train.progress_bar and not bar else []),
            *callbacks,
        ],
        log_every_n_steps=min(config.train.log_every_n_steps, len(loader)),
        enable_progress_bar=bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        plugins=[AtomicCheckpointIO()],
    )
    use_tf32_matmul(trainer.strategy.root_device)  # float32 products in TF32 on CUDA
    start = time.perf_counter()
    with warnings.catch_warnings():
        # In-memory data is augmented on the device: loader workers would not help.
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        # A resumed run writes into its own, non-empty checkpoint folder by design.
        warnings.filterwarnings("ignore", message="Checkpoint directory .* is not empty")
        # Mid-epoch resumes are exact here: the batch sampler skips the batches already
        # trained (DistributedBatchSampler.skip_next), which Lightning cannot see.
        warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended")
        # Lightning 2.6 with torch 2.14 warns about its own use of a torch API.
        warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
        with stop_gracefully(trainer) as received:
            try:
                trainer.fit(module, train_dataloaders=loader, ckpt_path=checkpoint)
            except SIGTERMException:
                raise TrainingInterrupted(
                    received[0] if received else signal.SIGTERM, run_dir, trainer.global_step
                ) from None
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
        text = json.dumps(summary, indent=2)
        atomic_write(run_dir / "summary.json", lambda temp: temp.write_text(text))
    return TrainResult(
        run_dir,
        module,
        data,
        run_dir / LAST_CHECKPOINT,
        best_path,
        metrics,
        trainer.is_global_zero,
    )


def warn_degenerate_objective(
    config: ExperimentConfig, data: PreparedData, terms: Sequence[ObjectiveTerm]
) -> None:
    """Warn when the contrastive objective cannot learn much, saying how badly.

    Four cases train without error yet teach the encoder little: a batch of one sample
    (no negatives), one view of each sample for a SimCLR term (whose only positives are the
    other views), a single cluster (every sample a positive, no negatives), and clusters
    so fine that most anchors find no other sample of their cluster in the batch (the
    Cl-InfoNCE term is then empty for them).
    """
    batch = config.train.batch_size
    instance = [t.name for t in terms if t.ids == "instance"]
    if config.train.views == 1 and instance:
        warnings.warn(
            f"train.views=1: the {', '.join(instance)} term's positives are the other views of "
            "the same image, and with one view there are none: it is 0 and teaches nothing; "
            "use train.views=2",
            stacklevel=2,
        )
    if batch == 1:
        warnings.warn(
            "train.batch_size=1: each step sees one sample, with no negatives to contrast, so "
            "the loss is near 0 and the encoder learns nothing; use 32 or more",
            stacklevel=2,
        )
    memory = config.method.memory.size
    if memory >= len(data.train_rows):
        warnings.warn(
            f"method.memory.size={memory} holds at least all {len(data.train_rows)} training "
            "samples: anchors meet stale copies of themselves (counted as positives); use a "
            "smaller memory",
            stacklevel=2,
        )
    if data.clusters is None or batch < 2:
        return
    sizes = np.unique(data.clusters, return_counts=True)[1]
    total = int(sizes.sum())
    if len(sizes) == 1:
        warnings.warn(
            f"the cluster assignment puts all {total} training samples in 1 cluster: every "
            "sample is a positive of every other and Cl-InfoNCE has no negatives; check the "
            "clusters section (columns, K)",
            stacklevel=2,
        )
        return
    per_cluster = config.train.per_cluster
    if per_cluster > 1 or memory:  # the sampler and the memory bring positives of their own
        positives = positives_per_anchor(sizes, batch, per_cluster, memory)
        if positives < MIN_POSITIVES:
            warnings.warn(
                f"clusters too fine even with train.per_cluster={per_cluster} and "
                f"method.memory.size={memory}: about {positives:.2f} positives per anchor",
                stacklevel=2,
            )
        return
    alone = expected_alone_fraction(sizes, batch)
    if alone > 0.5:
        warnings.warn(
            f"clusters too fine for the batch: {len(sizes)} clusters over {total} samples leave "
            f"about {alone:.0%} of anchors ({alone * batch:.0f} of {batch} per batch) with no "
            "other sample of their cluster in the batch; use coarser clusters or a larger "
            "train.batch_size",
            stacklevel=2,
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
