"""Every training method by name: what ``method.name`` may be.

CLI help, config validation, checkpoint loading and the experiment runner read
:data:`REGISTRY`; a new method is a :class:`~clinfonce.training.methods.spec.Method` in a
family module, listed here. :func:`objective_terms` resolves what a config trains: its
``objective`` list, or its method's preset terms.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clinfonce.training.methods import attributes, contrastive
from clinfonce.training.methods.cluster_classifier import CE_CLUSTERS
from clinfonce.training.methods.kmeans import KMEANS
from clinfonce.training.methods.spec import Method
from clinfonce.training.objective import ObjectiveTerm, check_terms, term_from_config

if TYPE_CHECKING:  # the config schema includes the methods' settings sections
    from clinfonce.training.config import ExperimentConfig

#: ``method.name`` -> its method, in the order help lists them.
REGISTRY: dict[str, Method] = {
    m.name: m for m in (*contrastive.METHODS, KMEANS, CE_CLUSTERS, *attributes.METHODS)
}


def method_names() -> list[str]:
    """The valid ``method.name`` values.

    Examples:
        >>> method_names()[:3]
        ['simclr', 'supcon', 'clinfonce']
    """
    return list(REGISTRY)


def find_method(name: str) -> Method:
    """The method called ``name``.

    Raises:
        ValueError: no such method; the message lists the valid ones.
    """
    if name not in REGISTRY:
        raise ValueError(f"method.name must be one of {', '.join(REGISTRY)}, got {name!r}")
    return REGISTRY[name]


def methods_help(indent: int = 2, width: int = 24) -> str:
    """One line per method (name and help), for ``clinfonce train --help``.

    Examples:
        >>> print(methods_help().splitlines()[0])
          simclr                  instances (a sample's own views) as positives
    """
    return "\n".join(f"{' ' * indent}{name:<{width}}{m.help}" for name, m in REGISTRY.items())


def objective_terms(config: ExperimentConfig) -> list[ObjectiveTerm]:
    """The terms a config trains: its ``objective`` list, else its method's preset; checked
    (weights, temperatures, heads, epochs) so that a config that loads can train. Empty for
    a method that is not contrastive.

    Examples:
        >>> from clinfonce.training.config import ExperimentConfig
        >>> [t.name for t in objective_terms(ExperimentConfig())]  # no clusters: SimCLR
        ['simclr']
    """
    method = find_method(config.method.name)
    if not config.objective:
        terms = method.terms(config)
        if terms:
            check_terms(terms, config.train.epochs)
        return terms
    if not method.takes_objective:
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
    sources = method.sources(config)
    terms = [
        term_from_config(t, config, sources, f"objective[{i}]")
        for i, t in enumerate(config.objective)
    ]
    method.check_objective(config, terms)
    check_terms(terms, config.train.epochs)
    return terms
