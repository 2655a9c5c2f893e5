"""Plan ``clinfonce run``: read the table and images, derive every setting from the data
(:mod:`clinfonce.data.defaults`), resolve the clusters, and say what will train.

Nothing trains here; :func:`plan_table_run` returns the validated config and the loaded
images for :func:`clinfonce.experiments.table_run.run_table`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clinfonce.binder import apply_overrides
from clinfonce.clusters.suggest import Suggestion, suggest
from clinfonce.data.custom_sources import read_metadata
from clinfonce.data.defaults import (
    MAX_IMAGE_SIDE,
    MEMORY_BUDGET_BYTES,
    TableColumns,
    choose_storage,
    clamp_batch,
    detect_columns,
    probe_images,
)
from clinfonce.data.sources import ImageSource, load_source
from clinfonce.outputs import is_file
from clinfonce.training.config import ExperimentConfig, config_from_dict

Log = Callable[[str], None]
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
        encoding: text encoding of the table (default: a ``data.options.encoding=``
            override, else UTF-8).
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
    encoding: str | None = None


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
    encoding = options.encoding or _encoding_override(options.overrides)
    frame = read_metadata(table, encoding)
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
    exists = np.array([is_file(p) for p in paths], dtype=bool)
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
        "encoding": encoding,
        **storage,
    }
    with warnings.catch_warnings():  # the dropped rows are counted in the summary instead
        warnings.simplefilter("ignore", UserWarning)
        source = load_source("table", **data_options)
    kept = len(source.table)
    unreadable = int(exists.sum()) - kept
    dropped = [f"{int((~exists).sum())} missing file(s)"] if (~exists).any() else []
    dropped += [f"{unreadable} unreadable image(s)"] if unreadable else []
    # Named, so a wrong path (one escaping the image folder, say) can be found.
    lost = np.setdiff1d(np.arange(len(frame)), np.asarray(source.table_rows))[:3]
    examples = "; e.g. " + ", ".join(f"row {r}: {paths[r]}" for r in lost) if dropped else ""
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
        + (
            f"{len(frame) - kept} dropped ({', '.join(dropped)}){examples}"
            if dropped
            else "none dropped"
        )
        + _unused_splits(source.table, columns.split, config),
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


def _encoding_override(overrides: Sequence[str]) -> str:
    """The table's encoding from a ``data.options.encoding=...`` override (else UTF-8): the
    table is read before the config those overrides change is made."""
    values = apply_overrides({}, [o for o in overrides if o.startswith("data.options.encoding=")])
    return str(values.get("data", {}).get("options", {}).get("encoding", "utf-8"))


def _unused_splits(table: pd.DataFrame, column: str | None, config: ExperimentConfig) -> str:
    """The summary's note on kept rows of a split neither trained on nor evaluated."""
    used = [config.data.train_split, config.monitor.split]
    if column is None:
        return ""
    values = table[column].astype(str)
    other = values[~values.isin(used)]
    if other.empty:
        return ""
    names = ", ".join(sorted(set(other))[:5])
    return (
        f"; {len(other)} of them in split(s) {names}, which neither train ({used[0]}) nor "
        f"evaluate ({used[1]}): unused"
    )


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
