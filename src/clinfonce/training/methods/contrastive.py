"""The contrastive family: SimCLR, SupCon, the Cl-InfoNCE presets and ``auto``.

The methods differ only in the ids their objective terms read (docs/objectives.md);
everything else (encoder, heads, augmentation, optimiser) is :class:`ContrastiveModule`,
the encoder, input pipeline and optimiser shared with the baselines too
(:class:`clinfonce.training.base.EncoderModule`). ``kmeans-clinfonce``
(:mod:`clinfonce.training.methods.kmeans`) trains this module as well.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from clinfonce.clusters.tags import tag_matrix
from clinfonce.data.config import BATCH_SOURCES, UNNAMED_CLUSTERING
from clinfonce.data.prepare import PreparedData
from clinfonce.losses.memory import ProjectionMemory
from clinfonce.losses.positives import Positives
from clinfonce.losses.precision import at_least_float32
from clinfonce.losses.weighted import MemoryKeys
from clinfonce.models import ProjectionHead, feature_dim
from clinfonce.training.base import EncoderModule
from clinfonce.training.methods.spec import Method, data_shape
from clinfonce.training.objective import (
    FIXED_IDS,
    TAGS_PREFIX,
    Objective,
    ObjectiveTerm,
    clinfonce_term_name,
)

if TYPE_CHECKING:  # the config schema includes the methods' settings sections
    from clinfonce.training.config import ExperimentConfig, MethodConfig

#: Methods that warm up with SimCLR (``kmeans-clinfonce``, ``clinfonce-two-head``) do so for
#: this share of the epochs unless told otherwise.
WARMUP_FRACTION = 0.1


def default_warmup(epochs: int) -> int:
    """SimCLR epochs before the cluster terms start, by default: a tenth of the epochs, at
    least 1 (a random network's clusters are noise, and cluster terms from the first step
    are what the warm-up avoids) and at most ``epochs - 1`` (so the cluster terms train).

    Examples:
        >>> default_warmup(200), default_warmup(8), default_warmup(1)
        (20, 1, 0)
    """
    return max(0, min(max(1, round(WARMUP_FRACTION * epochs)), epochs - 1))


class ContrastiveModule(EncoderModule):
    """Encoder + projection head(s) trained with a weighted sum of Cl-InfoNCE terms.

    Args:
        config: the run's checked config (stored in the checkpoint as a plain dict, so
            :func:`clinfonce.training.build.module_from_checkpoint` rebuilds the same model).
        in_channels: image channels.
        image_size: model input side.
        mean: per-channel normalisation mean (of ``[0, 1]`` pixels).
        std: per-channel normalisation std.
        terms: the config's objective terms, resolved once
            (:func:`~clinfonce.training.methods.registry.objective_terms`: its ``objective``
            list or its method's preset). One projection head per head name of the terms.

    Batches are dicts with ``image`` (``uint8 [B, C, H, W]`` to augment here, or
    ``uint8 [B, V, C, S, S]`` views made by the loader), ``index`` and, as the terms need,
    ``label``. Clusterings (the unnamed one as ``cluster``, the named ones, K-means ids) are
    registered with :meth:`set_assignment` and looked up by ``index``.

    With ``method.memory.size`` > 0 every head keeps a :class:`ProjectionMemory` of the last
    projections (filled by the online model, or by a momentum copy of it when
    ``method.memory.momentum`` > 0); every term contrasts against it as well, the entries'
    cluster ids looked up by their sample index at each step, so that re-clustered K-means
    ids relabel old entries too. Memories and the momentum copy are saved in checkpoints.

    Examples:
        >>> from clinfonce.training.config import ExperimentConfig
        >>> cfg = ExperimentConfig()
        >>> module = ContrastiveModule(cfg, in_channels=3, image_size=32, mean=[0.5] * 3,
        ...                            std=[0.25] * 3, terms=[ObjectiveTerm("simclr", "instance")])
        ... # doctest: +SKIP
        >>> module.embed(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape  # doctest: +SKIP
        torch.Size([2, 128])
    """

    def __init__(
        self,
        config: ExperimentConfig,
        *,
        in_channels: int,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        terms: Sequence[ObjectiveTerm],
    ) -> None:
        super().__init__(config, in_channels=in_channels, image_size=image_size, mean=mean, std=std)
        self.store_hyperparameters(ignore=["terms"])
        model = self.cfg.model
        self.objective = Objective(
            terms,
            base_temperature=self.cfg.method.base_temperature,
        )
        dim = feature_dim(self.encoder)
        self.heads = nn.ModuleDict(
            {
                h: ProjectionHead(dim, model.head_hidden, model.head_out)
                for h in self.objective.heads
            }
        )
        memory = self.cfg.method.memory
        self.memories = nn.ModuleDict(
            {h: ProjectionMemory(memory.size, model.head_out) for h in self.heads}
            if memory.size
            else {}
        )
        self.momentum_model: nn.ModuleDict | None = None
        if memory.size and memory.momentum > 0:
            self.momentum_model = nn.ModuleDict(
                {"encoder": copy.deepcopy(self.encoder), "heads": copy.deepcopy(self.heads)}
            ).requires_grad_(False)

    # --- per-sample ids ------------------------------------------------------------------

    @property
    def assignments(self) -> dict[str, torch.Tensor]:
        """The registered clusterings: name -> per-sample ids (on the module's device)."""
        return {n: t for n, t in self.sample_tables.items() if not n.startswith(TAGS_PREFIX)}

    def set_assignment(self, name: str, cluster_ids: torch.Tensor) -> None:
        """Register per-sample cluster ids (indexed by the batch's ``index``) under ``name``,
        for terms whose ``ids`` is ``name`` (e.g. re-computed K-means ids each epoch)."""
        if name in BATCH_SOURCES:
            raise ValueError(f"assignment name {name!r} is reserved ({', '.join(BATCH_SOURCES)})")
        self.set_sample_table(name, torch.as_tensor(cluster_ids, dtype=torch.int64))

    def set_tags(self, source: str, presence: torch.Tensor) -> None:
        """Register a boolean ``[samples, tags]`` tag table for ``overlap`` terms reading
        ``source`` (``tags:<column>``), indexed by the batch's ``index`` (rebuilt from the
        table, not checkpointed)."""
        if not source.startswith(TAGS_PREFIX) or presence.dtype != torch.bool:
            raise ValueError(f"tag table {source!r}: expected tags:<column> and a bool table")
        self.set_sample_table(source, presence)

    def _table(self, source: str) -> torch.Tensor:
        """The per-sample ids (or tags) of a registered source."""
        if source not in self.sample_tables:
            raise ValueError(
                f"no assignment {source!r} registered (set_assignment); have: "
                f"{', '.join(self.sample_tables) or 'none'}"
            )
        return self.sample_tables[source]

    def batch_ids(self, source: str, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The ``[B]`` cluster ids of a batch for an ids source (``None`` = instances)."""
        if source == "instance":
            return None
        if source == "label":  # every training label is known: checked when the module is built
            if source not in batch:
                raise ValueError(f"the objective needs batch[{source!r}] but the data has none")
            return batch[source]
        return self._table(source)[batch["index"]]

    # --- training ------------------------------------------------------------------------

    def compute_loss(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Objective of a batch whose ``image`` holds normalised views ``[B, V, C, S, S]``, in
        the current epoch: only the heads and ids of the terms active in it are computed."""
        views = batch["image"]
        b, v = views.shape[:2]
        features = self(views.flatten(0, 1))
        epoch = self.current_epoch
        terms = self.objective.active_terms(epoch)
        projections = {
            h: self.heads[h](features).view(b, v, -1) for h in dict.fromkeys(t.head for t in terms)
        }
        ids = {t.ids: self.batch_ids(t.ids, batch) for t in terms}
        rows = self.rows_per_rank()
        if not self.memories:
            result: tuple[torch.Tensor, dict[str, torch.Tensor]] = self.objective(
                projections, ids, epoch, rows
            )
            return result
        index = batch["index"]
        memory = {t.name: self.memory_keys(t) for t in terms}
        result = self.objective(projections, ids, epoch, rows, memory, index)
        self.remember(views, projections, batch)
        return result

    # --- memory --------------------------------------------------------------------------

    def memory_keys(self, term: ObjectiveTerm) -> MemoryKeys:
        """The entries of the term's head's memory with their ids (or tags) for the term,
        as loss keys."""
        keys, index, labels = self._memory(term.head).entries()
        source = term.ids
        if source == "instance":
            ids = index
        elif source == "label":
            ids = labels
        else:
            ids = self._table(source)[index]
        if term.overlap is not None:
            return MemoryKeys(keys, Positives(tags=ids, overlap=term.overlap), index)
        return MemoryKeys(keys, Positives(cluster_ids=ids), index)

    @torch.no_grad()
    def remember(
        self,
        views: torch.Tensor,
        projections: Mapping[str, torch.Tensor],
        batch: dict[str, torch.Tensor],
    ) -> None:
        """Push the first view's projection of every sample into its head's memory: the
        online one, or the momentum copy's (updated first, as in MoCo)."""
        first = views[:, 0]
        if self.momentum_model is None:
            keys = {h: p[:, 0] for h, p in projections.items()}
        else:
            momentum = self.cfg.method.memory.momentum
            online = [*self.encoder.parameters(), *self.heads.parameters()]
            for copied, param in zip(self.momentum_model.parameters(), online, strict=True):
                copied.lerp_(param.detach(), 1 - momentum)
            if self.cfg.model.channels_last:
                first = first.contiguous(memory_format=torch.channels_last)
            encoder, heads = self.momentum_model["encoder"], self.momentum_model["heads"]
            assert isinstance(heads, nn.ModuleDict)
            features = encoder(first)
            keys = {h: heads[h](features) for h in projections}
        for head, key in keys.items():
            self._memory(head).push(
                F.normalize(at_least_float32(key), dim=-1),
                batch["index"],
                batch.get("label"),
                self.rows_per_rank(),
            )

    def _memory(self, head: str) -> ProjectionMemory:
        memory = self.memories[head]
        assert isinstance(memory, ProjectionMemory)
        return memory

    def memory_summary(self) -> str | None:
        """One line on the memory's size and what it costs, or None when it is off."""
        if not self.memories:
            return None
        memory = self.cfg.method.memory
        held = sum(self._memory(h).nbytes() for h in self.memories)
        copy_note = ""
        if self.momentum_model is not None:
            held += sum(p.numel() * p.element_size() for p in self.momentum_model.parameters())
            copy_note = f", filled by a momentum copy (m = {memory.momentum})"
        return (
            f"memory: the last {memory.size} projections per head ({len(self.memories)} "
            f"head(s)) as extra keys{copy_note}; {held / 2**20:.1f} MiB held"
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["assignments"] = {name: ids.cpu() for name, ids in self.assignments.items()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Checkpoints from before the unnamed clustering was an assignment lack it: the data
        # registered it already, and the checkpoint's ids (K-means ones) win where both exist.
        for name, ids in checkpoint.get("assignments", {}).items():
            self.set_sample_table(name, ids)


def method_terms(
    method: MethodConfig, sources: Sequence[str] = (UNNAMED_CLUSTERING,), epochs: int = 100
) -> list[ObjectiveTerm]:
    """The terms of a contrastive preset (``simclr``, ``supcon``, the Cl-InfoNCE ones, ``auto``).

    Args:
        method: the method section.
        sources: ids sources of the configured clusterings (``ClustersConfig.sources``); the
            cluster methods get one Cl-InfoNCE term per source.
        epochs: training epochs (sets the two-head preset's default warm-up).

    Examples:
        >>> from clinfonce.training.config import MethodConfig
        >>> [(t.name, t.head, t.start_epoch) for t in method_terms(
        ...     MethodConfig(name="clinfonce-two-head"), ["cluster"], epochs=20)]
        [('simclr', 'instance', 0), ('clinfonce', 'cluster', 2)]
    """
    name, tau = method.name, method.temperature
    if name == "auto":
        name = "clinfonce-plus-simclr" if sources else "simclr"
    if name in FIXED_IDS:
        if method.warmup_epochs:
            raise ValueError(f"method.warmup_epochs needs a method with cluster terms, not {name}")
        return [ObjectiveTerm(name, FIXED_IDS[name], 1.0, tau)]
    if name not in CLUSTER_PRESETS:
        raise ValueError(
            f"unknown contrastive preset {name!r}; valid: auto, {', '.join(FIXED_IDS)}, "
            f"{', '.join(CLUSTER_PRESETS)}"
        )
    if not sources:
        raise ValueError(f"method.name={name} needs clusters: configure the clusters section")
    two_head = name == "clinfonce-two-head"
    warmup = method.warmup_epochs
    if warmup is None:
        warmup = default_warmup(epochs) if two_head else 0
    if warmup < 0:
        raise ValueError(f"method.warmup_epochs must be >= 0, got {warmup}")
    head = "cluster" if two_head else "main"
    clusters = [ObjectiveTerm(clinfonce_term_name(s), s, 1.0, tau, head, warmup) for s in sources]
    if name == "clinfonce":  # SimCLR only while warming up
        if warmup == 0:
            return clusters
        return [ObjectiveTerm("simclr", "instance", 1.0, tau, end_epoch=warmup), *clusters]
    simclr = ObjectiveTerm("simclr", "instance", 1.0, tau, "instance" if two_head else "main")
    return [simclr, *clusters]


@dataclass(frozen=True)
class ContrastiveMethod(Method):
    """A preset of weighted Cl-InfoNCE terms trained by :class:`ContrastiveModule`."""

    module: type[EncoderModule] = ContrastiveModule

    def check(self, config: ExperimentConfig) -> None:
        if "clusters" in self.needs and not config.objective and not config.clusters.defined:
            raise ValueError(
                f"method.name={self.name} needs clusters: set clusters.assignment (a stage-1 "
                "file), clusters.builder (+ clusters.params), or named clusterings"
            )
        if "labels" in self.needs and config.data.label_column is None:
            raise ValueError(f"method.name={self.name} needs labels: set data.label_column")

    def terms(self, config: ExperimentConfig) -> list[ObjectiveTerm]:
        return method_terms(config.method, config.clusters.sources, config.train.epochs)

    def build(
        self, config: ExperimentConfig, data: PreparedData, terms: Sequence[ObjectiveTerm]
    ) -> EncoderModule:
        labels = data.train_labels()
        if any(t.ids == "label" for t in terms) and labels is not None and (labels < 0).any():
            raise ValueError(
                f"{config.method.name} contrasts by label but {int((labels < 0).sum())} of "
                f"{len(labels)} training rows have none ({config.data.label_column} missing): "
                "give every training row a label or choose another method"
            )
        module = ContrastiveModule(config, terms=terms, **data_shape(data, config))
        if data.clusters is not None:
            module.set_assignment(
                UNNAMED_CLUSTERING, torch.tensor(data.clusters, dtype=torch.int64)
            )
        for name, ids in data.named_clusters.items():
            module.set_assignment(name, torch.from_numpy(ids))
        table = data.source.table.iloc[data.train_rows].reset_index(drop=True)
        for source in dict.fromkeys(t.ids for t in terms if t.overlap is not None):
            presence = tag_matrix(table, source.removeprefix(TAGS_PREFIX)).dense()
            module.set_tags(source, torch.from_numpy(presence))
        return module

    def rebuild(
        self, config: ExperimentConfig, terms: Sequence[ObjectiveTerm], hparams: dict[str, Any]
    ) -> EncoderModule:
        return ContrastiveModule(config, terms=terms, **hparams)


#: The presets with Cl-InfoNCE terms on the ``clusters`` section.
CLUSTER_PRESETS: tuple[str, ...] = ("clinfonce", "clinfonce-plus-simclr", "clinfonce-two-head")

METHODS: tuple[ContrastiveMethod, ...] = (
    ContrastiveMethod("simclr", "instances (a sample's own views) as positives"),
    ContrastiveMethod(
        "supcon", "downstream labels (data.label_column) as positives", needs=("labels",)
    ),
    ContrastiveMethod(
        "clinfonce",
        "Cl-InfoNCE on the stage-1 clusters (the clusters section)",
        needs=("clusters",),
    ),
    ContrastiveMethod(
        "clinfonce-plus-simclr",
        "Cl-InfoNCE + InfoNCE, one head: safe for coarse clusters",
        needs=("clusters",),
    ),
    ContrastiveMethod(
        "clinfonce-two-head",
        "the official two-head recipe, InfoNCE warm-up",
        needs=("clusters",),
    ),
    ContrastiveMethod(
        "auto",
        "(default) clinfonce-plus-simclr with clusters, else simclr",
        takes_objective=True,
    ),
)
