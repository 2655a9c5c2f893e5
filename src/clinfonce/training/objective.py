"""The training objective as a weighted list of contrastive terms.

A term names where its positives come from (``ids``): ``instance`` (SimCLR), ``label``
(SupCon, carried by the batch), or a clustering registered on the module and looked up by
sample ``index``: ``cluster`` (the unnamed stage-1 clustering), the named clusterings of the
``clusters`` section, per-epoch K-means ids; or ``tags:<column>``, a tag table whose shared
tags weight the positives by the term's ``overlap`` rule. Each term reads one projection head
(terms naming the same head share it) and trains from ``start_epoch`` until ``end_epoch``,
which is how a warm-up with InfoNCE alone is written.

A config's ``objective`` list gives the terms explicitly (:func:`term_from_config`);
otherwise ``method.name`` picks its preset (:mod:`clinfonce.training.methods`).
:func:`clinfonce.training.methods.registry.objective_terms` resolves either and checks the
result with :func:`check_terms`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from clinfonce.data.config import UNNAMED_CLUSTERING
from clinfonce.losses import ClInfoNCELoss
from clinfonce.losses.positives import Overlap, Positives
from clinfonce.losses.weighted import MemoryKeys, weighted_cl_infonce_loss

if TYPE_CHECKING:  # the config schema includes the methods' settings, which build on this
    from clinfonce.training.config import ExperimentConfig, TermConfig

#: The losses of an ``objective`` term.
LOSSES: tuple[str, ...] = ("clinfonce", "simclr", "supcon", "overlap")
#: Prefix of the ids source of an ``overlap`` term: ``tags:<column>``.
TAGS_PREFIX = "tags:"
#: The ids source of each loss that needs no clustering.
FIXED_IDS: dict[str, str] = {"simclr": "instance", "supcon": "label"}


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
        overlap: for ``tags:<column>`` ids, how shared tags weight the positives.

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
    overlap: Overlap | None = None

    def active(self, epoch: int) -> bool:
        """Whether the term trains in ``epoch`` (0-based)."""
        return self.start_epoch <= epoch and (self.end_epoch is None or epoch < self.end_epoch)


def clinfonce_term_name(source: str) -> str:
    """Log name of a Cl-InfoNCE term on the clustering ``source``.

    Examples:
        >>> clinfonce_term_name("cluster"), clinfonce_term_name("level1")
        ('clinfonce', 'clinfonce-level1')
    """
    return "clinfonce" if source == UNNAMED_CLUSTERING else f"clinfonce-{source}"


def term_from_config(
    term: TermConfig,
    config: ExperimentConfig,
    sources: Sequence[str],
    where: str = "objective term",
) -> ObjectiveTerm:
    """An :class:`ObjectiveTerm` from an ``objective`` entry; ``where`` prefixes errors.

    Args:
        term: the entry.
        config: the run's config (labels, default temperature).
        sources: the clusterings a ``clinfonce`` term may name (the method's).
        where: prefix of error messages.

    Examples:
        >>> from clinfonce.training.config import ExperimentConfig, TermConfig
        >>> term_from_config(TermConfig(loss="simclr", weight=0.5), ExperimentConfig(), []).ids
        'instance'
    """
    if term.loss not in LOSSES:
        raise ValueError(f"{where}.loss must be one of {', '.join(LOSSES)}, got {term.loss!r}")
    overlap = None
    if term.tags is not None and term.loss != "overlap":
        raise ValueError(f"{where}.tags: only loss overlap reads a tag column; set loss: overlap")
    if term.loss == "clinfonce":
        ids = _resolve_clusters(term.clusters, sources, where)
        name = clinfonce_term_name(ids)
    elif term.loss == "overlap":
        if not term.tags:
            raise ValueError(f"{where}: loss overlap needs tags: the table's tag column")
        try:
            overlap = Overlap(term.overlap, term.min_shared)  # type: ignore[arg-type]
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        ids, name = TAGS_PREFIX + term.tags, f"overlap-{term.tags}"
    else:
        if term.clusters is not None:
            raise ValueError(
                f"{where}.clusters={term.clusters!r}: only loss clinfonce reads a clustering "
                f"({term.loss} does not); remove it or set loss: clinfonce"
            )
        ids, name = FIXED_IDS[term.loss], term.loss
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
        overlap,
    )


def _resolve_clusters(name: str | None, sources: Sequence[str], where: str) -> str:
    if name is not None:
        if name not in sources:
            raise ValueError(
                f"{where}.clusters: no clustering named {name!r}; configured: "
                f"{', '.join(sources) or 'none (set the clusters section)'}"
            )
        return name
    if UNNAMED_CLUSTERING in sources or len(sources) == 1:
        return UNNAMED_CLUSTERING if UNNAMED_CLUSTERING in sources else sources[0]
    if not sources:
        raise ValueError(f"{where}: loss clinfonce needs clusters: set the clusters section")
    raise ValueError(
        f"{where}.clusters: {len(sources)} clusterings are configured ({', '.join(sources)}); "
        "name the one this term uses"
    )


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
        self.base_temperature = base_temperature
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
        rows_per_rank: Sequence[int] | None = None,
        memory: Mapping[str, MemoryKeys] | None = None,
        sample_index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and each active term's (unweighted) value.

        Args:
            projections: head name -> ``[N, V, D]`` projections (the active terms' heads).
            ids: ids source -> ``[N]`` cluster ids (``None`` for ``instance``).
            epoch: the training epoch; terms outside their epochs are skipped, not computed
                (``None``: every term).
            rows_per_rank: every process's batch rows under DDP, when known (see
                :func:`clinfonce.losses.cl_infonce_loss`).
            memory: term name -> the memory's keys with that term's ids, as extra keys
                (docs/method.md §11); terms not named train on the batch alone.
            sample_index: ``[N]`` dataset index of the batch's samples (needed with memory).
        """
        parts: dict[str, torch.Tensor] = {}
        total: torch.Tensor | None = None
        for term, loss_fn in zip(self.terms, self.losses, strict=True):
            if epoch is not None and not term.active(epoch):
                continue
            keys = None if memory is None else memory.get(term.name)
            if keys is not None or term.overlap is not None:
                term_ids = ids[term.ids]
                if term.overlap is not None:
                    assert term_ids is not None, f"{term.ids}: no tag table"
                    positives = Positives(tags=term_ids, overlap=term.overlap)
                else:
                    positives = Positives(
                        cluster_ids=sample_index if term_ids is None else term_ids
                    )
                value, _ = weighted_cl_infonce_loss(
                    projections[term.head],
                    positives,
                    sample_index=sample_index,
                    memory=keys,
                    temperature=term.temperature,
                    base_temperature=self.base_temperature,
                    gather_distributed=True,
                    rows_per_rank=rows_per_rank,
                )
            else:
                value = loss_fn(
                    projections[term.head], cluster_ids=ids[term.ids], rows_per_rank=rows_per_rank
                )
            parts[term.name] = value.detach()
            # A weight of 1 is not multiplied in: a compiled step returning ``1.0 * value``
            # beside ``value.detach()`` lost the loss's gradient (torch 2.14's inductor).
            weighted = value if term.weight == 1 else term.weight * value
            total = weighted if total is None else total + weighted
        if total is None:
            raise ValueError(f"no objective term trains in epoch {epoch}")
        return total, parts
