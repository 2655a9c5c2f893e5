"""From config to training data: load the source, pick rows, encode labels, attach clusters.

Everything that can be wrong with the inputs (unknown columns, ids missing from the
assignment, a split with no rows) fails here, before any training starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clinfonce.clusters.io import ClusterSidecar
from clinfonce.clusters.tables import require_columns
from clinfonce.data.augment import AugmentParams
from clinfonce.data.cluster_ids import clustering_ids
from clinfonce.data.config import ClustersConfig, DataConfig
from clinfonce.data.datasets import ContrastiveDataset, as_int64
from clinfonce.data.sources import ImageSource, load_source
from clinfonce.data.splits import seeded_subset, split_mask
from clinfonce.data.views import ViewMaker, choose_view_maker


@dataclass
class PreparedData:
    """Training data resolved from a config, ready to become datasets.

    Attributes:
        view_maker: the run's view maker, which holds the source (all rows) as read.
        train_rows: table rows trained on; training sample ``i`` is row ``train_rows[i]``.
        monitor_rows: labelled held-out rows for the kNN monitor, or ``None``.
        labels: int64 label code per table row (``-1`` = unknown), or ``None``.
        label_names: code -> original label value.
        clusters: int64 cluster id per training sample, or ``None``.
        cluster_sidecar: how the clusters were made and their metrics against the labels
            (written next to them in the run dir), or ``None``.
        mean: normalisation mean per channel.
        std: normalisation std per channel.
        named_clusters: name -> int64 cluster id per training sample (``clusters.named``).
        named_sidecars: name -> that clustering's sidecar.
    """

    view_maker: ViewMaker
    train_rows: np.ndarray
    monitor_rows: np.ndarray | None
    labels: np.ndarray | None
    label_names: list[Any]
    clusters: np.ndarray | None
    cluster_sidecar: ClusterSidecar | None
    mean: list[float]
    std: list[float]
    named_clusters: dict[str, np.ndarray] = field(default_factory=dict)
    named_sidecars: dict[str, ClusterSidecar] = field(default_factory=dict)

    @property
    def source(self) -> ImageSource:
        """The loaded source, all rows (files replaced by their prepared array if made)."""
        return self.view_maker.source

    @property
    def image_size(self) -> int:
        """The model input side."""
        return self.view_maker.image_size

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
        """The training set, ``views`` views per sample, made as :attr:`view_maker` decides."""
        transform = self.view_maker.train_transform(views, augment)
        return self.dataset(self.train_rows, transform=transform)

    def eval_dataset(self, rows: np.ndarray) -> ContrastiveDataset:
        """Un-augmented images of ``rows`` (files: resize + centre crop)."""
        return self.dataset(rows, transform=self.view_maker.eval_transform())

    def dataset(self, rows: np.ndarray, *, transform: Any = None) -> ContrastiveDataset:
        """A dataset over table ``rows`` (``index`` = position in ``rows``)."""
        labels = None if self.labels is None else self.labels[rows]
        return ContrastiveDataset(
            self.view_maker.images(rows),
            labels=as_int64(labels),
            transform=transform,
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
    view_maker = choose_view_maker(source, data.image_size)
    source = view_maker.source
    table = source.table
    require_columns(table, [data.id_column], source.name, "; set data.id_column")
    labels, names = _labels(table, data.label_column, source.name)
    rng = np.random.default_rng(seed)
    rows = np.arange(len(table))
    split = None
    if data.split_column in table.columns:
        split = table[data.split_column].astype(str).to_numpy()
        in_split = split_mask(
            table,
            data.split_column,
            data.train_split,
            where=source.name,
            option="data.split_column",
            hint="; set data.train_split",
        )
        rows = rows[in_split]
    monitor_rows = None
    if labels is not None and monitor_split is not None:
        if split is not None and monitor_split in set(split):
            monitor_rows = np.flatnonzero((split == monitor_split) & (labels >= 0))
        elif holdout_fraction > 0:
            held = rng.random(len(rows)) < holdout_fraction
            monitor_rows = rows[held & (labels[rows] >= 0)]
            rows = rows[~held]
    rows = seeded_subset(rows, data.train_subset, rng)
    train = table.iloc[rows]
    train_labels = None if labels is None else labels[rows]
    cluster_ids, sidecar = clustering_ids(
        train, clusters, "clusters", data.id_column, source.name, train_labels
    )
    named_ids, named_sidecars = {}, {}
    for name, spec in clusters.named.items():
        ids, named_sidecar = clustering_ids(
            train, spec, f"clusters.named.{name}", data.id_column, source.name, train_labels
        )
        # ClustersConfig rejects a named clustering without a source
        assert ids is not None and named_sidecar is not None
        named_ids[name], named_sidecars[name] = ids, named_sidecar
    mean, std = _normalisation(source, rows, data)
    return PreparedData(
        view_maker,
        rows,
        monitor_rows,
        labels,
        names,
        cluster_ids,
        sidecar,
        mean,
        std,
        named_ids,
        named_sidecars,
    )


def _labels(
    table: pd.DataFrame, column: str | None, where: str
) -> tuple[np.ndarray | None, list[Any]]:
    if column is None:
        return None, []
    if column not in table.columns:
        if column == "label":  # the default: data without labels is fine
            return None, []
        require_columns(table, [column], where, "; set data.label_column")
    codes, uniques = pd.factorize(table[column], sort=True)
    return codes.astype(np.int64), list(uniques)


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
