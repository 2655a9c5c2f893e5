"""Evaluate a trained checkpoint: the work behind ``clinfonce evaluate``.

The data come from the run's config (or another config): the same source, label codes and
eval view as in training, but every training-split row (``data.train_subset`` is ignored,
the probe sees the whole training set). The test rows are ``monitor.split`` (``test``) or,
when the data have no such split, the same seeded hold-out the training monitor used.
Features are the encoder's output (before the projection head, docs/method.md §1) of the
un-augmented eval view. The measuring itself (features, kNN, probes, cluster views) is
:mod:`clinfonce.evaluation`'s; this module picks the rows and settings of a finished run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clinfonce.data.augment import AugmentParams
from clinfonce.data.config import ClustersConfig
from clinfonce.data.prepare import PreparedData, prepare_data
from clinfonce.data.sources import ImageSource
from clinfonce.data.splits import seeded_subset
from clinfonce.evaluation.cluster_views import embedding_kmeans, tsne_plot
from clinfonce.evaluation.features import extract_features, use_tf32_matmul
from clinfonce.evaluation.knn import knn_evaluate
from clinfonce.evaluation.linear import ProbeResult, logistic_probe, sgd_probe
from clinfonce.runs.eval_settings import EvalSettings
from clinfonce.runs.load import LoadedRun
from clinfonce.training.config import ExperimentConfig

Log = Callable[[str], None]


def evaluation_data(
    config: ExperimentConfig,
    *,
    train_split: str | None = None,
    test_split: str | None = None,
    holdout: bool = True,
    source: ImageSource | None = None,
) -> PreparedData:
    """The run's data for evaluation: all training-split rows, and held-out test rows.

    ``monitor_rows`` of the result are the labelled ``test_split`` rows, or (without that
    split, when ``holdout``) the training monitor's seeded hold-out, removed from the
    training rows exactly as in training. ``source``: the already loaded data (else loaded
    from ``config.data``).
    """
    data = dataclasses.replace(
        config.data,
        train_subset=None,
        train_split=train_split if train_split is not None else config.data.train_split,
    )
    return prepare_data(
        data,
        ClustersConfig(),
        monitor_split=(test_split or config.monitor.split) if holdout else None,
        holdout_fraction=config.monitor.holdout_fraction if holdout else 0.0,
        seed=config.train.seed,
        source=source,
    )


def _probe_crop_flip(config: ExperimentConfig) -> AugmentParams:
    """The SGD probe's views: the run's crop settings and a flip, no colour changes."""
    augment = config.augment
    return AugmentParams(
        crop_scale=list(augment.crop_scale),
        crop_ratio=list(augment.crop_ratio),
        flip_p=0.5,
        jitter_p=0.0,
        grayscale_p=0.0,
    )


def _run_sgd_probe(
    run: LoadedRun,
    prepared: PreparedData,
    train_rows: np.ndarray,
    test: tuple[torch.Tensor, torch.Tensor],
    settings: EvalSettings,
    device: torch.device,
    log: Log,
) -> ProbeResult:
    module, params = run.module, _probe_crop_flip(run.config)
    transform, augment = prepared.view_maker.single_view(params)
    dataset = prepared.dataset(train_rows, transform=transform)
    result = sgd_probe(
        module.embed,
        dataset,
        test[0],
        test[1],
        num_classes=prepared.num_classes,
        augment=augment,
        epochs=settings.sgd_epochs,
        lr=settings.sgd_lr,
        batch_size=settings.sgd_batch_size,
        weight_decay=settings.sgd_weight_decay,
        topk=settings.topk,
        seed=settings.seed,
        model=module,
        device=device,
        num_workers=settings.num_workers,
        log=log,
    )
    result.params["augmentation"] = (
        f"random resized crop (area {params.crop_scale[0]}-{params.crop_scale[1]}) + "
        "horizontal flip"
    )
    return result


def _evaluation_rows(
    config: ExperimentConfig, prepared: PreparedData, settings: EvalSettings
) -> tuple[np.ndarray, np.ndarray, str]:
    """Labelled training rows, test rows (both seeded subsets when limited), and where the
    test rows came from."""
    if prepared.labels is None:
        raise ValueError(
            f"{config.data.dataset}: evaluation needs labels, but the data have no column "
            f"{config.data.label_column!r}; set data.label_column"
        )
    test_name = settings.test_split or config.monitor.split
    if prepared.monitor_rows is None or len(prepared.monitor_rows) == 0:
        raise ValueError(
            f"no labelled test rows: split {test_name!r} is absent or unlabelled (and "
            "monitor.holdout_fraction is 0); pass --test-split or set monitor.holdout_fraction"
        )
    table = prepared.source.table
    column = config.data.split_column
    from_split = column in table.columns and test_name in set(table[column].astype(str))
    test_from = (
        f"split {test_name!r}"
        if from_split
        else f"seeded {config.monitor.holdout_fraction:.0%} hold-out of the training split"
    )
    train_rows = prepared.train_rows[prepared.labels[prepared.train_rows] >= 0]
    if len(train_rows) == 0:
        raise ValueError("no labelled training rows to fit the probes on")
    train_rows = seeded_subset(train_rows, settings.max_train, settings.seed)
    test_rows = seeded_subset(prepared.monitor_rows, settings.max_test, settings.seed + 1)
    return train_rows, test_rows, test_from


def evaluate_run(
    run: LoadedRun,
    settings: EvalSettings | None = None,
    *,
    out_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
    log: Log = print,
    progress: bool = False,
    source: ImageSource | None = None,
) -> dict[str, Any]:
    """Linear probe, weighted kNN and cluster views of a loaded checkpoint.

    Args:
        run: from :func:`clinfonce.runs.load.load_run`.
        settings: what to measure (default :class:`EvalSettings`).
        out_dir: where the t-SNE PNG goes (default: the run directory, else the
            checkpoint's folder).
        device: where features, kNN and the SGD probe are computed.
        log: receives one-line progress messages.
        progress: progress bars for the feature extraction.
        source: the already loaded data (default: loaded from the run's config).

    Returns:
        A JSON-ready dict: ``knn`` (``{k: {"top1", "top5"}}``), ``linear``
        (:meth:`ProbeResult.to_dict`), ``embedding_clusters``, ``tsne`` (the PNG's path),
        what was evaluated on what, and ``seconds`` per stage.

    Examples:
        >>> from clinfonce.runs.load import load_run
        >>> results = evaluate_run(load_run("runs/fashion-mnist-clinfonce"))  # doctest: +SKIP
        >>> results["knn"]["20"]["top1"]  # doctest: +SKIP
        0.843
    """
    settings = settings or EvalSettings()
    device = torch.device(device)
    use_tf32_matmul(device)
    config, module = run.config, run.module.to(device)
    seconds: dict[str, float] = {}
    started = tick = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal tick
        seconds[stage] = round(time.perf_counter() - tick, 2)
        tick = time.perf_counter()

    prepared = evaluation_data(
        config, train_split=settings.train_split, test_split=settings.test_split, source=source
    )
    train_rows, test_rows, test_from = _evaluation_rows(config, prepared, settings)

    def features(rows: np.ndarray, what: str) -> tuple[torch.Tensor, torch.Tensor]:
        log(f"embedding {len(rows)} {what} images")
        x, y = extract_features(
            module.embed,
            prepared.eval_dataset(rows),
            batch_size=settings.batch_size,
            model=module,
            num_workers=settings.num_workers,
            desc=f"{what} features" if progress else None,
        )
        assert y is not None  # evaluation data always carry labels
        return x, y

    train_x, train_y = features(train_rows, "training")
    test_x, test_y = features(test_rows, "test")
    lap("features")
    classes = prepared.num_classes
    name = run.run_dir.name if run.run_dir is not None else run.checkpoint.stem
    results: dict[str, Any] = {
        "run": name,
        "checkpoint": str(run.checkpoint),
        "run_dir": str(run.run_dir) if run.run_dir is not None else None,
        "method": config.method.name,
        "encoder": config.model.encoder,
        "dataset": config.data.dataset,
        "features": "encoder output of the eval view (before the projection head)",
        "feature_dim": int(train_x.shape[1]),
        "num_classes": classes,
        "train": {
            "split": settings.train_split or config.data.train_split,
            "samples": len(train_rows),
        },
        "test": {"rows": test_from, "samples": len(test_rows)},
        "settings": dataclasses.asdict(settings),
        "knn_temperature": settings.knn_temperature,
    }

    log(f"weighted kNN (k = {', '.join(map(str, settings.knn_ks))})")
    knn = knn_evaluate(
        train_x,
        train_y,
        test_x,
        test_y,
        ks=settings.knn_ks,
        temperature=settings.knn_temperature,
        topk=settings.topk,
        num_classes=classes,
        device=device,
    )
    results["knn"] = {str(k): {f"top{t}": acc for t, acc in per.items()} for k, per in knn.items()}
    lap("knn")

    probe: ProbeResult | None = None
    if settings.probe == "logistic":
        log(f"logistic probe (C grid {', '.join(map(str, settings.cs))})")
        probe = logistic_probe(
            train_x,
            train_y,
            test_x,
            test_y,
            cs=settings.cs,
            val_fraction=settings.val_fraction,
            topk=settings.topk,
            num_classes=classes,
            seed=settings.seed,
        )
    elif settings.probe == "sgd":
        log(f"SGD probe ({settings.sgd_epochs} epochs on crop + flip views)")
        probe = _run_sgd_probe(run, prepared, train_rows, (test_x, test_y), settings, device, log)
    results["linear"] = probe.to_dict() if probe is not None else None
    lap("probe")

    results["embedding_clusters"] = results["tsne"] = None
    if settings.nmi or settings.tsne:
        log(f"spherical K-means of the test embedding, K = {len(np.unique(test_y.numpy()))}")
        assignments, results["embedding_clusters"] = embedding_kmeans(
            test_x, test_y, seed=settings.seed
        )
        lap("kmeans")
        if settings.tsne:
            folder = Path(out_dir) if out_dir is not None else default_out_dir(run)
            log(f"t-SNE of {min(len(test_rows), settings.tsne_points)} test embeddings")
            path = tsne_plot(
                test_x,
                test_y,
                assignments,
                folder / f"tsne-{run.checkpoint.stem}.png",
                label_names=[str(n) for n in prepared.label_names],
                max_points=settings.tsne_points,
                seed=settings.seed,
                title=f"{name} ({config.method.name}):",
            )
            results["tsne"] = str(path)
            lap("tsne")
    seconds["total"] = round(time.perf_counter() - started, 2)
    results["seconds"] = seconds
    return results


def default_out_dir(run: LoadedRun) -> Path:
    """The run directory, or the checkpoint's folder for a checkpoint outside one."""
    return run.run_dir if run.run_dir is not None else run.checkpoint.parent
