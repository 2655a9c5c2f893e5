"""Data for training: sources (built-in and custom), joins with cluster ids, augmentation.

One sample's path: a source (:mod:`~clinfonce.data.sources`, the registry; the built-in
loaders are listed in :mod:`~clinfonce.data.catalog`) gives the metadata row and its image;
:func:`prepare_data` picks the rows (:mod:`~clinfonce.data.splits`), encodes the label and
attaches the cluster ids (:mod:`~clinfonce.data.cluster_ids`); the run's view maker
(:mod:`~clinfonce.data.views`, chosen once) turns the image into training views or an
un-augmented evaluation input.

Examples:
    >>> from clinfonce.data import load_source
    >>> source = load_source("synthetic-attributes", n_samples=40, image_size=16)
    >>> source.table.columns.tolist()[:6]
    ['id', 'label', 'maker', 'material', 'region', 'tier']
"""

from clinfonce.data import catalog  # noqa: F401  (registers the built-in sources)
from clinfonce.data.augment import AugmentParams, BatchAugment, eval_transform, view_transform
from clinfonce.data.cluster_ids import join_assignment, write_clusters
from clinfonce.data.config import ClustersConfig, ClusterSpec, DataConfig
from clinfonce.data.datasets import ContrastiveDataset, EpochShuffleSampler
from clinfonce.data.prepare import PreparedData, prepare_data
from clinfonce.data.sources import ImageSource, available_sources, load_source, register_source

__all__ = [
    "AugmentParams",
    "BatchAugment",
    "ClusterSpec",
    "ClustersConfig",
    "ContrastiveDataset",
    "DataConfig",
    "EpochShuffleSampler",
    "ImageSource",
    "PreparedData",
    "available_sources",
    "eval_transform",
    "join_assignment",
    "load_source",
    "prepare_data",
    "register_source",
    "view_transform",
    "write_clusters",
]
