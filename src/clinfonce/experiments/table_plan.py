"""Plan ``clinfonce run``: read the table and images, derive every setting from the data
(:mod:`clinfonce.data.defaults`), resolve the clusters, and say what will train.

Nothing trains here; :func:`plan_table_run` returns the validated config and the loaded
images for :func:`clinfonce.experiments.table_run.run_table`.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from clinfonce.binder import apply_overrides
from clinfonce.clusters.assess import (
    INFORMATION_NOTE,
    Assessment,
    Candidate,
    assess,
    expected_positives,
)
from clinfonce.clusters.suggest import METHOD_RULE, Suggestion, default_method, suggest
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
from clinfonce.experiments.table_backbone import backbone_for_table
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
        k: the number of top tags with ``tags`` (``None``: the advisor's pick).
        overlap: with ``tags``, train on overlap positives instead of tag-set clusters:
            ``any``, ``jaccard`` or ``at-least-M`` (docs/method.md §11), beside InfoNCE.
        kmeans: K for K-means of the model's own embedding (no auxiliary data).
        clusters: an existing stage-1 assignment file (``id,cluster``).
        method: ``method.name`` (``None``: one rule for every source, from the clusters'
            numbers: :data:`clinfonce.clusters.suggest.METHOD_RULE`).
        epochs: training epochs (``None``: from ``steps``).
        steps: the step budget when ``epochs`` is not given.
        batch_size: requested batch (lowered to the training rows when larger).
        out: the run directory (default ``runs/<table stem>-<source>``, numbered when
            taken).
        compare: baselines trained at the same budget and evaluated alongside.
        overrides: ``section.key=value`` config overrides, applied last.
        image_root: folder the paths are relative to (default: the table's folder).
        path_column, id_column, label_column, split_column: column roles (default:
            detected).
        image_size: model input side (default: the median image side, at most 224).
        memory_budget_mib: decoded images are kept in memory up to this size.
        seed: seeds everything.
        encoder: ``model.encoder`` (default: chosen from the images and the machine,
            :func:`~clinfonce.experiments.table_backbone.choose_backbone`).
        weights: ``model.weights`` (default: as ``encoder``).
        encoding: text encoding of the table (default: a ``data.options.encoding=``
            override, else UTF-8).
    """

    table: str
    aux: list[str] | None = None
    hierarchy: str | None = None
    level: int | None = None
    hierarchy_column: str | None = None
    tags: str | None = None
    k: int | None = None
    overlap: str | None = None
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
    encoder: str | None = None
    weights: str | None = None
    encoding: str | None = None


@dataclass
class TablePlan:
    """The resolved run: its config, the loaded images and the summary printed at start.

    Attributes:
        config: the training config (paths absolute).
        source: the images and table, loaded once.
        columns: the column roles.
        summary: the start summary, one line per item.
        suggestion: the cluster suggestion when ``--aux auto`` (or ``--tags`` without
            ``--k``) asked for one.
        assessment: the advisor's numbers of the training clusters (the same estimator as
            ``clinfonce clusters suggest``); ``None`` for K-means.
    """

    config: ExperimentConfig
    source: ImageSource
    columns: TableColumns
    summary: list[str]
    suggestion: Suggestion | None = None
    assessment: Assessment | None = None


