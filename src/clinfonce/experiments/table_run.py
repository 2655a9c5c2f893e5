"""Your own images and metadata, end to end: the work behind ``clinfonce run``.

From a table (one row per image file, plus auxiliary columns) to a trained encoder,
embeddings of every row and a report, with settings read off the data
(:mod:`clinfonce.data.defaults`) and printed before anything trains:

1. the columns (path, id, label, split), image size and colour, in memory or prepared on disk;
2. stage 1: the clusters (named columns, ``auto`` via :func:`clinfonce.clusters.suggest.suggest`,
   a hierarchy level, tags, an assignment file, or K-means of the model's own embedding);
3. stage 2: training, with the batch clamped to the data and epochs from a step budget;
4. ``embeddings.npy`` + ``index.csv`` of every row, keyed by the table's id;
5. with labels: kNN and linear probe of the encoder, of an untrained encoder (the floor)
   and of any baselines trained at the same budget; ``report.md`` with plots.

The run directory's ``config.yaml`` reproduces the training with ``clinfonce train --config``.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clinfonce.clusters.suggest import Suggestion, suggest, suggestion_markdown
from clinfonce.data.defaults import (
    MAX_IMAGE_SIDE,
    MEMORY_BUDGET_BYTES,
    TableColumns,
    choose_storage,
    clamp_batch,
    detect_columns,
    probe_images,
)
from clinfonce.data.sources import ImageSource, load_source, read_metadata
from clinfonce.training.config import ExperimentConfig, config_from_dict

Log = Callable[[str], None]
#: Methods ``--compare`` accepts (baselines trained at the same budget).
COMPARE_METHODS: tuple[str, ...] = ("simclr", "supcon", "clinfonce", "clinfonce-plus-simclr")
#: The shared recipe: tau 0.2, AdamW lr 2e-3 with a 5% warm-up (docs/method.md).
_RECIPE: dict[str, Any] = {
    "method": {"temperature": 0.2},
    "optim": {"name": "adamw", "lr": 0.002, "warmup_fraction": 0.05},
    "train": {"precision": "auto"},
}


@dataclass
class TableRunOptions:
    """What ``clinfonce run`` was asked for (``None``: derived from the data).

    Attributes:
        table: the metadata table (CSV, TSV, Parquet, JSONL), one row per image.
        aux: attribute columns to cluster by jointly, or ``["auto"]`` for the suggestion.
        hierarchy: a child,parent CSV or JSON tree over ``hierarchy_column``'s values.
        level: the hierarchy level (root = 0).
        hierarchy_column: the hierarchy's leaf column (default: the label column).
        tags: a tag column (top tags as clusters).
        kmeans: K for K-means of the model's own embedding (no auxiliary data).
        clusters: an existing stage-1 assignment file (``id,cluster``).
        method: ``method.name`` (``None``: the suggestion's with ``auto``, else ``auto``).
        epochs: training epochs (``None``: from ``steps``).
        steps: the step budget when ``epochs`` is not given.
        batch_size: requested batch (lowered to the training rows when larger).
        out: the run directory (default ``runs/<table stem>``).
        compare: baselines trained at the same budget and evaluated alongside.
        overrides: ``section.key=value`` config overrides, applied last.
        image_root: folder the paths are relative to (default: the table's folder).
        path_column, id_column, label_column, split_column: column roles (default:
            detected).
        image_size: model input side (default: the median image side, at most 224).
        memory_budget_mib: decoded images are kept in memory up to this size.
        seed: seeds everything.
    """

    table: str
    aux: list[str] | None = None
    hierarchy: str | None = None
    level: int | None = None
    hierarchy_column: str | None = None
    tags: str | None = None
    kmeans: int | None = None
    clusters: str | None = None
    method: str | None = None
    epochs: int | None = None
    steps: int = 500
    batch_size: int = 256
    out: str | None = None
    compare: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    image_root: str | None = None
    path_column: str | None = None
    id_column: str | None = None
    label_column: str | None = None
    split_column: str | None = None
    image_size: int | None = None
    memory_budget_mib: float = MEMORY_BUDGET_BYTES / 2**20
    seed: int = 0


@dataclass
class TablePlan:
    """The resolved run: its config, the loaded images and the summary printed at start.

    Attributes:
        config: the training config (paths absolute).
        source: the images and table, loaded once.
        columns: the column roles.
        summary: the start summary, one line per item.
        suggestion: the cluster suggestion when ``--aux auto`` asked for one.
        cluster_metrics: K (and with labels the information numbers) of the clusters.
    """

    config: ExperimentConfig
    source: ImageSource
    columns: TableColumns
    summary: list[str]
    suggestion: Suggestion | None = None
    cluster_metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class TableRunResult:
    """Where a finished ``clinfonce run`` put things.

    Attributes:
        run_dir: the run directory (checkpoints, config.yaml, logs).
        report: ``report.md``.
        embeddings: ``embeddings.npy`` (``index.csv`` beside it).
        rows: per evaluated encoder: name, ``knn_top1``, ``linear_top1`` (%), seconds.
    """

    run_dir: Path
    report: Path
    embeddings: Path
    rows: list[dict[str, Any]]


def _clusters_section(
    options: TableRunOptions, columns: TableColumns, train_table: pd.DataFrame, batch: int
) -> tuple[dict[str, Any], str, Suggestion | None]:
    """The ``clusters`` section, its description, and the suggestion behind ``auto``."""
    auto = options.aux == ["auto"]
    given = [
        ("--aux", options.aux),
        ("--kmeans", options.kmeans),
        ("--clusters", options.clusters),
        # With --aux auto, a hierarchy and tags are candidates of the suggestion.
        ("--hierarchy", None if auto else options.hierarchy),
        ("--tags", None if auto else options.tags),
    ]
    chosen = [flag for flag, value in given if value]
    if len(chosen) > 1:
        raise ValueError(f"give one source of clusters, not {' and '.join(chosen)}")
    leaf = options.hierarchy_column or columns.label
    if options.hierarchy is not None and leaf is None:
        raise ValueError("--hierarchy needs the leaf column: pass --hierarchy-column COL")
    if options.hierarchy is not None and options.level is None and not auto:
        raise ValueError("--hierarchy needs --level L (the ancestor depth, root = 0)")
    if auto:
        hierarchy = None
        if options.hierarchy is not None and leaf is not None:
            levels = [options.level] if options.level is not None else [1, 2, 3]
            hierarchy = (options.hierarchy, leaf, levels)
        found = suggest(
            train_table,
            # The source adds an `id` column (the path) when the table has none.
            [*columns.reserved, "id", *([leaf] if hierarchy and leaf else [])],
            label_column=columns.label,
            batch_size=batch,
            hierarchy=hierarchy,
            tags=options.tags,
            seed=options.seed,
        )
        pick = found.best.candidate
        described = f"{pick.name}, --aux auto's pick of {len(found.ranked)} candidates"
        return pick.clusters, described, found
    if options.aux:
        return (
            {"builder": "attributes", "params": {"columns": list(options.aux)}},
            f"joint value of {', '.join(options.aux)}",
            None,
        )
    if options.hierarchy is not None:
        params = {"label_column": leaf, "parents": options.hierarchy, "level": options.level}
        return {"builder": "hierarchy", "params": params}, f"{leaf} at level {options.level}", None
    if options.tags:
        return (
            {"builder": "tags", "params": {"column": options.tags}},
            f"tags of {options.tags}",
            None,
        )
    if options.clusters is not None:
        return {"assignment": options.clusters}, f"assignment file {options.clusters}", None
    if options.kmeans is not None:
        return {}, f"K-means (K = {options.kmeans}) of the model's own embedding", None
    raise ValueError(
        "no auxiliary information given: pass --aux COL[,COL...] (or --aux auto), "
        "--hierarchy FILE --level L, --tags COL, --clusters FILE or --kmeans K"
    )


def plan_table_run(options: TableRunOptions, log: Log = print) -> TablePlan:
    """Read the table and images, derive the settings, load the data; nothing trains."""
    from clinfonce.data.prepare import prepare_data

    table = Path(options.table).absolute()
    if not table.is_file():
        raise FileNotFoundError(f"table {options.table} not found")
    frame = read_metadata(table)
    root = Path(options.image_root).absolute() if options.image_root else table.parent
    columns = detect_columns(
        frame,
        root,
        path=options.path_column,
        id=options.id_column,
        label=options.label_column,
        split=options.split_column,
    )
    paths = [root / str(p) for p in frame[columns.path]]
    exists = np.array([p.is_file() for p in paths], dtype=bool)
    probe = probe_images([p for p, ok in zip(paths, exists, strict=True) if ok])
    if probe.median_side == 0:
        raise ValueError(f"{table}: none of the {len(paths)} listed images could be read")
    side = options.image_size or min(probe.median_side, MAX_IMAGE_SIDE)
    budget = int(options.memory_budget_mib * 2**20)
    storage, storage_reason = choose_storage(int(exists.sum()), side, probe.channels, budget)
    data_options = {
        "table": str(table),
        "image_root": str(root),
        "path_column": columns.path,
        "channels": probe.channels,
        "missing": "skip",
        **storage,
    }
    with warnings.catch_warnings():  # the dropped rows are counted in the summary instead
        warnings.simplefilter("ignore", UserWarning)
        source = load_source("table", **data_options)
    kept = len(source.table)
    unreadable = int(exists.sum()) - kept
    dropped = [f"{int((~exists).sum())} missing file(s)"] if (~exists).any() else []
    dropped += [f"{unreadable} unreadable image(s)"] if unreadable else []
    split_column = columns.split or "split"
    in_train = (
        source.table[split_column].astype(str) == "train"
        if columns.split is not None
        else pd.Series(True, index=source.table.index)
    )
    train_rows = int(in_train.sum())
    batch, batch_note = clamp_batch(options.batch_size, train_rows)
    steps_per_epoch = train_rows // batch
    epochs = options.epochs or max(1, math.ceil(options.steps / steps_per_epoch))
    clusters, described, suggestion = _clusters_section(
        options, columns, source.table[in_train.to_numpy()].reset_index(drop=True), batch
    )
    # Named explicitly (not "auto") so the report and config.yaml say what trained.
    default = "kmeans-clinfonce" if options.kmeans is not None else "clinfonce-plus-simclr"
    method = options.method or (suggestion.method if suggestion is not None else default)
    out = Path(options.out or Path("runs") / table.stem).absolute()
    values: dict[str, Any] = {
        **_RECIPE,
        "data": {
            "dataset": "table",
            "options": data_options,
            "id_column": columns.id or "id",
            "label_column": columns.label,
            "split_column": split_column,
            "image_size": side,
        },
        "clusters": clusters,
        "method": {**_RECIPE["method"], "name": method},
        "train": {**_RECIPE["train"], "epochs": epochs, "batch_size": batch, "seed": options.seed},
        "augment": {"jitter_p": 0.0} if probe.channels == 1 else {},
        "monitor": {
            "enabled": columns.label is not None,
            "every_n_epochs": max(1, epochs // 5),
            "max_bank": 2000,
            "max_queries": 1000,
        },
        "output": {"dir": str(out.parent), "name": out.name},
    }
    if options.kmeans is not None:
        values["kmeans"] = {"n_clusters": [options.kmeans]}
    config = config_from_dict(values, options.overrides)
    metrics: dict[str, float] = {}
    if config.clusters.defined:
        from clinfonce.clusters import cluster_metrics

        prepared = prepare_data(config.data, config.clusters, monitor_split=None, source=source)
        labels = prepared.train_labels()
        if prepared.clusters is not None:
            known = labels is not None and bool((labels >= 0).any())
            metrics = cluster_metrics(prepared.clusters, labels if known else None, ami=False)
    summary = [
        f"table: {table} ({len(frame)} rows; path column {columns.path!r}, id "
        f"{columns.id or '(the path)'!r}, label {columns.label or '(none)'!r}, split "
        f"{columns.split or '(none: all rows train)'!r})",
        f"rows: {kept} kept, "
        + (f"{len(frame) - kept} dropped ({', '.join(dropped)})" if dropped else "none dropped"),
        f"images: median side {probe.median_side} px (of {probe.sampled} read) -> input "
        f"{config.data.image_size} px, "
        + ("grayscale, 1 channel" if probe.channels == 1 else "colour, 3 channels")
        + f"; {storage_reason}",
        f"training: {train_rows} rows, batch {config.train.batch_size}"
        + (f" ({batch_note})" if batch_note else "")
        + f", {steps_per_epoch} step(s) per epoch x {config.train.epochs} epoch(s) = "
        f"{steps_per_epoch * config.train.epochs} steps, method {config.method.name}",
        f"clusters: {described}" + _metrics_text(metrics),
    ]
    if suggestion is not None:
        summary.append(f"why: {suggestion.reason}")
    for line in summary:
        log(line)
    return TablePlan(config, source, columns, summary, suggestion, metrics)


def _metrics_text(metrics: dict[str, float]) -> str:
    if not metrics:
        return ""
    text = f"; K = {int(metrics['num_clusters'])}"
    if "i_zt" in metrics:
        text += (
            f", I(Z;T)/H(T) = {metrics['i_zt_over_h_t']:.2f} (I(Z;T) = {metrics['i_zt']:.2f} "
            f"of H(T) = {metrics['h_t']:.2f} bits, H(Z|T) = {metrics['h_z_given_t']:.2f})"
        )
    return text


def run_table(options: TableRunOptions, log: Log = print) -> TableRunResult:
    """``clinfonce run``: plan, train, embed every row, evaluate and write the report.

    Examples:
        >>> result = run_table(TableRunOptions("meta.csv", aux=["colour"]))  # doctest: +SKIP
        >>> result.report  # doctest: +SKIP
        PosixPath('runs/meta/report.md')
    """
    from clinfonce.evaluation.protocol import EvalSettings, embed_run, evaluate_run
    from clinfonce.training import train
    from clinfonce.training.load import LoadedRun

    unknown = sorted(set(options.compare) - set(COMPARE_METHODS))
    if unknown:
        raise ValueError(
            f"--compare {', '.join(unknown)}: not a method to compare; use "
            f"{', '.join(COMPARE_METHODS)}"
        )
    plan = plan_table_run(options, log)
    config, source = plan.config, plan.source
    if "supcon" in options.compare and config.data.label_column is None:
        raise ValueError("--compare supcon needs a label column (--label-column)")
    log(f"stage 2: training {config.method.name} ...")
    started = time.perf_counter()
    trained = train(config, source=source)
    seconds = {config.method.name: time.perf_counter() - started}
    run_dir = trained.run_dir
    main = LoadedRun(trained.last_checkpoint, run_dir, config, trained.module.eval())
    embedded = embed_run(main, run_dir, source=source, log=log)
    runs = {config.method.name: main}
    for method in dict.fromkeys(options.compare):
        if method == config.method.name:
            continue  # trained already
        values = config.to_dict()
        values["method"]["name"] = method
        values["output"] = {"dir": str(run_dir / "compare"), "name": method}
        if method in ("simclr", "supcon"):
            values["clusters"] = {}
        other = config_from_dict(values)
        log(f"stage 2: training {method} at the same budget ...")
        started = time.perf_counter()
        result = train(other, source=source)
        seconds[method] = time.perf_counter() - started
        runs[method] = LoadedRun(
            result.last_checkpoint, result.run_dir, other, result.module.eval()
        )
    rows: list[dict[str, Any]] = []
    if (
        config.data.label_column is not None
        and plan.source.table[config.data.label_column].nunique() >= 2
    ):
        settings = EvalSettings(knn_ks=(20,), topk=(1,), nmi=False, seed=config.train.seed)
        floor = _untrained(config, source)
        for name, loaded in [("untrained encoder", floor), *runs.items()]:
            log(f"evaluating {name}")
            with_tsne = dataclasses.replace(settings, tsne=loaded is main)  # the trained one
            results = evaluate_run(loaded, with_tsne, out_dir=run_dir, log=log, source=source)
            rows.append(
                {
                    "name": name,
                    "knn_top1": 100 * results["knn"]["20"]["top1"],
                    "linear_top1": 100 * results["linear"]["top1"],
                    "train_seconds": round(seconds.get(name, 0.0), 1),
                    "tsne": results["tsne"],
                    "test": results["test"],
                }
            )
            log(f"  {name}: kNN {rows[-1]['knn_top1']:.1f}, linear {rows[-1]['linear_top1']:.1f}")
    trained_dirs = {name: loaded.run_dir or run_dir for name, loaded in runs.items()}
    report = write_report(plan, run_dir, rows, trained_dirs)
    log(f"wrote {report}, {embedded['embeddings']} and {embedded['index']}")
    return TableRunResult(run_dir, report, Path(embedded["embeddings"]), rows)


def _untrained(config: ExperimentConfig, source: ImageSource) -> Any:
    """The encoder as initialised (same seed), as a loaded run: the floor to clear."""
    from clinfonce.training.build import untrained_encoder
    from clinfonce.training.load import LoadedRun

    module = untrained_encoder(config, source)
    return LoadedRun(Path("untrained.ckpt"), None, module.cfg, module)


def _training_curves(run_dirs: dict[str, Path], path: Path) -> Path | None:
    """``train/loss`` against the step for each trained run (from its CSV log)."""
    from clinfonce.experiments.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    drawn = False
    for name, run_dir in run_dirs.items():
        logs = sorted((run_dir / "logs" / "csv").glob("version_*/metrics.csv"))
        if not logs:
            continue
        metrics = pd.read_csv(logs[-1])
        if "train/loss" not in metrics:
            continue
        curve = metrics.dropna(subset=["train/loss"])
        ax.plot(curve["step"], curve["train/loss"], label=name)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _cluster_sizes_plot(path: Path) -> Path | None:
    """Sorted cluster sizes of the training clusters (log scale)."""
    from clinfonce.clusters import read_assignment
    from clinfonce.experiments.plots import pyplot

    assignment = path.parent / "clusters.csv"
    if not assignment.is_file():
        return None
    ids = read_assignment(assignment)["cluster"].to_numpy()
    sizes = np.sort(np.bincount(ids)[np.bincount(ids) > 0])[::-1]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(np.arange(len(sizes)), sizes, width=1.0)
    ax.set_yscale("log")
    ax.set_xlabel("cluster (largest first)")
    ax.set_ylabel("training samples")
    ax.set_title(f"{len(sizes)} clusters over {len(ids)} training samples")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(
    plan: TablePlan,
    run_dir: Path,
    rows: Sequence[dict[str, Any]],
    run_dirs: dict[str, Path],
) -> Path:
    """``report.md`` with the start summary, the clusters, the accuracies and the plots."""
    from clinfonce.experiments.plots import accuracy_plot

    config = plan.config
    lines = [
        f"# clinfonce run: {Path(config.data.options['table']).name}",
        "",
        "## Data and settings",
        "",
        *[f"- {line}" for line in plan.summary],
        "",
        f"Reproduce the training with `clinfonce train --config {run_dir / 'config.yaml'}` "
        "(set output.name or output.overwrite=true to train it again).",
        "",
    ]
    if plan.suggestion is not None:
        lines += [
            "## Cluster sources considered (--aux auto)",
            "",
            suggestion_markdown(plan.suggestion),
            f"Recommendation: {plan.suggestion.reason}",
            "",
        ]
    sizes = _cluster_sizes_plot(run_dir / "cluster-sizes.png")
    if sizes is not None:
        lines += ["## Clusters", "", f"![cluster sizes]({sizes.name})", ""]
    curves = _training_curves(run_dirs, run_dir / "training-curves.png")
    if curves is not None:
        lines += ["## Training", "", f"![training loss]({curves.name})", ""]
    lines += [
        "## Embeddings",
        "",
        "`embeddings.npy` (float32, one row per table row that was kept, the encoder output "
        "before the projection head) and `index.csv` (its row, id, label, split).",
        "",
    ]
    if rows:
        test = rows[0]["test"]
        lines += [
            "## Accuracy",
            "",
            f"Top-1 (%) on {test['samples']} test images ({test['rows']}): kNN (cosine, "
            "k = 20) and a logistic-regression probe on the frozen features.",
            "",
            "| encoder | kNN top-1 | linear top-1 | train s |",
            "|---|---|---|---|",
            *[
                f"| {r['name']} | {r['knn_top1']:.1f} | {r['linear_top1']:.1f} | "
                f"{r['train_seconds']} |"
                for r in rows
            ],
            "",
        ]
        summary = pd.DataFrame(
            {
                "name": [r["name"] for r in rows],
                "linear_top1_mean": [r["linear_top1"] for r in rows],
                "knn_top1_mean": [r["knn_top1"] for r in rows],
            }
        )
        accuracy_plot(summary, run_dir / "accuracy.png", f"{config.method.name}: top-1")
        lines += ["![accuracy](accuracy.png)", ""]
        tsne = next((r["tsne"] for r in rows if r["tsne"]), None)
        if tsne:
            lines += ["## t-SNE of the test embeddings", "", f"![t-SNE]({Path(tsne).name})", ""]
    else:
        lines += ["No label column: no accuracy to report.", ""]
    report = run_dir / "report.md"
    report.write_text("\n".join(lines))
    return report
