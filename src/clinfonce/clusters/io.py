"""Cluster assignments out and back in, with the JSON sidecar that says how they were made.

An assignment is a two-column CSV (``id,cluster``) plus a JSON sidecar next to it
(``clusters.csv`` -> ``clusters.csv.json``): one layout (:class:`ClusterSidecar`) for every
writer (``clusters build``, ``import-official``, a training run's record). Both are written
through a temporary file and ``os.replace``, so a reader never sees a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clinfonce.clusters.tables import names_text, unique_ids
from clinfonce.outputs import atomic_write

_EXAMPLES = 5
#: Where training runs before the single layout kept the metrics (still read).
_OLD_METRICS_KEY = "metrics_vs_labels"


@dataclass
class ClusterSidecar:
    """The sidecar of an assignment file.

    Attributes:
        provenance: how the clusters were made: builder, parameters, input file and hash,
            the assignment a run copied, ... (each writer records what it knows).
        metrics: :func:`clinfonce.clusters.cluster_metrics` of the clusters, against the
            labels where there were labels; ``None`` when not measured.
        num_samples: rows of the assignment (set when it is written).
        num_clusters: distinct cluster ids (set when it is written).
    """

    provenance: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    num_samples: int | None = None
    num_clusters: int | None = None

    @classmethod
    def from_json(cls, content: dict[str, Any]) -> ClusterSidecar:
        """Parse a sidecar's JSON object; metrics may sit under ``metrics`` or, in files
        training wrote before the single layout, ``metrics_vs_labels``."""
        rest = dict(content)
        metrics = rest.pop("metrics", None)
        old = rest.pop(_OLD_METRICS_KEY, None)
        return cls(
            provenance={k: v for k, v in rest.items() if k not in ("num_samples", "num_clusters")},
            metrics=metrics if metrics is not None else old,
            num_samples=rest.get("num_samples"),
            num_clusters=rest.get("num_clusters"),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object written: the provenance keys, ``metrics`` and the counts."""
        content = {**_jsonable(self.provenance)}
        if self.metrics is not None:
            content["metrics"] = _jsonable(self.metrics)
        if self.num_samples is not None:
            content["num_samples"] = self.num_samples
        if self.num_clusters is not None:
            content["num_clusters"] = self.num_clusters
        return content


def sidecar_path(assignment: str | os.PathLike[str]) -> Path:
    """Where an assignment's sidecar lives: ``<assignment>.json``."""
    return Path(f"{os.fspath(assignment)}.json")


def read_sidecar(assignment: str | os.PathLike[str]) -> ClusterSidecar | None:
    """The sidecar of an assignment file (either layout), or ``None`` when it has none."""
    path = sidecar_path(assignment)
    if not path.is_file():
        return None
    return ClusterSidecar.from_json(json.loads(path.read_text(encoding="utf-8")))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def write_assignment(
    path: str | os.PathLike[str],
    ids: Sequence[Any] | np.ndarray | pd.Series,
    clusters: Sequence[int] | np.ndarray,
    sidecar: ClusterSidecar | dict[str, Any],
) -> None:
    """Write ``id,cluster`` rows to ``path`` and ``sidecar`` to ``<path>.json``, atomically.

    Args:
        path: the CSV to write (parent folders are created).
        ids: one sample key per row (written as strings; must be unique).
        clusters: one non-negative integer cluster id per row.
        sidecar: how the clusters were made (builder, parameters, input hash, metrics...),
            or its JSON object (read by :meth:`ClusterSidecar.from_json`); numpy values are
            converted, non-finite floats become ``null``. The counts are set here.

    Raises:
        ValueError: lengths differ, repeated ids, or cluster ids that are not non-negative
            integers.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "clusters.csv"
        >>> write_assignment(p, ["a", "b"], [1, 0], {"builder": "label"})
        >>> print(p.read_text(), end="")
        id,cluster
        a,1
        b,0
    """
    keys = unique_ids(np.asarray([str(i) for i in ids], dtype=object), f"{path}: ids")
    values = np.asarray(clusters)
    if len(keys) != len(values):
        raise ValueError(f"{path}: {len(keys)} ids but {len(values)} cluster ids")
    if values.dtype.kind not in "iu" or (len(values) and values.min() < 0):
        raise ValueError(
            f"{path}: cluster ids must be non-negative integers (got dtype {values.dtype})"
        )
    frame = pd.DataFrame({"id": keys, "cluster": values.astype(np.int64)})
    if isinstance(sidecar, dict):
        sidecar = ClusterSidecar.from_json(sidecar)
    sidecar.num_samples, sidecar.num_clusters = len(values), len(np.unique(values))
    atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))
    text = json.dumps(sidecar.to_json(), indent=2, sort_keys=True) + "\n"
    atomic_write(sidecar_path(path), lambda tmp: _write_text(tmp, text))


def is_assignment_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an assignment written by :func:`write_assignment`: an ``id,cluster``
    CSV with its JSON sidecar (such a file may be replaced by a new build)."""
    path = Path(path)
    if not (path.is_file() and sidecar_path(path).is_file()):
        return False
    with open(path, encoding="utf-8", errors="replace") as file:
        return file.readline().strip() == "id,cluster"


def read_assignment(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an assignment CSV written by :func:`write_assignment`.

    Returns:
        A frame with columns ``id`` (str) and ``cluster`` (int64).

    Raises:
        FileNotFoundError: no such file.
        ValueError: wrong header, repeated or missing ids, or bad cluster ids.

    Examples:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.csv"
        >>> write_assignment(p, ["x", "y"], [0, 0], {})
        >>> read_assignment(p).dtypes.astype(str).tolist()
        ['str', 'int64']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such assignment file")
    frame = pd.read_csv(path, dtype={"id": str}, keep_default_na=False)
    if list(frame.columns) != ["id", "cluster"]:
        raise ValueError(
            f"{path}: an assignment has the header 'id,cluster', found "
            f"{','.join(map(str, frame.columns))}"
        )
    unique_ids(frame["id"].to_numpy(), str(path))
    cluster = pd.to_numeric(frame["cluster"], errors="coerce")
    bad = cluster.isna() | (cluster < 0) | (cluster != cluster.round())
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())[:_EXAMPLES]
        raise ValueError(
            f"{path}: cluster ids must be non-negative integers; bad rows {names_text(rows)}"
        )
    frame["cluster"] = cluster.astype(np.int64)
    return frame
