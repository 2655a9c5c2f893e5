"""The training objective as a weighted list of contrastive terms.

A term names where its positives come from (``ids``): ``instance`` (SimCLR), ``label``
(SupCon), ``cluster`` (the stage-1 ids carried by the batch), or the name of an assignment
registered on the module and looked up by sample ``index`` (e.g. per-epoch K-means ids). The
methods of :data:`clinfonce.training.config.METHODS` are one-term objectives; several terms
(combined objectives, several granularities, per-term heads) need no other machinery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from clinfonce.losses import ClInfoNCELoss
from clinfonce.training.config import MethodConfig

#: ids sources every batch can provide; other names are looked-up assignments.
BATCH_SOURCES: tuple[str, ...] = ("instance", "label", "cluster")


@dataclass(frozen=True)
class ObjectiveTerm:
    """One weighted Cl-InfoNCE term.

    Attributes:
        name: log name (``train/<name>``).
        ids: source of the cluster ids (see the module docstring).
        weight: the term's weight in the sum.
        temperature: its loss temperature.
        head: the projection head it reads.

    Examples:
        >>> ObjectiveTerm("clinfonce", ids="cluster", temperature=0.1).weight
        1.0
    """

    name: str
    ids: str
    weight: float = 1.0
    temperature: float = 0.1
    head: str = "main"


def method_terms(method: MethodConfig) -> list[ObjectiveTerm]:
    """The one-term objective of a method name.

    Examples:
        >>> method_terms(MethodConfig(name="supcon"))[0].ids
        'label'
    """
    ids = {"simclr": "instance", "supcon": "label", "clinfonce": "cluster"}
    if method.name not in ids:
        raise ValueError(f"unknown method {method.name!r}; valid methods: {', '.join(ids)}")
    return [ObjectiveTerm(method.name, ids[method.name], 1.0, method.temperature)]


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
        self.losses = nn.ModuleList(
            ClInfoNCELoss(temperature=t.temperature, base_temperature=base_temperature)
            for t in self.terms
        )

    @property
    def heads(self) -> list[str]:
        """Head names the terms read, in first-use order."""
        return list(dict.fromkeys(t.head for t in self.terms))

    @property
    def id_sources(self) -> list[str]:
        """The ids sources the terms need, in first-use order."""
        return list(dict.fromkeys(t.ids for t in self.terms))

    def forward(
        self,
        projections: Mapping[str, torch.Tensor],
        ids: Mapping[str, torch.Tensor | None],
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and each term's (unweighted) value.

        Args:
            projections: head name -> ``[N, V, D]`` projections.
            ids: ids source -> ``[N]`` cluster ids (``None`` for ``instance``).
        """
        parts: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=next(iter(projections.values())).device)
        for term, loss_fn in zip(self.terms, self.losses, strict=True):
            value = loss_fn(projections[term.head], cluster_ids=ids[term.ids])
            parts[term.name] = value.detach()
            total = total + term.weight * value
        return total, parts