def _clusters_section(
    options: TableRunOptions,
    columns: TableColumns,
    train_table: pd.DataFrame,
    batch: int,
    balancing: int | Literal["auto"],
) -> tuple[dict[str, Any], str, str, Suggestion | None]:
    """The ``clusters`` section, its description, a short name for the run directory, and
    the suggestion behind ``auto`` (or behind ``--tags`` without ``--k``), its positives
    counted with the batches ``balancing`` (see :func:`_balancing`)."""
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
    if options.k is not None and options.tags is None:
        raise ValueError("--k is the number of top tags of --tags COL; pass --tags too")
    leaf = options.hierarchy_column or columns.label
    if options.hierarchy is not None and leaf is None:
        raise ValueError("--hierarchy needs the leaf column: pass --hierarchy-column COL")
    if options.hierarchy is not None and options.level is None and not auto:
        raise ValueError("--hierarchy needs --level L (the ancestor depth, root = 0)")
    # The source adds an `id` column (the path) when the table has none.
    reserved = [*columns.reserved, "id"]
    if auto or (options.tags and options.k is None):
        hierarchy = None
        if auto and options.hierarchy is not None and leaf is not None:
            levels = [options.level] if options.level is not None else None
            hierarchy = (options.hierarchy, leaf, levels)
        found = suggest(
            train_table,
            [*reserved, *([leaf] if hierarchy and leaf else [])],
            label_column=columns.label,
            batch_size=batch,
            columns=None if auto else [],
            hierarchy=hierarchy,
            tags=options.tags,
            seed=options.seed,
            per_cluster=balancing,
        )
        pick = found.best
        if pick.label_copy:
            raise ValueError(
                f"every candidate source is the label {columns.label!r} under other names "
                f"({pick.candidate.name} included): there is no weak supervision to use; give "
                "a column of auxiliary information, or train on the labels with --method supcon"
            )
        name = pick.candidate.name
        if auto:
            described = f"{name}, --aux auto's pick of {len(found.ranked)} candidates"
        else:
            k = pick.candidate.clusters["params"]["k"]
            described = f"{name} (--k {k}, the advisor's pick of {len(found.ranked)}; "
            described += "set it with --k)"
        return pick.candidate.clusters, described, name, found
    if options.aux:
        return (
            {"builder": "attributes", "params": {"columns": list(options.aux)}},
            f"joint value of {', '.join(options.aux)}",
            "+".join(options.aux),
            None,
        )
    if options.hierarchy is not None:
        params = {"label_column": leaf, "parents": options.hierarchy, "level": options.level}
        return (
            {"builder": "hierarchy", "params": params},
            f"{leaf} at level {options.level}",
            f"level{options.level}",
            None,
        )
    if options.tags:
        return (
            {"builder": "tags", "params": {"column": options.tags, "k": options.k}},
            f"top-{options.k} tags of {options.tags}",
            f"{options.tags}-top{options.k}",
            None,
        )
    if options.clusters is not None:
        return (
            {"assignment": options.clusters},
            f"assignment file {options.clusters}",
            Path(options.clusters).stem,
            None,
        )
    if options.kmeans is not None:
        return (
            {},
            f"K-means (K = {options.kmeans}) of the model's own embedding",
            f"kmeans{options.kmeans}",
            None,
        )
    raise ValueError(
        "no auxiliary information given: pass --aux COL[,COL...] (or --aux auto), "
        "--hierarchy FILE --level L, --tags COL, --clusters FILE or --kmeans K"
    )


def _default_run_directory(table: Path, source: str) -> Path:
    """``runs/<table stem>-<source>``, numbered (``-2``, ``-3``...) when already taken, so a
    run with other flags never lands in an earlier run's directory."""
    slug = re.sub(r"[^A-Za-z0-9_.+-]+", "-", source).strip("-") or "run"
    base = Path("runs") / f"{table.stem}-{slug}"
    candidate, number = base, 1
    while candidate.exists():
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate.absolute()


def _refuse_taken_out(out: Path, overrides: list[str]) -> None:
    """A given ``--out`` that holds a run is refused before any work, with advice that works
    for ``clinfonce run`` (a finished run's config differs from this one's)."""
    if any(item.replace(" ", "").lower() == "output.overwrite=true" for item in overrides):
        return
    if out.is_dir() and any(out.iterdir()):
        raise ValueError(
            f"--out {out} already holds a run; give another --out, leave --out out (each run "
            "then gets a directory of its own under runs/), or add output.overwrite=true to "
            "replace it"
        )


