"""The ``data`` and ``clusters`` sections of a training config: what to train on, and where
each clustering's ids come from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clinfonce.paths import PathOption


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


#: Ids sources every batch provides itself (its samples, their labels).
BATCH_SOURCES: tuple[str, ...] = ("instance", "label")
#: The assignment name of the ``clusters`` section's unnamed clustering.
UNNAMED_CLUSTERING = "cluster"
#: Names a named clustering may not take.
RESERVED_CLUSTER_NAMES: tuple[str, ...] = (*BATCH_SOURCES, UNNAMED_CLUSTERING)
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

    assignment: PathOption | None = None
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
