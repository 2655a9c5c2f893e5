"""The attribute baselines: the auxiliary information of Cl-InfoNCE, used raw (docs/method.md §5).

Both share the encoder, augmentation, optimiser and schedule of the contrastive methods
(:class:`~clinfonce.training.base.EncoderModule`); only the head and the loss differ, and
evaluation reads the encoder as for every other method. (``ce-clusters``, the third baseline,
is :mod:`clinfonce.training.methods.cluster_classifier`.)

- ``attribute-prediction`` (:class:`AttributePredictor`): a linear layer predicts the raw
  attributes (the ``clusters.params.columns``): binary cross-entropy on a 0/1 attribute, a
  softmax over the values of any other; the loss is the mean over attributes.
- ``cmc-attributes`` (:class:`AttributeContrast`): contrastive multiview coding between an
  image view (encoder + projection head) and the sample's attribute vector (one-hot values,
  embedded by an MLP), InfoNCE in both directions.

Every view of a batch is a training example: the predictors see each view with its sample's
target, and CMC contrasts each view with the attribute embeddings of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from clinfonce.clusters._codes import encode_column
from clinfonce.clusters.attributes import candidate_columns
from clinfonce.data.config import ClustersConfig
from clinfonce.data.prepare import PreparedData
from clinfonce.losses.precision import at_least_float32
from clinfonce.models import ProjectionHead, feature_dim
from clinfonce.training.base import EncoderModule
from clinfonce.training.methods.spec import BaselineMethod, data_shape
from clinfonce.training.objective import ObjectiveTerm

if TYPE_CHECKING:  # the config schema includes this module's settings section
    from clinfonce.training.config import ExperimentConfig


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


def check_baseline_section(baseline: BaselineConfig) -> None:
    """Errors for ``baseline`` settings that cannot build a head (checked for every method,
    so a typo never waits for the run that reads it)."""
    if baseline.attribute_hidden < 1:
        raise ValueError(f"baseline.attribute_hidden must be >= 1, got {baseline.attribute_hidden}")


@dataclass(frozen=True)
class AttributeCodes:
    """Attribute columns as per-sample targets.

    Attributes:
        names: the columns.
        outputs: per attribute, ``1`` for a binary attribute (one logit, its 0/1 value is the
            target) or the number of its values (``>= 2``; a softmax over them).
        codes: int64 ``[N, A]``: the 0/1 value of a binary attribute, the value index of any
            other (missing values are a value of their own under ``missing="own"``).
        levels: per attribute, the value of each index.
    """

    names: list[str]
    outputs: list[int]
    codes: np.ndarray
    levels: list[list[Any]]


def _is_binary(levels: list[Any]) -> bool:
    return all(isinstance(v, int | float) and v in (0, 1) for v in levels)


def encode_attributes(
    table: pd.DataFrame, columns: Sequence[str], *, missing: str = "own"
) -> AttributeCodes:
    """Targets of the attribute baselines from the attribute ``columns`` of ``table``.

    A column whose values are all 0/1 (numbers or booleans, no missing value) is binary; any
    other is categorical, its values sorted (the stage-1 ``attributes`` builder's coding).

    Examples:
        >>> t = pd.DataFrame({"wet": [0, 1, 1], "colour": ["red", "blue", "red"]})
        >>> codes = encode_attributes(t, ["wet", "colour"])
        >>> codes.outputs, codes.codes.tolist()
        ([1, 2], [[0, 1], [1, 0], [1, 1]])
    """
    if not columns:
        raise ValueError("the attribute baselines need at least one attribute column")
    outputs, codes, levels = [], [], []
    for name in columns:
        column = encode_column(table[name], missing=missing)
        if _is_binary(column.levels):
            outputs.append(1)
            codes.append(np.asarray(column.levels, dtype=np.int64)[column.codes])
        else:
            outputs.append(max(2, column.n_levels))
            codes.append(column.codes)
        levels.append(column.levels)
    return AttributeCodes(list(columns), outputs, np.stack(codes, axis=1), levels)


def attribute_columns(table: pd.DataFrame, clusters: ClustersConfig) -> list[str]:
    """The attribute columns of a config: ``clusters.params.columns``, else (builder
    ``attributes``) every column that builder would consider."""
    params = clusters.params
    return candidate_columns(table, params.get("columns"), params.get("exclude", ()))


class AttributeModule(EncoderModule):
    """Shared part of the attribute baselines: per-sample attribute codes looked up by the
    batch's ``index`` (set with :meth:`set_attributes`; not saved in checkpoints, training
    rebuilds them from the data).

    Args:
        config: the run's checked config.
        in_channels: image channels.
        image_size: model input side.
        mean: per-channel normalisation mean.
        std: per-channel normalisation std.
        outputs: :attr:`AttributeCodes.outputs` (fixes the head sizes).
    """

    def __init__(
        self,
        config: ExperimentConfig,
        *,
        in_channels: int,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        outputs: Sequence[int],
    ) -> None:
        super().__init__(config, in_channels=in_channels, image_size=image_size, mean=mean, std=std)
        self.store_hyperparameters()
        if not outputs or min(outputs) < 1:
            raise ValueError(f"outputs must be a non-empty list of sizes >= 1, got {outputs}")
        self.outputs = [int(o) for o in outputs]
        self.build_heads()

    def build_heads(self) -> None:
        """Add the method's heads; called once :attr:`outputs` is known."""
        raise NotImplementedError

    def set_attributes(self, codes: torch.Tensor | np.ndarray) -> None:
        """Register the int ``[N, A]`` codes of every training sample (row = ``index``)."""
        table = torch.as_tensor(codes, dtype=torch.int64).cpu()
        if table.dim() != 2 or table.shape[1] != len(self.outputs):
            raise ValueError(
                f"attribute codes must be [samples, {len(self.outputs)}], got {tuple(table.shape)}"
            )
        top = torch.tensor(self.outputs).clamp(min=2)
        if bool((table < 0).any()) or bool((table >= top).any()):
            raise ValueError("attribute codes out of range for the model's outputs")
        self.set_sample_table("attributes", table)

    def batch_attributes(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The ``[B, A]`` codes of a batch's samples."""
        if "attributes" not in self.sample_tables:
            raise ValueError("no attribute codes registered (set_attributes)")
        return self.lookup("attributes", batch)


class AttributePredictor(AttributeModule):
    """``attribute-prediction``: encoder + linear layer predicting every attribute.

    The loss is the mean over attributes of binary cross-entropy (binary attributes) or
    softmax cross-entropy (the others), each averaged over the batch's views.

    Examples:
        >>> from clinfonce.training.config import config_from_dict
        >>> cfg = config_from_dict({"method": {"name": "attribute-prediction"},
        ...                         "clusters": {"params": {"columns": ["a", "b"]}}})
        >>> module = AttributePredictor(cfg, in_channels=1, image_size=8,
        ...                             mean=[0.5], std=[0.25], outputs=[1, 4])
        >>> module.head.out_features
        5
    """

    def build_heads(self) -> None:
        self.head = nn.Linear(feature_dim(self.encoder), sum(self.outputs))

    def compute_loss(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        views = batch["image"]
        logits = at_least_float32(self.head(self(views.flatten(0, 1))))
        targets = self.batch_attributes(batch).repeat_interleave(views.shape[1], dim=0)
        losses = []
        for a, part in enumerate(logits.split(self.outputs, dim=1)):
            if part.shape[1] == 1:
                target = targets[:, a].to(part.dtype)
                losses.append(F.binary_cross_entropy_with_logits(part[:, 0], target))
            else:
                losses.append(F.cross_entropy(part, targets[:, a]))
        return torch.stack(losses).mean(), {}


class AttributeContrast(AttributeModule):
    """``cmc-attributes``: InfoNCE between image views and attribute-vector embeddings.

    The attribute vector concatenates, per attribute, its 0/1 value (binary) or the one-hot
    of its value; ``Linear -> ReLU -> Linear`` (hidden ``baseline.attribute_hidden``, output
    ``model.head_out``) embeds it. With L2-normalised image embeddings ``u`` (projection
    head) and attribute embeddings ``w``, for each view the loss is
    ``(CE(u w^T / tau, arange) + CE(w u^T / tau, arange)) / 2``, averaged over views
    (``tau`` = ``method.temperature``). Samples with equal attributes are in-batch
    negatives of each other, as in CMC.

    Examples:
        >>> from clinfonce.training.config import config_from_dict
        >>> cfg = config_from_dict({"method": {"name": "cmc-attributes"},
        ...                         "clusters": {"params": {"columns": ["a", "b"]}}})
        >>> module = AttributeContrast(cfg, in_channels=1, image_size=8,
        ...                            mean=[0.5], std=[0.25], outputs=[1, 4])
        >>> module.attribute_vectors(torch.tensor([[1, 2], [0, 0]])).tolist()
        [[1.0, 0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0]]
    """

    def build_heads(self) -> None:
        model = self.cfg.model
        self.head = ProjectionHead(feature_dim(self.encoder), model.head_hidden, model.head_out)
        self.attribute_net = ProjectionHead(
            sum(self.outputs), self.cfg.baseline.attribute_hidden, model.head_out
        )

    def attribute_vectors(self, codes: torch.Tensor) -> torch.Tensor:
        """``[B, A]`` codes -> float ``[B, sum(outputs)]`` inputs of the attribute MLP."""
        parts = [
            codes[:, a : a + 1] if size == 1 else F.one_hot(codes[:, a], size)
            for a, size in enumerate(self.outputs)
        ]
        return torch.cat(parts, dim=1).to(self.float_dtype)

    def compute_loss(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        views = batch["image"]
        b, v = views.shape[:2]
        images = F.normalize(at_least_float32(self.head(self(views.flatten(0, 1)))), dim=1)
        images = images.view(b, v, -1)
        vectors = self.attribute_vectors(self.batch_attributes(batch))
        attributes = F.normalize(at_least_float32(self.attribute_net(vectors)), dim=1)
        targets = torch.arange(b, device=views.device)
        tau = self.cfg.method.temperature
        losses = []
        for view in images.unbind(1):
            logits = view @ attributes.T / tau
            losses.append(
                (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
            )
        return torch.stack(losses).mean(), {}


@dataclass(frozen=True)
class AttributeMethod(BaselineMethod):
    """A baseline trained on the attribute columns (``clusters.params.columns``)."""

    needs: tuple[str, ...] = ("attributes",)

    def check(self, config: ExperimentConfig) -> None:
        super().check(config)
        clusters = config.clusters
        if not (clusters.builder == "attributes" or "columns" in clusters.params):
            raise ValueError(
                f"method.name={self.name} reads attribute columns: set clusters.params.columns "
                "(e.g. [maker, material]) or clusters.builder=attributes (all non-reserved "
                "columns)"
            )

    def build(
        self, config: ExperimentConfig, data: PreparedData, terms: Sequence[ObjectiveTerm]
    ) -> EncoderModule:
        """The module, its heads sized by the training rows' attribute codes."""
        table = data.source.table.iloc[data.train_rows].reset_index(drop=True)
        columns = attribute_columns(table, config.clusters)
        codes = encode_attributes(
            table, columns, missing=str(config.clusters.params.get("missing", "own"))
        )
        assert issubclass(self.module, AttributeModule)
        module = self.module(config, outputs=codes.outputs, **data_shape(data, config))
        module.set_attributes(codes.codes)
        return module


METHODS: tuple[AttributeMethod, ...] = (
    AttributeMethod(
        "attribute-prediction", "baseline: predict the attribute columns", AttributePredictor
    ),
    AttributeMethod(
        "cmc-attributes",
        "baseline: contrast image views with attribute vectors (CMC)",
        AttributeContrast,
        settings="baseline",
    ),
)