def _overlap_objective(options: TableRunOptions) -> tuple[list[dict[str, Any]], str]:
    """InfoNCE plus an overlap term on ``--tags`` for ``--overlap RULE``."""
    rule = options.overlap or ""
    if options.tags is None:
        raise ValueError(f"--overlap {rule} needs a tag column: pass --tags COL")
    kind, count = rule, ""
    if rule.startswith("at-least-"):
        kind, count = "at-least", rule.removeprefix("at-least-")
    if kind not in ("any", "jaccard", "at-least") or (kind == "at-least" and not count.isdigit()):
        raise ValueError(
            f"--overlap {rule!r}: expected any, jaccard or at-least-M (e.g. at-least-2)"
        )
    term: dict[str, Any] = {"loss": "overlap", "tags": options.tags, "overlap": kind}
    if count:
        term["min_shared"] = int(count)
    described = f"overlap positives on the tags of {options.tags} ({rule}), beside InfoNCE"
    return [{"loss": "simclr"}, term], described


def plan_table_run(options: TableRunOptions, log: Log = print) -> TablePlan:
    """Read the table and images, derive the settings, load the data; nothing trains."""
    from clinfonce.data.prepare import prepare_data

    table = Path(options.table).absolute()
    if not table.is_file():
        raise FileNotFoundError(f"table {options.table} not found")
    if options.out:
        _refuse_taken_out(Path(options.out).absolute(), options.overrides)
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
    objective: list[dict[str, Any]] = []
    balancing = _balancing(options.overrides)
    if options.overlap is not None:
        objective, described = _overlap_objective(options)
        clusters: dict[str, Any] = {}
        source_name = f"{options.tags}-overlap-{options.overlap}"
        suggestion = None
        method = "auto"  # the objective list is what trains
    else:
        clusters, described, source_name, suggestion = _clusters_section(
            options,
            columns,
            source.table[in_train.to_numpy()].reset_index(drop=True),
            batch,
            balancing,
        )
        # Named explicitly (not "auto") so the report and config.yaml say what trained; the
        # rule needs the clusters' numbers, so a provisional name until they are measured.
        method = options.method or (
            "kmeans-clinfonce" if options.kmeans is not None else "clinfonce-plus-simclr"
        )
    out = (
        Path(options.out).absolute() if options.out else _default_run_directory(table, source_name)
    )
    backbone = backbone_for_table(side, options.encoder, options.weights, options.overrides)
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
        "objective": objective,
        "model": backbone.model_values(),
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
    assessment, batches_line = None, None
    if config.clusters.defined:
        prepared = prepare_data(config.data, config.clusters, monitor_split=None, source=source)
        if prepared.clusters is not None:
            # Warnings name the columns themselves ("colour", not "joint value of colour").
            name = "+".join(options.aux) if options.aux and options.aux != ["auto"] else described
            assessment = _assess_clusters(
                prepared.clusters, prepared.train_labels(), suggestion, name, config, balancing
            )
            if balancing == "auto" and assessment.per_cluster > 1:
                values["train"]["per_cluster"] = assessment.per_cluster
                config = config_from_dict(values, options.overrides)
                random = expected_positives(prepared.clusters, config.train.batch_size)
                group = assessment.per_cluster
                batches_line = (
                    f"batches: cluster-balanced, groups of {group} cluster mates "
                    f"(train.per_cluster={group}): {assessment.positives:.1f} positives per "
                    f"anchor instead of {random:.2f} in a random batch (train.per_cluster=0 "
                    "turns it off)"
                )
    has_labels = assessment is not None and assessment.informative is not None
    why = None
    if assessment is not None:
        rule_method, why = default_method(assessment, has_labels)
        if suggestion is not None:
            why = suggestion.reason
        if (
            options.method is None
            and config.method.name != rule_method
            and not _named(options.overrides, "method.name")
        ):
            values["method"]["name"] = rule_method
            config = config_from_dict(values, options.overrides)
    if options.method is not None or _named(options.overrides, "method.name"):
        method_line = f"method: {config.method.name} (asked for)"
    elif options.overlap is not None:
        method_line = f"method: InfoNCE + {described}"
    elif options.kmeans is not None:
        method_line = (
            "method: kmeans-clinfonce (K-means of the model's own embedding, after a SimCLR "
            "warm-up)"
        )
    else:
        method_line = f"method: {config.method.name} (the rule for every source: {METHOD_RULE})"
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
        f"{steps_per_epoch * config.train.epochs} steps",
        *([batches_line] if batches_line else []),
        method_line,
        f"clusters: {described}" + _metrics_text(assessment),
        f"backbone: {config.model.encoder}, weights {config.model.weights}: {backbone.reason}",
    ]
    if why is not None:
        summary.append(f"why: {why}")
    summary += _warnings(assessment, options, columns, source.table[in_train.to_numpy()])
    for line in summary:
        log(line)
    return TablePlan(config, source, columns, summary, suggestion, assessment)


