"""Config sections of the K-means variant and the auxiliary-information baselines.

``kmeans`` configures method ``kmeans-clinfonce`` (docs/method.md §2: clusters of the model's own
embedding, recomputed during training); ``baseline`` the extra heads of ``cmc-attributes``.
The other baselines (``ce-clusters``, ``attribute-prediction``) read their targets from the
``clusters`` section and need no settings of their own. Kept apart from
:mod:`clinfonce.training.config` (which includes them as sections) so the checks of these
methods live next to their settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clinfonce.clusters.kmeans import INITS
from clinfonce.data.config import ClustersConfig

if TYPE_CHECKING:  # both build on the config module, which includes this one
    from clinfonce.training.config import ExperimentConfig
    from clinfonce.training.objective import ObjectiveTerm

#: Methods trained by :class:`clinfonce.training.baselines` modules (docs/method.md §5).
BASELINE_METHODS: tuple[str, ...] = ("ce-clusters", "attribute-prediction", "cmc-attributes")
#: Methods that read attribute columns (``clusters.params.columns``).
ATTRIBUTE_METHODS: tuple[str, ...] = ("attribute-prediction", "cmc-attributes")
#: Loss temperature of a method when the config does not set ``method.temperature``
#: (others: :class:`clinfonce.training.config.MethodConfig`'s default). Paper: 0.2 for
#: K-means clusters.
METHOD_TEMPERATURES: dict[str, float] = {"kmeans-clinfonce": 0.2}
#: Feature spaces K-means can cluster.
KMEANS_FEATURES: tuple[str, ...] = ("head", "encoder")
#: Methods that warm up with SimCLR (``kmeans-clinfonce``, ``clinfonce-two-head``) do so for
#: this share of the epochs unless told otherwise.
WARMUP_FRACTION = 0.1


@dataclass
class KMeansConfig:
    """The ``kmeans`` section: the online clusters of ``kmeans-clinfonce``.

    Training starts with ``method.warmup_epochs`` of SimCLR (``null``: a tenth of
    ``train.epochs``, at least 1; ``0`` clusters the random network from the first epoch, as
    the released script does). Then, at the start of every ``every_n_epochs``-th epoch, the
    whole training set is embedded (eval transform, no gradient), clustered by spherical
    K-means, and the epoch's Cl-InfoNCE terms use those ids, looked up by sample index.
    Several K give one term each, weighted ``1 / len(n_clusters)`` (their average).

    Attributes:
        n_clusters: K of each clustering (paper: one K of 2500 for 126k ImageNet-100 images,
            about 50 images a cluster).
        every_n_epochs: re-cluster every n-th epoch after the warm-up (ids are kept between).
        features: ``head`` (L2-normalised projection-head output, the paper's choice) or
            ``encoder`` (L2-normalised encoder features, what the linear probe reads).
        iterations: Lloyd iterations per run (paper: 20).
        restarts: independent runs per clustering, lowest inertia kept (paper: 5).
        init: ``k-means++`` (greedy D^2 seeding on a 20k-point sample) or ``random`` (K
            distinct points, faiss's default: about twice as fast on 100k x 128, K 1000, but
            11% higher inertia than scikit-learn on clustered embeddings where k-means++ was
            within 1%; see ``benchmarks/bench_kmeans.py``).
        seed: seed of the clusterings (``null``: ``train.seed``); each epoch and restart gets
            its own, so a resumed run repeats the same clusterings.
        batch_size: images per forward pass while embedding the training set.
    """

    n_clusters: list[int] = field(default_factory=lambda: [2500])
    every_n_epochs: int = 1
    features: str = "head"
    iterations: int = 20
    restarts: int = 5
    init: str = "k-means++"
    seed: int | None = None
    batch_size: int = 512


def default_warmup(epochs: int) -> int:
    """SimCLR epochs before the cluster terms start, by default: a tenth of the epochs, at
    least 1 (a random network's clusters are noise, and cluster terms from the first step
    are what the warm-up avoids) and at most ``epochs - 1`` (so the cluster terms train).

    Examples:
        >>> default_warmup(200), default_warmup(8), default_warmup(1)
        (20, 1, 0)
    """
    return max(0, min(max(1, round(WARMUP_FRACTION * epochs)), epochs - 1))


def kmeans_warmup(warmup_epochs: int | None, epochs: int) -> int:
    """SimCLR epochs before the first clustering: ``method.warmup_epochs``, or
    :func:`default_warmup`.

    Examples:
        >>> kmeans_warmup(None, 200), kmeans_warmup(None, 8), kmeans_warmup(0, 8)
        (20, 1, 0)
    """
    return default_warmup(epochs) if warmup_epochs is None else warmup_epochs


def kmeans_assignment(k: int) -> str:
    """The module assignment (and objective term) name of the K-means ids with ``k`` clusters.

    Examples:
        >>> kmeans_assignment(2500)
        'kmeans-2500'
    """
    return f"kmeans-{k}"


def kmeans_terms(config: ExperimentConfig) -> list[ObjectiveTerm]:
    """The objective of ``kmeans-clinfonce``: SimCLR during the warm-up, then one Cl-InfoNCE
    term per K on the looked-up K-means ids, weighted ``1 / len(K)`` (their average).

    Examples:
        >>> from clinfonce.training.config import config_from_dict
        >>> cfg = config_from_dict({"method": {"name": "kmeans-clinfonce"},
        ...                         "kmeans": {"n_clusters": [10, 40]}, "train": {"epochs": 20}})
        >>> [(t.name, t.weight, t.start_epoch, t.end_epoch) for t in kmeans_terms(cfg)]
        [('simclr', 1.0, 0, 2), ('kmeans-10', 0.5, 2, None), ('kmeans-40', 0.5, 2, None)]
    """
    from clinfonce.training.objective import ObjectiveTerm

    tau = config.method.temperature
    ks = config.kmeans.n_clusters
    warmup = kmeans_warmup(config.method.warmup_epochs, config.train.epochs)
    terms = [
        ObjectiveTerm(
            name=kmeans_assignment(k),
            ids=kmeans_assignment(k),
            weight=1 / len(ks),
            temperature=tau,
            start_epoch=warmup,
        )
        for k in ks
    ]
    if warmup == 0:
        return terms
    return [ObjectiveTerm(name="simclr", ids="instance", temperature=tau, end_epoch=warmup), *terms]


@dataclass
class BaselineConfig:
    """The ``baseline`` section: heads of the baselines of docs/method.md §5.

    ``ce-clusters`` and ``attribute-prediction`` put one linear layer on the encoder (the
    linear-probe architecture, so their features are trained for exactly what a probe
    reads); ``cmc-attributes`` pairs the usual projection head (``model.head_hidden``,
    ``model.head_out``) with an MLP that embeds the attribute vector.

    Attributes:
        attribute_hidden: hidden width of the ``cmc-attributes`` attribute MLP
            (``Linear(inputs, hidden) -> ReLU -> Linear(hidden, model.head_out)``).
    """

    attribute_hidden: int = 256


def validate_method_options(config: ExperimentConfig) -> None:
    """Checks of the ``kmeans`` and ``baseline`` sections and of what these methods need.

    Raises:
        ValueError: naming the setting and how to fix it.
    """
    method, clusters = config.method, config.clusters
    if method.name == "kmeans-clinfonce":
        _validate_kmeans(clusters, config.kmeans)
    if method.name in BASELINE_METHODS and method.warmup_epochs is not None:
        raise ValueError(
            f"method.warmup_epochs applies to contrastive methods, not {method.name}; remove it"
        )
    if method.name == "ce-clusters" and "cluster" not in clusters.sources:
        raise ValueError(
            "method.name=ce-clusters predicts the stage-1 cluster ids: set clusters.assignment "
            "or clusters.builder (+ clusters.params) at the top of the clusters section"
        )
    if method.name in ATTRIBUTE_METHODS and not (
        clusters.builder == "attributes" or "columns" in clusters.params
    ):
        raise ValueError(
            f"method.name={method.name} reads attribute columns: set clusters.params.columns "
            "(e.g. [maker, material]) or clusters.builder=attributes (all non-reserved columns)"
        )
    hidden = config.baseline.attribute_hidden
    if hidden < 1:
        raise ValueError(f"baseline.attribute_hidden must be >= 1, got {hidden}")


def _validate_kmeans(clusters: ClustersConfig, kmeans: KMeansConfig) -> None:
    if clusters.defined:
        raise ValueError(
            "method.name=kmeans-clinfonce makes its own clusters (the kmeans section); remove "
            "clusters.assignment / clusters.builder, or use method.name=clinfonce for them"
        )
    ks = kmeans.n_clusters
    if not ks or min(ks) < 2 or len(set(ks)) != len(ks):
        raise ValueError(f"kmeans.n_clusters must be a non-empty list of distinct K >= 2, got {ks}")
    positive = {
        "kmeans.every_n_epochs": kmeans.every_n_epochs,
        "kmeans.iterations": kmeans.iterations,
        "kmeans.restarts": kmeans.restarts,
        "kmeans.batch_size": kmeans.batch_size,
    }
    for key, value in positive.items():
        if value < 1:
            raise ValueError(f"{key} must be >= 1, got {value}")
    if kmeans.features not in KMEANS_FEATURES:
        raise ValueError(
            f"kmeans.features must be one of {', '.join(KMEANS_FEATURES)}, got {kmeans.features!r}"
        )
    if kmeans.init not in INITS:
        raise ValueError(f"kmeans.init must be one of {', '.join(INITS)}, got {kmeans.init!r}")
