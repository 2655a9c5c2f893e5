"""Stage 1: auxiliary information -> one cluster id per sample, and how good the clusters are.

A metadata table (one row per sample) goes in; a builder (``attributes``, ``hierarchy``,
``tags``, ``kmeans``, ``instance``, ``label``, ``column``) turns it into contiguous cluster
ids; :func:`cluster_metrics` says how much the clusters tell about the downstream labels
(I(Z;T)) and how much they split them (H(Z|T)). K-means itself lives in
:mod:`clinfonce.clusters.kmeans`; tables are read by :mod:`clinfonce.clusters.tables`, and
assignment files and their sidecars written and read by :mod:`clinfonce.clusters.io`.

Examples:
    >>> import pandas as pd
    >>> from clinfonce.clusters import build_clusters, cluster_metrics
    >>> table = pd.DataFrame({"striped": [1, 1, 0, 0], "label": [0, 0, 1, 1]})
    >>> z = build_clusters(table, "attributes", columns=["striped"])
    >>> z
    array([1, 1, 0, 0])
    >>> cluster_metrics(z, table["label"])["i_zt"]
    1.0
"""

from clinfonce.clusters.builders import build_clusters
from clinfonce.clusters.io import read_assignment, write_assignment
from clinfonce.clusters.metrics import cluster_metrics
from clinfonce.clusters.tables import read_table

__all__ = [
    "build_clusters",
    "cluster_metrics",
    "read_assignment",
    "read_table",
    "write_assignment",
]