def _named(overrides: list[str], key: str) -> bool:
    return any(item.split("=", 1)[0].strip() == key for item in overrides)


def _balancing(overrides: list[str]) -> int | Literal["auto"]:
    """The cluster-balanced batches positives are counted with: the ``train.per_cluster``
    given on the command line, else ``auto`` (what ``run`` picks for each source)."""
    if not _named(overrides, "train.per_cluster"):
        return "auto"
    given = apply_overrides({}, [o for o in overrides if o.startswith("train.per_cluster")])
    value = given.get("train", {}).get("per_cluster")
    return value if isinstance(value, int) else 0  # the config check names a bad value


def _assess_clusters(
    ids: np.ndarray,
    labels: np.ndarray | None,
    suggestion: Suggestion | None,
    described: str,
    config: ExperimentConfig,
    balancing: int | Literal["auto"],
) -> Assessment:
    """The advisor's numbers of the training clusters: the suggestion's own where it picked
    them (the same figures in the summary, the why line and the table), else measured with
    the same estimator and the batches ``balancing``."""
    if suggestion is not None:
        return suggestion.best
    candidate = Candidate(described, config.to_dict()["clusters"], ids)
    known = labels if labels is not None and bool((labels >= 0).any()) else None
    return assess(
        candidate,
        config.train.batch_size,
        known,
        seed=config.train.seed,
        per_cluster=balancing,
    )


def _warnings(
    assessment: Assessment | None,
    options: TableRunOptions,
    columns: TableColumns,
    train_table: pd.DataFrame,
) -> list[str]:
    """Lines for a source that is the label in disguise or tells nothing about the labels."""
    if assessment is None or assessment.informative is None:
        return []
    from clinfonce.clusters.assess import recodes_labels
    from clinfonce.clusters.builders import run_builder

    label = columns.label
    copies = []
    if options.aux and options.aux != ["auto"] and label is not None:
        codes = pd.factorize(train_table[label])[0]
        for column in options.aux:
            ids = run_builder(train_table, "attributes", columns=[column]).ids
            if recodes_labels(ids, codes):
                copies.append(column)
    if assessment.label_copy and not copies:
        copies.append(assessment.candidate.name)
    if copies:
        return [
            f"warning: {', '.join(copies)} is the label {label!r} under other names (every "
            "cluster inside one label and every label inside one cluster): training on it is "
            "supervised contrastive learning (SupCon), not weak supervision; give a source of "
            "auxiliary information to measure what it adds"
        ]
    if assessment.informative:
        return []
    return [
        f"warning: {assessment.candidate.name} tells nothing measurable about the labels "
        f"({assessment.information_text()}; permutation test p = {assessment.p_value:.2f} over "
        f"{assessment.labelled} labelled training rows). Cl-InfoNCE on it pulls together "
        "samples the labels tell apart: expect no gain over SimCLR (check with --compare "
        "simclr), and a loss with pure Cl-InfoNCE (--method clinfonce)"
    ]


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


def _metrics_text(assessment: Assessment | None) -> str:
    if assessment is None:
        return ""
    text = f"; K = {assessment.k}"
    if assessment.informative is not None:
        text += (
            f", {assessment.information_text()} (over {assessment.labelled} labelled training "
            f"rows, {INFORMATION_NOTE})"
        )
    return text
