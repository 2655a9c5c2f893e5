"""``kmeans-clinfonce``: Cl-InfoNCE without auxiliary information (docs/method.md §2).

After a SimCLR warm-up, the clusters are K-means clusters of the model's own embedding,
recomputed during training by the callback of
:mod:`~clinfonce.training.methods.kmeans_reclustering` (the ``kmeans`` section:
:class:`KMeansConfig`), one Cl-InfoNCE term per K on the ids looked up by sample index.
The module is the contrastive family's
(:class:`~clinfonce.training.methods.contrastive.ContrastiveModule`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from lightning.pytorch.callbacks import Callback

from clinfonce.clusters.kmeans import INITS
from clinfonce.data.config import ClustersConfig
from clinfonce.data.prepare import PreparedData
from clinfonce.training.methods.contrastive import ContrastiveMethod, default_warmup
from clinfonce.training.methods.kmeans_reclustering import (
    KMEANS_FEATURES,
    KMeansReclustering,
    kmeans_assignment,
)
from clinfonce.training.objective import ObjectiveTerm

if TYPE_CHECKING:  # the config schema includes this module's settings section
    from clinfonce.training.config import ExperimentConfig

#: Per-clustering record of ``kmeans-clinfonce`` in the run directory.
KMEANS_LOG = "kmeans.jsonl"


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
        ema_decay: cluster the features of a moving average of the weights instead of the
            weights themselves (``null``: the weights), updated after every step with this
            decay (ramped up over the first steps, as TensorFlow's moving averages): steadier
            clusters from one clustering to the next, at the cost of lagging the model.
    """

    n_clusters: list[int] = field(default_factory=lambda: [2500])
    every_n_epochs: int = 1
    features: str = "head"
    iterations: int = 20
    restarts: int = 5
    init: str = "k-means++"
    seed: int | None = None
    batch_size: int = 512
    ema_decay: float | None = None


def kmeans_warmup(warmup_epochs: int | None, epochs: int) -> int:
    """SimCLR epochs before the first clustering: ``method.warmup_epochs``, or
    :func:`default_warmup`.

    Examples:
        >>> kmeans_warmup(None, 200), kmeans_warmup(None, 8), kmeans_warmup(0, 8)
        (20, 1, 0)
    """
    return default_warmup(epochs) if warmup_epochs is None else warmup_epochs


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


def _check_settings(clusters: ClustersConfig, kmeans: KMeansConfig) -> None:
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
    if kmeans.ema_decay is not None and not 0 < kmeans.ema_decay < 1:
        raise ValueError(f"kmeans.ema_decay must be in (0, 1) or null, got {kmeans.ema_decay}")


def kmeans_start_epoch(terms: Sequence[ObjectiveTerm], clusterings: Sequence[str]) -> int:
    """The first epoch a term trains on one of the K-means ``clusterings``: when the
    re-clustering starts.

    Examples:
        >>> kmeans_start_epoch([ObjectiveTerm("simclr", "instance", end_epoch=2),
        ...                     ObjectiveTerm("k", "kmeans-10", start_epoch=2)], ["kmeans-10"])
        2
    """
    starts = [t.start_epoch for t in terms if t.ids in clusterings]
    if not starts:
        raise ValueError("no objective term trains on K-means clusters (clusters: kmeans-<K>)")
    return min(starts)


@dataclass(frozen=True)
class KMeansMethod(ContrastiveMethod):
    """``kmeans-clinfonce``: its clusterings are ``kmeans-<K>``, re-computed by a callback."""

    def check(self, config: ExperimentConfig) -> None:
        _check_settings(config.clusters, config.kmeans)

    def sources(self, config: ExperimentConfig) -> list[str]:
        """Its K-means clusterings (``kmeans-<K>``), what objective terms can name.

        Examples:
            >>> from clinfonce.training.config import config_from_dict
            >>> KMEANS.sources(config_from_dict({"method": {"name": "kmeans-clinfonce"},
            ...                                  "kmeans": {"n_clusters": [10, 40]}}))
            ['kmeans-10', 'kmeans-40']
        """
        return [kmeans_assignment(k) for k in config.kmeans.n_clusters]

    def terms(self, config: ExperimentConfig) -> list[ObjectiveTerm]:
        return kmeans_terms(config)

    def check_objective(self, config: ExperimentConfig, terms: Sequence[ObjectiveTerm]) -> None:
        """Every K-means clustering is computed each time, so every one must train a term."""
        unused = [name for name in self.sources(config) if name not in {t.ids for t in terms}]
        if unused:
            raise ValueError(
                f"objective: K-means clustering(s) {', '.join(unused)} (kmeans.n_clusters) "
                "train no term; add a clinfonce term naming each (clusters: kmeans-<K>) or "
                "drop that K"
            )

    def callbacks(
        self,
        config: ExperimentConfig,
        data: PreparedData,
        terms: Sequence[ObjectiveTerm],
        run_dir: Path | None,
    ) -> list[Callback]:
        """The re-clustering, logging to ``run_dir/kmeans.jsonl``."""
        km = config.kmeans
        labels = data.train_labels()
        return [
            KMeansReclustering(
                data.eval_dataset(data.train_rows),
                km.n_clusters,
                start_epoch=kmeans_start_epoch(terms, self.sources(config)),
                every_n_epochs=km.every_n_epochs,
                space=km.features,
                iterations=km.iterations,
                restarts=km.restarts,
                init=km.init,
                seed=config.train.seed if km.seed is None else km.seed,
                batch_size=km.batch_size,
                ema_decay=km.ema_decay,
                labels=None if labels is None else np.asarray(labels),
                log_file=None if run_dir is None else run_dir / KMEANS_LOG,
            )
        ]


#: Paper: temperature 0.2 for K-means clusters.
KMEANS = KMeansMethod(
    "kmeans-clinfonce",
    "no auxiliary data: K-means of its own embedding (kmeans section)",
    temperature=0.2,
    settings="kmeans",
    takes_objective=True,
)
