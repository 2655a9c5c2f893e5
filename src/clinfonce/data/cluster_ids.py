"""Cluster ids of the training rows: joined from a stage-1 assignment file or built now,
with their sidecar, and recorded in the run directory.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clinfonce.clusters import build_clusters, cluster_metrics, read_assignment, write_assignment
from clinfonce.clusters.io import ClusterSidecar, read_sidecar, sidecar_path
from clinfonce.data.config import ClusterSpec, DataConfig

if TYPE_CHECKING:
    from clinfonce.data.prepare import PreparedData

_EXAMPLES = 5


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


def clustering_ids(
    train: pd.DataFrame,
    spec: ClusterSpec,
    key: str,
    id_column: str,
    where: str,
    labels: np.ndarray | None,
) -> tuple[np.ndarray | None, ClusterSidecar | None]:
    """One clustering's ids over the training rows and its sidecar (how they were made, and
    their plug-in metrics against the known ``labels``); ``key`` names the config section
    in errors."""
    if spec.assignment is not None and spec.builder is not None:
        raise ValueError(f"set {key}.assignment or {key}.builder, not both")
    provenance: dict[str, Any]
    if spec.assignment is not None:
        assignment = read_assignment(spec.assignment)
        ids = join_assignment(train[id_column], assignment, spec.assignment)
        made = read_sidecar(spec.assignment)
        provenance = {"assignment": str(spec.assignment)}
        if made is not None:
            provenance["sidecar"] = made.to_json()
    elif spec.builder is not None:
        built = build_clusters(train.reset_index(drop=True), spec.builder, **spec.params)
        ids = np.asarray(built, dtype=np.int64)
        provenance = {
            "builder": spec.builder,
            "params": spec.params,
            "rows": len(train),
            "source": where,
        }
    else:
        return None, None
    sidecar = ClusterSidecar(provenance)
    if labels is not None and (labels >= 0).any():
        known = labels >= 0
        sidecar.metrics = cluster_metrics(ids[known], labels[known])
    return ids, sidecar


def write_clusters(prepared: PreparedData, data: DataConfig, run_dir: Path) -> list[Path]:
    """Record the clusterings a run used: ``run_dir/clusters.csv`` for the unnamed one and
    ``run_dir/clusters-<name>.csv`` for each named one (each with its ``.json`` sidecar).

    An assignment file is copied as is (with its sidecar); built clusters are written with
    :func:`clinfonce.clusters.write_assignment`. Returns the files written.
    """
    clusterings = dict(prepared.named_clusters)
    sidecars = dict(prepared.named_sidecars)
    targets = {name: run_dir / f"clusters-{name}.csv" for name in clusterings}
    if prepared.clusters is not None and prepared.cluster_sidecar is not None:
        clusterings[""] = prepared.clusters
        sidecars[""] = prepared.cluster_sidecar
        targets[""] = run_dir / "clusters.csv"
    ids = prepared.source.table[data.id_column].iloc[prepared.train_rows].astype(str).tolist()
    for name, target in targets.items():
        assignment = sidecars[name].provenance.get("assignment")
        if assignment is not None:
            shutil.copyfile(assignment, target)
            if sidecar_path(assignment).is_file():
                shutil.copyfile(sidecar_path(assignment), sidecar_path(target))
        else:
            write_assignment(target, ids, clusterings[name], sidecars[name])
    return sorted(targets.values())
