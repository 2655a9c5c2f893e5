"""What a training method is: one :class:`Method` per ``method.name``.

A method says what it needs, checks its own settings, gives its objective terms (the
contrastive ones), builds its LightningModule and adds its callbacks. The families of
:mod:`clinfonce.training.methods` subclass :class:`Method`;
:mod:`clinfonce.training.methods.registry` lists them, and CLI help, config validation and
the experiment runner read that list, so adding a method is one module and its registration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning.pytorch.callbacks import Callback

from clinfonce.data.prepare import PreparedData
from clinfonce.training.base import EncoderModule
from clinfonce.training.objective import ObjectiveTerm
from clinfonce.training.weights import weights_normalisation

if TYPE_CHECKING:  # the config schema includes the methods' settings sections
    from clinfonce.training.config import ExperimentConfig

#: What a method can need from the data (:attr:`Method.needs`).
NEEDS: tuple[str, ...] = ("clusters", "labels", "attributes")


@dataclass(frozen=True)
class Method:
    """One training method; subclasses override what differs.

    Attributes:
        name: its ``method.name``.
        help: one line for ``clinfonce train --help``.
        module: the LightningModule class it trains (and its checkpoints rebuild).
        needs: what it reads besides the images (a subset of :data:`NEEDS`).
        temperature: its default loss temperature (``None``: ``method.temperature``'s).
        settings: the config section of its own settings, if any.
        takes_objective: an ``objective`` list may replace its preset terms.
    """

    name: str
    help: str
    module: type[EncoderModule]
    needs: tuple[str, ...] = ()
    temperature: float | None = None
    settings: str | None = None
    takes_objective: bool = False

    def check(self, config: ExperimentConfig) -> None:
        """Errors for a config this method cannot train (what it needs, its settings).

        Raises:
            ValueError: naming the setting and how to fix it.
        """

    def sources(self, config: ExperimentConfig) -> list[str]:
        """The clusterings its objective terms can name: the ``clusters`` section's."""
        return list(config.clusters.sources)

    def terms(self, config: ExperimentConfig) -> list[ObjectiveTerm]:
        """Its preset objective terms (none for a method that is not contrastive)."""
        return []

    def check_objective(self, config: ExperimentConfig, terms: Sequence[ObjectiveTerm]) -> None:
        """Errors for an ``objective`` list (resolved to ``terms``) it cannot train."""

    def build(
        self, config: ExperimentConfig, data: PreparedData, terms: Sequence[ObjectiveTerm]
    ) -> EncoderModule:
        """The module that trains ``config`` on ``data`` (per-sample tables registered)."""
        raise NotImplementedError

    def rebuild(
        self, config: ExperimentConfig, terms: Sequence[ObjectiveTerm], hparams: dict[str, Any]
    ) -> EncoderModule:
        """The module of a checkpoint: :attr:`module` from the stored config (checked) and the
        checkpoint's other ``hparams`` (its weights are loaded afterwards)."""
        return self.module(config, **hparams)

    def callbacks(
        self,
        config: ExperimentConfig,
        data: PreparedData,
        terms: Sequence[ObjectiveTerm],
        run_dir: Path | None,
    ) -> list[Callback]:
        """The Lightning callbacks it trains with (logging into ``run_dir`` when given)."""
        return []


@dataclass(frozen=True)
class BaselineMethod(Method):
    """A baseline with the auxiliary information of Cl-InfoNCE: no objective terms, so no
    warm-up either."""

    def check(self, config: ExperimentConfig) -> None:
        if config.method.warmup_epochs is not None:
            raise ValueError(
                f"method.warmup_epochs applies to contrastive methods, not {self.name}; remove it"
            )


def data_shape(data: PreparedData, config: ExperimentConfig) -> dict[str, Any]:
    """The module arguments that come from the data: channels, input size, normalisation.

    The normalisation follows ``model.weights`` (ImageNet statistics for ImageNet weights,
    a run's own for its checkpoint) unless ``data.mean``/``data.std`` are set.
    """
    mean, std = data.mean, data.std
    if config.data.mean is None and config.data.std is None:
        mean, std = weights_normalisation(config.model, data.channels) or (mean, std)
    return {"in_channels": data.channels, "image_size": data.image_size, "mean": mean, "std": std}
