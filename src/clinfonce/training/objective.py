"""The training objective as a weighted list of contrastive terms.

A term names where its positives come from (``ids``): ``instance`` (SimCLR), ``label``
(SupCon), ``cluster`` (the unnamed stage-1 clustering, carried by the batch), or the name of an
assignment registered on the module and looked up by sample ``index`` (the named clusterings
of the ``clusters`` section, per-epoch K-means ids). Each term reads one projection head
(terms naming the same head share it) and trains from ``start_epoch`` until ``end_epoch``,
which is how a warm-up with InfoNCE alone is written.

A config's ``objective`` list gives the terms explicitly; otherwise ``method.name`` picks a
preset (:func:`method_terms`). :func:`objective_terms` resolves either and checks the result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from clinfonce.losses import ClInfoNCELoss
from clinfonce.training.config import (
    CLUSTER_METHODS,
    METHODS,
    ExperimentConfig,
    MethodConfig,
    TermConfig,
)
from clinfonce.training.method_options import (
    BASELINE_METHODS,
    default_warmup,
    kmeans_assignment,
    kmeans_terms,
)

#: ids sources every batch can provide; other names are looked-up assignments.
BATCH_SOURCES: tuple[str, ...] = ("instance", "label", "cluster")
#: The losses of an ``objective`` term, and the ids of those that need no clustering.
LOSSES: tuple[str, ...] = ("clinfonce", "simclr", "supcon")
_FIXED_IDS = {"simclr": "instance", "supcon": "label"}


@dataclass(frozen=True)
class ObjectiveTerm:
    """One weighted Cl-InfoNCE term.

    Attributes:
        name: log name (``train/<name>``).
        ids: source of the cluster ids (see the module docstring).
        weight: the term's weight in the sum.
        temperature: its loss temperature.
        head: the projection head it reads.
        start_epoch: first epoch it trains.
        end_epoch: epoch it stops at (``None``: never).

    Examples:
        >>> term = ObjectiveTerm("clinfonce", ids="cluster", temperature=0.1, start_epoch=2)
        >>> term.weight, term.active(1), term.active(2)
        (1.0, False, True)
    """

    name: str
    ids: str
    weight: float = 1.0
    temperature: float = 0.1
    head: str = "main"
    start_epoch: int = 0
    end_epoch: int | None = None

    def active(self, epoch: int) -> bool:
        """Whether the term trains in ``epoch`` (0-based)."""
        return self.start_epoch <= epoch and (self.end_epoch is None or epoch < self.end_epoch)


def _clinfonce_name(source: str) -> str:
    return "clinfonce" if source == "cluster" else f"clinfonce-{source}"


def method_terms(
    method: MethodConfig, sources: Sequence[str] = ("cluster",), epochs: int = 100
) -> list[ObjectiveTerm]:
    """The terms of a method preset (see :class:`~clinfonce.training.config.MethodConfig`).

    Args:
        method: the method section.
        sources: ids sources of the configured clusterings (``ClustersConfig.sources``); the
            cluster methods get one Cl-InfoNCE term per source.
        epochs: training epochs (sets the two-head preset's default warm-up).

    Examples:
        >>> [(t.name, t.head, t.start_epoch) for t in method_terms(
        ...     MethodConfig(name="clinfonce-two-head"), ["cluster"], epochs=20)]
        [('simclr', 'instance', 0), ('clinfonce', 'cluster', 2)]
    """
    name, tau = method.name, method.temperature
    if name == "auto":
        name = "clinfonce-plus-simclr" if sources else "simclr"
    if name in _FIXED_IDS:
        if method.warmup_epochs:
            raise ValueError(f"method.warmup_epochs needs a method with cluster terms, not {name}")
        return [ObjectiveTerm(name, _FIXED_IDS[name], 1.0, tau)]
    if name not in CLUSTER_METHODS:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    if not sources:
        raise ValueError(f"method.name={name} needs clusters: configure the clusters section")
    two_head = name == "clinfonce-two-head"
    warmup = method.warmup_epochs
    if warmup is None:
        warmup = default_warmup(epochs) if two_head else 0
    if warmup < 0:
        raise ValueError(f"method.warmup_epochs must be >= 0, got {warmup}")
    head = "cluster" if two_head else "main"
    clusters = [ObjectiveTerm(_clinfonce_name(s), s, 1.0, tau, head, warmup) for s in sources]
    if name == "clinfonce":  # SimCLR only while warming up
        if warmup == 0:
            return clusters
        return [ObjectiveTerm("simclr", "instance", 1.0, tau, end_epoch=warmup), *clusters]
    simclr = ObjectiveTerm("simclr", "instance", 1.0, tau, "instance" if two_head else "main")
    return [simclr, *clusters]


def term_from_config(
    term: TermConfig, config: ExperimentConfig, where: str = "objective term"
) -> ObjectiveTerm:
    """An :class:`ObjectiveTerm` from an ``objective`` entry; ``where`` prefixes errors.

    Examples:
        >>> cfg = ExperimentConfig()
        >>> term_from_config(TermConfig(loss="simclr", weight=0.5), cfg).ids
        'instance'
    """
    if term.loss not in LOSSES:
        raise ValueError(f"{where}.loss must be one of {', '.join(LOSSES)}, got {term.loss!r}")
    if term.loss == "clinfonce":
        ids = _resolve_clusters(term.clusters, cluster_sources(config), where)
        name = _clinfonce_name(ids)
    else:
        if term.clusters is not None:
            raise ValueError(
                f"{where}.clusters={term.clusters!r}: only loss clinfonce reads a clustering "
                f"({term.loss} does not); remove it or set loss: clinfonce"
            )
        ids, name = _FIXED_IDS[term.loss], term.loss
    if term.loss == "supcon" and config.data.label_column is None:
        raise ValueError(f"{where}: loss supcon needs labels: set data.label_column")
    temperature = config.method.temperature if term.temperature is None else term.temperature
    return ObjectiveTerm(
        term.name or name,
        ids,
        term.weight,
        temperature,
        term.head,
        term.start_epoch,
        term.end_epoch,
    )


def cluster_sources(config: ExperimentConfig) -> list[str]:
    """The clusterings an objective term can name: those of the ``clusters`` section, or
    for ``kmeans-clinfonce`` its K-means clusterings (``kmeans-<K>``).

    Examples:
        >>> from clinfonce.training.config import config_from_dict
        >>> cluster_sources(config_from_dict({"method": {"name": "kmeans-clinfonce"},
        ...                                   "kmeans": {"n_clusters": [10, 40]}}))
        ['kmeans-10', 'kmeans-40']
    """
    if config.method.name == "kmeans-clinfonce":
        return [kmeans_assignment(k) for k in config.kmeans.n_clusters]
    return list(config.clusters.sources)


def _resolve_clusters(name: str | None, sources: Sequence[str], where: str) -> str:
    if name is not None:
        if name not in sources:
            raise ValueError(
                f"{where}.clusters: no clustering named {name!r}; configured: "
                f"{', '.join(sources) or 'none (set the clusters section)'}"
            )
        return name
    if "cluster" in sources or len(sources) == 1:
        return "cluster" if "cluster" in sources else sources[0]
    if not sources:
        raise ValueError(f"{where}: loss clinfonce needs clusters: set the clusters section")
    raise ValueError(
        f"{where}.clusters: {len(sources)} clusterings are configured ({', '.join(sources)}); "
        "name the one this term uses"
    )


def objective_terms(config: ExperimentConfig) -> list[ObjectiveTerm]:
    """The terms a config trains: its ``objective`` list, else its method's preset; checked
    (weights, temperatures, heads, epochs) so that a config that loads can train.

    Examples:
        >>> cfg = ExperimentConfig()  # no clusters: method auto is SimCLR
        >>> [t.name for t in objective_terms(cfg)]
        ['simclr']
    """
    if config.objective:
        if config.method.name not in ("auto", "kmeans-clinfonce"):
            raise ValueError(
                f"method.name={config.method.name} and an objective list are both set; the "
                "objective replaces the method's terms: leave method.name at auto (or "
                "kmeans-clinfonce, whose K-means clusterings the terms then name)"
            )
        if config.method.warmup_epochs is not None:
            raise ValueError(
                "method.warmup_epochs applies to method presets; with an objective list, set "
                "the start_epoch of the terms that wait"
            )
        terms = [
            term_from_config(t, config, f"objective[{i}]") for i, t in enumerate(config.objective)
        ]
        if config.method.name == "kmeans-clinfonce":
            _check_kmeans_terms(terms, cluster_sources(config))
    elif config.method.name in BASELINE_METHODS:
        return []  # not contrastive: trained by the modules of clinfonce.training.baselines
    elif config.method.name == "kmeans-clinfonce":
        terms = kmeans_terms(config)
    else:
        terms = method_terms(config.method, config.clusters.sources, config.train.epochs)
    check_terms(terms, config.train.epochs)
    return terms


def _check_kmeans_terms(terms: Sequence[ObjectiveTerm], clusterings: Sequence[str]) -> None:
    """Every K-means clustering is computed each time, so every one must train a term."""
    unused = [name for name in clusterings if name not in {t.ids for t in terms}]
    if unused:
        raise ValueError(
            f"objective: K-means clustering(s) {', '.join(unused)} (kmeans.n_clusters) train "
            "no term; add a clinfonce term naming each (clusters: kmeans-<K>) or drop that K"
        )


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


def check_terms(terms: Sequence[ObjectiveTerm], epochs: int) -> None:
    """Errors for terms that cannot train as meant over ``epochs`` epochs.

    Examples:
        >>> check_terms([ObjectiveTerm("a", "instance", start_epoch=3)], epochs=3)
        ... # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: objective term 'a' starts at epoch 3 but training has 3 epochs ...
    """
    names = [t.name for t in terms]
    if len(set(names)) != len(names):
        raise ValueError(f"objective term names must be unique, got {names}; set their name")
    for t in terms:
        where = f"objective term {t.name!r}"
        if not (math.isfinite(t.weight) and t.weight >= 0):
            raise ValueError(f"{where}: weight must be finite and >= 0, got {t.weight}")
        if not t.temperature > 0:
            raise ValueError(f"{where}: temperature must be > 0, got {t.temperature}")
        if not t.head or "." in t.head:
            raise ValueError(f"{where}: head name {t.head!r} must be non-empty, without '.'")
        if t.start_epoch < 0 or (t.end_epoch is not None and t.end_epoch <= t.start_epoch):
            raise ValueError(
                f"{where}: needs 0 <= start_epoch < end_epoch, got {t.start_epoch} and "
                f"{t.end_epoch}"
            )
        if t.start_epoch >= epochs:
            raise ValueError(
                f"{where} starts at epoch {t.start_epoch} but training has {epochs} epochs "
                "(train.epochs): it would never train; lower its start_epoch (or "
                "method.warmup_epochs)"
            )
    for epoch in range(epochs):
        if not any(t.active(epoch) and t.weight > 0 for t in terms):
            raise ValueError(
                f"no objective term with weight > 0 trains in epoch {epoch} (of {epochs}); "
                "check the terms' weight, start_epoch and end_epoch"
            )


class Objective(nn.Module):
    """Weighted sum of :class:`ObjectiveTerm` losses.

    Examples:
        >>> objective = Objective([ObjectiveTerm("simclr", "instance")])
        >>> total, parts = objective({"main": torch.randn(4, 2, 8)}, {"instance": None})
        >>> sorted(parts)
        ['simclr']
    """

    def __init__(
        self, terms: Sequence[ObjectiveTerm], base_temperature: float | None = None
    ) -> None:
        super().__init__()
        if not terms:
            raise ValueError("an objective needs at least one term")
        names = [t.name for t in terms]
        if len(set(names)) != len(names):
            raise ValueError(f"objective term names must be unique, got {names}")
        self.terms = list(terms)
        # Under DDP each process contrasts its anchors against the whole global batch (a no-op
        # in one process), so the methods train the same thing on any number of devices.
        self.losses = nn.ModuleList(
            ClInfoNCELoss(
                temperature=t.temperature,
                base_temperature=base_temperature,
                gather_distributed=True,
            )
            for t in self.terms
        )

    @property
    def heads(self) -> list[str]:
        """Head names the terms read, in first-use order."""
        return list(dict.fromkeys(t.head for t in self.terms))

    def active_terms(self, epoch: int | None = None) -> list[ObjectiveTerm]:
        """The terms that train in ``epoch`` (``None``: all of them)."""
        return [t for t in self.terms if epoch is None or t.active(epoch)]

    def forward(
        self,
        projections: Mapping[str, torch.Tensor],
        ids: Mapping[str, torch.Tensor | None],
        epoch: int | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and each active term's (unweighted) value.

        Args:
            projections: head name -> ``[N, V, D]`` projections (the active terms' heads).
            ids: ids source -> ``[N]`` cluster ids (``None`` for ``instance``).
            epoch: the training epoch; terms outside their epochs are skipped, not computed
                (``None``: every term).
        """
        parts: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=next(iter(projections.values())).device)
        for term, loss_fn in zip(self.terms, self.losses, strict=True):
            if epoch is not None and not term.active(epoch):
                continue
            value = loss_fn(projections[term.head], cluster_ids=ids[term.ids])
            parts[term.name] = value.detach()
            total = total + term.weight * value
        return total, parts
