"""From config to training data: load the source, pick rows, encode labels, attach clusters.

Everything that can be wrong with the inputs (unknown columns, ids missing from the
assignment, a split with no rows) fails here, before any training starts.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from clinfonce.data.augment import (
    AugmentParams,
    MultiView,
    eval_resize_side,
    eval_transform,
    view_transform,
)
from clinfonce.data.datasets import ArrayRows, ContrastiveDataset, ImageFiles, as_int64
from clinfonce.data.prepared import DEFAULT_FILE_SIZE, prepared_source
from clinfonce.data.sources import ImageSource, images_tensor, load_source

_EXAMPLES = 5


@dataclass
class DataConfig:
    """The ``data`` section of a training config.

    Attributes:
        dataset: a registered source: ``fashion-mnist``, ``synthetic-attributes``, ``table``
            (images listed in a metadata table) or ``arrays`` (``.npz``/``.npy``).
        options: keyword options of that source (e.g. ``{table: meta.csv, image_root: img}``).
        id_column: the sample key joined with cluster assignment files.
        label_column: downstream labels for the monitor and SupCon (``null``: none).
        split_column: column naming each row's split (ignored when absent).
        train_split: the split trained on.
        train_subset: train on a seeded random subset of this many rows (``null``: all).
        image_size: model input side (``null``: the in-memory images' size, 224 for files).
        mean: per-channel normalisation mean (``null``: measured on the training images for
            in-memory data, ImageNet's for files).
        std: per-channel normalisation std (as ``mean``).
    """

    dataset: str = "synthetic-attributes"
    options: dict[str, Any] = field(default_factory=dict)
    id_column: str = "id"
    label_column: str | None = "label"
    split_column: str = "split"
    train_split: str = "train"
    train_subset: int | None = None
    image_size: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None


#: Ids sources of the batch itself; a named clustering may not take these names.
RESERVED_CLUSTER_NAMES: tuple[str, ...] = ("instance", "label", "cluster")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass
class ClusterSpec:
    """Where one clustering's ids come from.

    Attributes:
        assignment: a stage-1 assignment file (``id,cluster``), joined by ``data.id_column``.
        builder: or build them now over the training rows with
            :func:`clinfonce.clusters.build_clusters` (e.g. ``attributes``, ``hierarchy``).
        params: keyword parameters of the builder (e.g. ``{columns: [level2]}``).
    """

    assignment: str | None = None
    builder: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def defined(self) -> bool:
        """Whether this clustering is configured at all."""
        return self.assignment is not None or self.builder is not None


@dataclass
class ClustersConfig(ClusterSpec):
    """The ``clusters`` section: the stage-1 clustering(s) the objective can use.

    The unnamed clustering (``assignment`` / ``builder`` at the top of the section) reaches
    the batch as ``cluster``. ``named`` adds more, e.g. several hierarchy levels or several
    attribute counts k, for objectives with one term per granularity. In YAML a named
    clustering may also sit directly in the section (``clusters: {level1: {builder: ...}}``);
    see :func:`expand_clusters_shorthand`.

    Attributes:
        named: clustering name -> :class:`ClusterSpec` (names: letters, digits, ``_``, ``-``;
            not ``instance``, ``label`` or ``cluster``).

    Examples:
        >>> cfg = ClustersConfig(named={"level1": ClusterSpec(builder="attributes")})
        >>> cfg.sources
        ['level1']
    """

    named: dict[str, ClusterSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, spec in self.named.items():
            if name in RESERVED_CLUSTER_NAMES or not name or not set(name) <= _NAME_CHARS:
                raise ValueError(
                    f"clusters.named: bad clustering name {name!r}; use letters, digits, _ "
                    f"and - (not {', '.join(RESERVED_CLUSTER_NAMES)})"
                )
            if not spec.defined:
                raise ValueError(
                    f"clusters.named.{name}: set its assignment (a stage-1 file) or its "
                    "builder (+ params)"
                )

    @property
    def sources(self) -> list[str]:
        """Ids sources of the configured clusterings: ``cluster`` for the unnamed one, then
        the names (a source is what an objective term's ``ids`` refers to)."""
        unnamed = ["cluster"] if super().defined else []
        return unnamed + list(self.named)

    @property
    def defined(self) -> bool:
        """Whether any clustering is configured."""
        return bool(self.sources)


def expand_clusters_shorthand(section: dict[str, Any]) -> dict[str, Any]:
    """Move named clusterings written directly in the ``clusters`` section under ``named``.

    Keys other than the section's own fields whose value is a mapping are clusterings;
    anything else stays (and is reported as an unknown key by the config loader).

    Examples:
        >>> expand_clusters_shorthand({"level1": {"builder": "attributes"}})
        {'named': {'level1': {'builder': 'attributes'}}}
    """
    fields = {"assignment", "builder", "params", "named"}
    short = {k: v for k, v in section.items() if k not in fields and isinstance(v, dict)}
    if not short:
        return section
    named = section.get("named") or {}
    if not isinstance(named, dict):
        raise ValueError(f"clusters.named must be a mapping of clusterings, got {named!r}")
    both = sorted(set(short) & set(named))
    if both:
        raise ValueError(
            f"clustering {both[0]!r} is given twice (clusters.{both[0]} and "
            f"clusters.named.{both[0]}); keep one"
        )
    rest = {k: v for k, v in section.items() if k not in short}
    return {**rest, "named": {**named, **short}}


@dataclass
class PreparedData:
    """Training data resolved from a config, ready to become datasets.

    Attributes:
        source: the loaded source (all rows).
        train_rows: table rows trained on; training sample ``i`` is row ``train_rows[i]``.
        monitor_rows: labelled held-out rows for the kNN monitor, or ``None``.
        labels: int64 label code per table row (``-1`` = unknown), or ``None``.
        label_names: code -> original label value.
        clusters: int64 cluster id per training sample, or ``None``.
        cluster_sidecar: how the clusters were made (written next to them in the run dir).
        image_size: model input side.
        mean: normalisation mean per channel.
        std: normalisation std per channel.
        named_clusters: name -> int64 cluster id per training sample (``clusters.named``).
        named_sidecars: name -> how that clustering was made.
    """

    source: ImageSource
    train_rows: np.ndarray
    monitor_rows: np.ndarray | None
    labels: np.ndarray | None
    label_names: list[Any]
    clusters: np.ndarray | None
    cluster_sidecar: dict[str, Any]
    image_size: int
    mean: list[float]
    std: list[float]
    named_clusters: dict[str, np.ndarray] = field(default_factory=dict)
    named_sidecars: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return self.source.channels

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def train_labels(self) -> np.ndarray | None:
        """Label codes of the training samples (``-1`` = unknown), or ``None``."""
        return None if self.labels is None else self.labels[self.train_rows]

    def train_dataset(self, views: int, augment: AugmentParams | None = None) -> ContrastiveDataset:
        """The training set, with its views made where they cost least (the one place that
        decides): an array's images (in memory or prepared) stay ``uint8 [C, H, W]`` and
        are augmented as whole batches on the device; files give ``views`` crops per sample
        from the decoded original (:func:`view_transform`), their colour added on the
        device."""
        per_sample = None
        if not self.source.in_memory:
            per_sample = MultiView(
                view_transform(augment or AugmentParams(), self.image_size), views
            )
        return self.dataset(self.train_rows, clusters=self.clusters, transform=per_sample)

    def eval_dataset(self, rows: np.ndarray) -> ContrastiveDataset:
        """Un-augmented images of ``rows`` (files: resize + centre crop)."""
        transform = None if self.source.in_memory else eval_transform(self.image_size)
        return self.dataset(rows, transform=transform)

    def dataset(
        self, rows: np.ndarray, *, clusters: np.ndarray | None = None, transform: Any = None
    ) -> ContrastiveDataset:
        """A dataset over table ``rows`` (``index`` = position in ``rows``)."""
        source = self.source
        images: torch.Tensor | ImageFiles | ArrayRows
        if isinstance(source.images, np.memmap):  # a prepared array: read rows as needed
            images = ArrayRows(source.images, rows)
        elif source.in_memory:
            images = images_tensor(source)[torch.as_tensor(rows)]
        else:
            paths = source.paths or []
            images = ImageFiles(
                [paths[r] for r in rows],
                rows.tolist(),
                source.channels,
                min_side=eval_resize_side(self.image_size),  # covers train and eval views
            )
        labels = None if self.labels is None else self.labels[rows]
        return ContrastiveDataset(
            images, labels=as_int64(labels), clusters=as_int64(clusters), transform=transform
        )


def prepare_data(
    data: DataConfig,
    clusters: ClustersConfig,
    *,
    monitor_split: str | None = "test",
    holdout_fraction: float = 0.0,
    seed: int = 0,
    source: ImageSource | None = None,
) -> PreparedData:
    """Resolve ``data`` and ``clusters`` into :class:`PreparedData`.

    Rows: ``data.train_split`` of ``data.split_column`` (all rows when the column is absent).
    Monitor rows: labelled rows of ``monitor_split`` when that split exists, else a seeded
    ``holdout_fraction`` of the training rows (removed from training). Then
    ``data.train_subset`` is drawn, and clusters are read (joined by id) or built over the
    training rows.

    Args:
        data: the data section.
        clusters: the clusters section.
        monitor_split: split used by the kNN monitor (``None``: no monitor).
        holdout_fraction: training rows held out for the monitor when that split is absent.
        seed: seed of the hold-out and subset draws.
        source: an already loaded source (skips ``load_source``).

    Examples:
        >>> prep = prepare_data(DataConfig(options={"n_samples": 60, "image_size": 16}),
        ...                     ClustersConfig(builder="attributes",
        ...                                    params={"columns": ["colour"]}))
        ... # doctest: +SKIP
    """
    if source is None:
        source = load_source(data.dataset, **data.options)
    if source.prepare is not None:  # files become a prepared array at the training size
        source = prepared_source(source, data.image_size or DEFAULT_FILE_SIZE)
    table = source.table
    _require_columns(table, [data.id_column], "data.id_column", source.name)
    labels, names = _labels(table, data.label_column, source.name)
    rng = np.random.default_rng(seed)
    rows = np.arange(len(table))
    split = None
    if data.split_column in table.columns:
        split = table[data.split_column].astype(str).to_numpy()
        rows = rows[split == data.train_split]
        if len(rows) == 0:
            raise ValueError(
                f"{source.name}: no rows with {data.split_column} == {data.train_split!r} "
                f"(splits present: {', '.join(sorted(set(split)))}); set data.train_split"
            )
    monitor_rows = None
    if labels is not None and monitor_split is not None:
        if split is not None and monitor_split in set(split):
            monitor_rows = np.flatnonzero((split == monitor_split) & (labels >= 0))
        elif holdout_fraction > 0:
            held = rng.random(len(rows)) < holdout_fraction
            monitor_rows = rows[held & (labels[rows] >= 0)]
            rows = rows[~held]
    if data.train_subset is not None and data.train_subset < len(rows):
        rows = np.sort(rng.choice(rows, size=data.train_subset, replace=False))
    train = table.iloc[rows]
    train_labels = None if labels is None else labels[rows]
    cluster_ids, sidecar = _clusters(
        train, clusters, "clusters", data.id_column, source.name, train_labels
    )
    named_ids, named_sidecars = {}, {}
    for name, spec in clusters.named.items():
        ids, named_sidecars[name] = _clusters(
            train, spec, f"clusters.named.{name}", data.id_column, source.name, train_labels
        )
        assert ids is not None  # ClustersConfig rejects a named clustering without a source
        named_ids[name] = ids
    size = data.image_size
    if size is None:
        size = source.images.shape[-1] if source.images is not None else DEFAULT_FILE_SIZE
    mean, std = _normalisation(source, rows, data)
    return PreparedData(
        source,
        rows,
        monitor_rows,
        labels,
        names,
        cluster_ids,
        sidecar,
        size,
        mean,
        std,
        named_ids,
        named_sidecars,
    )


def _require_columns(table: pd.DataFrame, columns: list[str], key: str, where: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(
            f"{where}: column(s) {', '.join(missing)} not in the metadata (columns: "
            f"{', '.join(map(str, table.columns))}); set {key}"
        )


def _labels(
    table: pd.DataFrame, column: str | None, where: str
) -> tuple[np.ndarray | None, list[Any]]:
    if column is None:
        return None, []
    if column not in table.columns:
        if column == "label":  # the default: data without labels is fine
            return None, []
        _require_columns(table, [column], "data.label_column", where)
    codes, uniques = pd.factorize(table[column], sort=True)
    return codes.astype(np.int64), list(uniques)


def join_assignment(ids: pd.Series, assignment: pd.DataFrame, where: str) -> np.ndarray:
    """Cluster id of every sample id, from an assignment table (``id``, ``cluster``).

    Ids are compared as strings. Ids the assignment lacks (or repeats) are an error naming
    a few of them; ids the assignment has beyond the samples (other splits) are fine.

    Examples:
        >>> join_assignment(pd.Series(["b", "a"]),
        ...                 pd.DataFrame({"id": ["a", "b"], "cluster": [0, 1]}), "x.csv")
        array([1, 0])
    """
    keys = assignment["id"].astype(str)
    repeated = keys[keys.duplicated()].unique()
    if len(repeated):
        raise ValueError(
            f"{where}: {len(repeated)} id(s) appear more than once, e.g. "
            f"{', '.join(repeated[:_EXAMPLES])}; an assignment has one row per sample"
        )
    lookup = pd.Series(assignment["cluster"].to_numpy(np.int64), index=keys)
    wanted = ids.astype(str)
    found = wanted.isin(lookup.index).to_numpy()
    if not found.all():
        absent = wanted[~found]
        hint = (
            f" (no id matched at all: the data's ids look like {', '.join(wanted[:3])}, the "
            f"assignment's like {', '.join(keys[:3])}; check data.id_column)"
            if not found.any()
            else ""
        )
        raise ValueError(
            f"{where}: {len(absent)} of {len(wanted)} training sample ids have no cluster, e.g. "
            f"{', '.join(absent[:_EXAMPLES])}{hint}; rebuild the assignment for these data"
        )
    return np.asarray(lookup.loc[wanted].to_numpy(np.int64))


def _clusters(
    train: pd.DataFrame,
    spec: ClusterSpec,
    key: str,
    id_column: str,
    where: str,
    labels: np.ndarray | None,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """One clustering's ids over the training rows and its sidecar (with the plug-in
    metrics against the known ``labels``); ``key`` names the config section in errors."""
    if spec.assignment is not None and spec.builder is not None:
        raise ValueError(f"set {key}.assignment or {key}.builder, not both")
    sidecar: dict[str, Any]
    if spec.assignment is not None:
        from clinfonce.clusters import read_assignment

        assignment = read_assignment(spec.assignment)
        ids = join_assignment(train[id_column], assignment, spec.assignment)
        sidecar = {"assignment": str(spec.assignment), **_read_sidecar(spec.assignment)}
    elif spec.builder is not None:
        from clinfonce.clusters import build_clusters

        built = build_clusters(train.reset_index(drop=True), spec.builder, **spec.params)
        ids = np.asarray(built, dtype=np.int64)
        sidecar = {
            "builder": spec.builder,
            "params": spec.params,
            "rows": len(train),
            "source": where,
        }
    else:
        return None, {}
    if labels is not None and (labels >= 0).any():
        from clinfonce.clusters import cluster_metrics

        known = labels >= 0
        sidecar["metrics_vs_labels"] = cluster_metrics(ids[known], labels[known])
    return ids, sidecar


def _read_sidecar(assignment: str) -> dict[str, Any]:
    import json

    sidecar = Path(f"{assignment}.json")
    if not sidecar.is_file():
        return {}
    loaded: dict[str, Any] = json.loads(sidecar.read_text())
    return {"sidecar": loaded}


def write_clusters(prepared: PreparedData, data: DataConfig, run_dir: Path) -> list[Path]:
    """Record the clusterings a run used: ``run_dir/clusters.csv`` for the unnamed one and
    ``run_dir/clusters-<name>.csv`` for each named one (each with its ``.json`` sidecar).

    An assignment file is copied as is (with its sidecar); built clusters are written with
    :func:`clinfonce.clusters.write_assignment`. Returns the files written.
    """
    clusterings = dict(prepared.named_clusters)
    sidecars = dict(prepared.named_sidecars)
    targets = {name: run_dir / f"clusters-{name}.csv" for name in clusterings}
    if prepared.clusters is not None:
        clusterings[""] = prepared.clusters
        sidecars[""] = prepared.cluster_sidecar
        targets[""] = run_dir / "clusters.csv"
    ids = prepared.source.table[data.id_column].iloc[prepared.train_rows].astype(str).tolist()
    for name, target in targets.items():
        assignment = sidecars[name].get("assignment")
        if assignment is not None:
            shutil.copyfile(assignment, target)
            if Path(f"{assignment}.json").is_file():
                shutil.copyfile(f"{assignment}.json", f"{target}.json")
        else:
            from clinfonce.clusters import write_assignment

            write_assignment(target, ids, clusterings[name], sidecars[name])
    return sorted(targets.values())


_IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def _normalisation(
    source: ImageSource, rows: np.ndarray, data: DataConfig
) -> tuple[list[float], list[float]]:
    channels = source.channels
    if source.images is not None:
        sample = source.images[rows[:: max(1, len(rows) // 5000)]].astype(np.float64) / 255
        mean = sample.mean(axis=(0, 2, 3)).tolist()
        std = np.maximum(sample.std(axis=(0, 2, 3)), 1e-3).tolist()
    else:
        mean = _IMAGENET[0][:channels] if channels == 3 else [0.5]
        std = _IMAGENET[1][:channels] if channels == 3 else [0.25]
    mean, std = data.mean or mean, data.std or std
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise ValueError(
            f"data.mean and data.std need {channels} value(s) (one per channel, std > 0), "
            f"got {mean} and {std}"
        )
    return [float(m) for m in mean], [float(s) for s in std]
