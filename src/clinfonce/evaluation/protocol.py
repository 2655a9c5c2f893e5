"""Evaluate or embed a trained checkpoint: the work behind ``clinfonce evaluate`` and ``embed``.

The data come from the run's config (or another config): the same source, label codes and
eval view as in training, but every training-split row (``data.train_subset`` is ignored,
the probe sees the whole training set). The test rows are ``monitor.split`` (``test``) or,
when the data have no such split, the same seeded hold-out the training monitor used.
Features are the encoder's output (before the projection head, docs/method.md §1) of the
un-augmented eval view.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from clinfonce.data.augment import AugmentParams
from clinfonce.data.config import ClustersConfig
from clinfonce.data.prepare import PreparedData, prepare_data
from clinfonce.data.sources import ImageSource
from clinfonce.evaluation.cluster_views import embedding_kmeans, tsne_plot
from clinfonce.evaluation.features import extract_features
from clinfonce.evaluation.knn import knn_evaluate
from clinfonce.evaluation.linear import DEFAULT_CS, ProbeResult, logistic_probe, sgd_probe
from clinfonce.outputs import atomic_write
from clinfonce.training.config import ExperimentConfig
from clinfonce.training.load import LoadedRun

PROBES: tuple[str, ...] = ("logistic", "sgd", "none")
Log = Callable[[str], None]


@dataclass
class EvalSettings:
    """What ``clinfonce evaluate`` measures and how.

    Attributes:
        probe: ``logistic`` (features of the eval view, ``C`` picked on validation),
            ``sgd`` (linear layer on crop + flip views), or ``none``.
        cs: the logistic probe's ``C`` grid.
        val_fraction: training share held out to pick ``C``.
        sgd_epochs: SGD probe epochs.
        sgd_lr: SGD probe peak learning rate (cosine to 0).
        sgd_batch_size: SGD probe batch size.
        sgd_weight_decay: SGD probe weight decay.
        knn_ks: neighbour counts of the weighted kNN.
        knn_temperature: kNN vote temperature.
        topk: reported top-k accuracies.
        nmi: K-means of the test embedding (K = number of labels) against the labels.
        tsne: write the two-panel t-SNE PNG.
        tsne_points: points in the t-SNE map.
        train_split: the probe's training split (default: ``data.train_split``).
        test_split: the test split (default: ``monitor.split``).
        max_train: seeded subset of the training rows (``None``: all).
        max_test: seeded subset of the test rows (``None``: all).
        batch_size: feature-extraction batch size.
        num_workers: loader workers (image files).
        seed: seeds subsets, the validation split, the probes, K-means and t-SNE.
    """

    probe: str = "logistic"
    cs: tuple[float, ...] = DEFAULT_CS
    val_fraction: float = 0.2
    sgd_epochs: int = 100
    sgd_lr: float = 0.3
    sgd_batch_size: int = 128
    sgd_weight_decay: float = 0.0
    knn_ks: tuple[int, ...] = (20, 200)
    knn_temperature: float = 0.07
    topk: tuple[int, ...] = (1, 5)
    nmi: bool = True
    tsne: bool = False
    tsne_points: int = 2000
    train_split: str | None = None
    test_split: str | None = None
    max_train: int | None = None
    max_test: int | None = None
    batch_size: int = 512
    num_workers: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.probe not in PROBES:
            raise ValueError(f"probe must be one of {', '.join(PROBES)}, got {self.probe!r}")
        for name in ("max_train", "max_test"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise ValueError(f"{name} must be at least 2, got {value}")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; any other name as given.

    Examples:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"--device {name!r} is not a device name (auto, cpu, cuda, ...)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device here; use --device cpu or auto")
    return device


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


def _subset(rows: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    if limit is None or len(rows) <= limit:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))


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
    train_rows = _subset(train_rows, settings.max_train, settings.seed)
    test_rows = _subset(prepared.monitor_rows, settings.max_test, settings.seed + 1)
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
        run: from :func:`clinfonce.training.load.load_run`.
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
        >>> from clinfonce.training.load import load_run
        >>> results = evaluate_run(load_run("runs/fashion-mnist-clinfonce"))  # doctest: +SKIP
        >>> results["knn"]["20"]["top1"]  # doctest: +SKIP
        0.843
    """
    settings = settings or EvalSettings()
    device = torch.device(device)
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


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def results_markdown(results: Sequence[dict[str, Any]]) -> str:
    """A Markdown table with one row per evaluated checkpoint (accuracies in %).

    Examples:
        >>> print(results_markdown([{"run": "r", "method": "simclr", "linear": None,
        ...                          "knn": {"20": {"top1": 0.5}}, "embedding_clusters": None}]),
        ...       end="")
        | run | method | probe | kNN k=20 top-1 | K-means NMI |
        |---|---|---|---|---|
        | r | simclr | - | 50.0 | - |
    """
    topk = sorted({int(key[3:]) for r in results for key in _knn_metrics(r)})
    ks = sorted({int(k) for r in results for k in r["knn"]})
    probe_ks = sorted(
        {int(key[3:]) for r in results if r["linear"] for key in r["linear"] if _is_top(key)}
    )
    header = ["run", "method", "probe"]
    header += [f"linear top-{t}" for t in probe_ks]
    header += [f"kNN k={k} top-{t}" for k in ks for t in topk]
    header += ["K-means NMI"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        linear = r["linear"] or {}
        probe = linear.get("probe", "-")
        if probe == "logistic":
            probe = f"logistic, C={linear['c']:g}"
        row = [str(r["run"]), str(r["method"]), probe]
        row += [_percent(linear.get(f"top{t}")) for t in probe_ks]
        row += [_percent(r["knn"].get(str(k), {}).get(f"top{t}")) for k in ks for t in topk]
        clusters = r["embedding_clusters"]
        row += [f"{clusters['nmi']:.3f}" if clusters else "-"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _is_top(key: str) -> bool:
    return key.startswith("top") and key[3:].isdigit()


def _knn_metrics(result: dict[str, Any]) -> list[str]:
    return [key for per in result["knn"].values() for key in per if _is_top(key)]


def results_report(results: Sequence[dict[str, Any]]) -> str:
    """The Markdown file: what was measured, then :func:`results_markdown`."""
    first = results[0]
    linear = first["linear"]
    lines = [
        f"# Evaluation: {', '.join(str(r['run']) for r in results)}",
        "",
        f"Data: {first['dataset']}, {first['num_classes']} classes; probes fitted on "
        f"{first['train']['samples']} training images, accuracies (%) on "
        f"{first['test']['samples']} test images ({first['test']['rows']}). Features: "
        f"{first['features']}, {first['feature_dim']}-d.",
        f"kNN: cosine similarity, votes weighted by exp(sim / {first['knn_temperature']}).",
    ]
    if linear and linear["probe"] == "logistic":
        lines.append(
            "Linear probe: multinomial logistic regression on standardised features, C "
            f"picked on a {linear['val_fraction']:.0%} validation split, refitted on all "
            "training images."
        )
    elif linear:
        lines.append(
            f"Linear probe: SGD, {linear['epochs']} epochs, lr {linear['lr']} cosine, batch "
            f"{linear['batch_size']}, {linear['augmentation']}."
        )
    if first["embedding_clusters"]:
        lines.append(
            "K-means NMI: spherical K-means of the test embedding with K = number of labels, "
            "normalised mutual information with the labels."
        )
    return "\n".join([*lines, "", results_markdown(results)])


def write_results(results: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``evaluation-<checkpoint>.json`` and ``.md`` into ``out_dir``."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"evaluation-{Path(results['checkpoint']).stem}"
    json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"
    text, report = json.dumps(results, indent=2), results_report([results])
    atomic_write(json_path, lambda temp: temp.write_text(text))
    atomic_write(md_path, lambda temp: temp.write_text(report))
    return json_path, md_path


def embed_run(
    run: LoadedRun,
    out_dir: str | Path,
    *,
    splits: Sequence[str] | None = None,
    batch_size: int = 512,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    log: Log = print,
    progress: bool = False,
    source: ImageSource | None = None,
) -> dict[str, Any]:
    """Write the encoder features of a dataset's rows: ``embeddings.npy``, ``index.csv``,
    ``embeddings.json``.

    ``embeddings.npy`` is float32 ``[N, D]``; line ``i`` of ``index.csv`` (columns ``row``,
    ``id``, ``label``, ``split``) describes embedding ``i``: ``row`` is the sample's row in
    the dataset's metadata table, ``label`` its original label (empty when unknown). Without
    ``splits`` every row is embedded in table order, so the file lines up with the table.

    Args:
        run: from :func:`clinfonce.training.load.load_run`.
        out_dir: output folder (created).
        splits: values of ``data.split_column`` to embed (``None``: all rows).
        batch_size: images per forward pass.
        num_workers: loader workers (image files).
        device: where the encoder runs.
        log: receives one-line progress messages.
        progress: show a progress bar.
        source: the already loaded data (default: loaded from the run's config).

    Returns:
        The sidecar's content (paths, counts, dimension, checkpoint, data settings).

    Examples:
        >>> from clinfonce.training.load import load_run
        >>> embed_run(load_run("runs/demo/runs/clinfonce"), "emb", splits=["test"])
        ... # doctest: +SKIP
    """
    config = run.config
    prepared = evaluation_data(config, holdout=False, source=source)
    table = prepared.source.table
    split_column = config.data.split_column
    split = (
        table[split_column].astype(str).to_numpy()
        if split_column in table.columns
        else np.full(len(table), "", dtype=object)
    )
    rows = np.arange(len(table))
    if splits is not None:
        if split_column not in table.columns:
            raise ValueError(
                f"{prepared.source.name}: no split column {split_column!r} to pick "
                f"{', '.join(splits)} from; omit --split or set data.split_column"
            )
        unknown = sorted(set(splits) - set(split))
        if unknown:
            raise ValueError(
                f"{prepared.source.name}: no rows with {split_column} in {', '.join(unknown)} "
                f"(splits present: {', '.join(sorted(set(split)))})"
            )
        rows = rows[np.isin(split, list(splits))]
    module = run.module.to(torch.device(device))
    log(f"embedding {len(rows)} images of {prepared.source.name}")
    features, _ = extract_features(
        module.embed,
        prepared.eval_dataset(rows),
        batch_size=batch_size,
        model=module,
        num_workers=num_workers,
        desc="embedding" if progress else None,
    )
    if prepared.labels is not None:
        names = np.asarray([str(n) for n in prepared.label_names] + [""], dtype=object)
        labels = names[prepared.labels[rows]]  # code -1 (unknown) picks the trailing ""
    else:
        labels = np.full(len(rows), "", dtype=object)
    index = pd.DataFrame(
        {
            "row": rows,
            "id": table[config.data.id_column].iloc[rows].astype(str).to_numpy(),
            "label": labels,
            "split": split[rows],
        }
    )
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    array = features.numpy().astype(np.float32)

    def save_array(temp: Path) -> None:
        with open(temp, "wb") as file:  # a file object: np.save would append ".npy" to a path
            np.save(file, array)

    # Each file is replaced whole: the index first (it marks the folder as an export, see
    # ``clinfonce embed --force``), the sidecar last (it is there once the others are).
    atomic_write(folder / "index.csv", lambda temp: index.to_csv(temp, index=False))
    atomic_write(folder / "embeddings.npy", save_array)
    sidecar = {
        "embeddings": str(folder / "embeddings.npy"),
        "index": str(folder / "index.csv"),
        "count": len(rows),
        "dim": int(features.shape[1]),
        "features": "encoder output of the eval view (before the projection head)",
        "checkpoint": str(run.checkpoint),
        "splits": list(splits) if splits is not None else "all",
        "data": dataclasses.asdict(config.data),
    }
    text = json.dumps(sidecar, indent=2, default=str)
    atomic_write(folder / "embeddings.json", lambda temp: temp.write_text(text))
    return sidecar
