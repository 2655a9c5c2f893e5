"""The K-means re-clustering of ``kmeans-clinfonce`` (:mod:`clinfonce.training.methods.kmeans`).

After the SimCLR warm-up, at the start of every n-th epoch :class:`KMeansReclustering`
embeds the whole training set (eval transform, no gradient, L2-normalised projection-head
output by default), runs spherical K-means for each configured K (on the model's device: torch
K-means on a GPU, faiss on the CPU), and registers the ids
on the module, where the objective's ``kmeans-<K>`` terms look them up by sample ``index``
(:func:`clinfonce.training.methods.kmeans.kmeans_terms`).
The ids are part of the checkpoint, and each clustering's seed depends only on the epoch, so
a resumed run trains on the same clusters as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch.utils.data import Dataset

from clinfonce.clusters.kmeans import kmeans
from clinfonce.clusters.metrics import cluster_metrics
from clinfonce.data.splits import stream_seed
from clinfonce.training.distributed import extract_features_sharded
from clinfonce.training.methods.contrastive import ContrastiveModule

#: Cluster-size quantiles logged per clustering (keys of :func:`cluster_metrics`).
SIZE_KEYS: tuple[str, ...] = ("size_min", "size_q25", "size_median", "size_q75", "size_max")
#: Feature spaces K-means can cluster.
KMEANS_FEATURES: tuple[str, ...] = ("head", "encoder")


def kmeans_assignment(k: int) -> str:
    """The module assignment (and objective term) name of the K-means ids with ``k`` clusters.

    Examples:
        >>> kmeans_assignment(2500)
        'kmeans-2500'
    """
    return f"kmeans-{k}"


def clustering_features(
    module: ContrastiveModule,
    dataset: Dataset[dict[str, torch.Tensor]],
    *,
    space: str = "head",
    head: str = "main",
    batch_size: int = 512,
) -> torch.Tensor:
    """L2-normalised features of every sample of ``dataset``, in order, for K-means, on the
    module's device.

    Under DDP every process embeds only its share and receives all the features, so every
    process must call this.

    Args:
        module: the model (put in eval mode for the pass, restored afterwards).
        dataset: un-augmented samples (``image`` entries).
        space: ``head`` (projection head ``head`` on the encoder output, docs/method.md §2) or
            ``encoder``.
        head: the projection head read when ``space="head"``.
        batch_size: images per forward pass.

    Returns:
        float32 ``[N, D]`` unit-norm rows.
    """
    if space not in KMEANS_FEATURES:
        raise ValueError(f"space must be one of {', '.join(KMEANS_FEATURES)}, got {space!r}")

    def embed(images: torch.Tensor) -> torch.Tensor:
        features = module.embed(images)
        if space == "head":
            features = module.heads[head](features)
        return F.normalize(features.float(), dim=1)

    return extract_features_sharded(embed, dataset, batch_size=batch_size, model=module)


class WeightAverage:
    """An exponential moving average of a module's parameters (its buffers are not averaged:
    batch-norm statistics are running averages already).

    The decay ramps up as ``min(decay, (1 + t) / (10 + t))`` after ``t`` updates, so the
    average follows the early, fast-moving weights instead of holding on to their random
    start.

    Examples:
        >>> layer = torch.nn.Linear(1, 1, bias=False)
        >>> average = WeightAverage(0.5)
        >>> _ = layer.weight.data.fill_(1.0); average.update(layer)  # first: a copy
        >>> _ = layer.weight.data.fill_(3.0); average.update(layer)  # decay min(0.5, 2/11)
        >>> round(float(average.state_dict()["average"][0]), 4)
        2.6364
    """

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.average: list[torch.Tensor] | None = None

    def update(self, module: torch.nn.Module) -> None:
        """Move the average towards the module's current parameters (after a step)."""
        weights = [p.detach() for p in module.parameters()]
        if self.average is None:
            self.average = [w.clone() for w in weights]
        else:
            decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
            for average, weight in zip(self.average, weights, strict=True):
                average.lerp_(weight, 1 - decay)
        self.updates += 1

    @contextlib.contextmanager
    def swapped_in(self, module: torch.nn.Module) -> Iterator[None]:
        """The module with the averaged parameters inside the block, its own ones after."""
        if self.average is None:  # no step yet: the weights are their own average
            yield
            return
        parameters = list(module.parameters())
        own = [p.detach().clone() for p in parameters]
        with torch.no_grad():
            for parameter, value in zip(parameters, self.average, strict=True):
                parameter.copy_(value)
        try:
            yield
        finally:
            with torch.no_grad():
                for parameter, value in zip(parameters, own, strict=True):
                    parameter.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"average": self.average, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.average, self.updates = state["average"], int(state["updates"])


class KMeansReclustering(Callback):
    """Re-cluster the training set at the start of epochs ``start_epoch + j * every_n_epochs``.

    For each K in ``n_clusters`` the module gets the assignment ``kmeans-<K>`` (one id per
    training sample, indexed like the training dataset). Each clustering is logged
    (``kmeans/k<K>/...``: clusters used, size quantiles, inertia, NMI with the previous
    clustering, NMI and I(Z;T) in bits against the labels when given), kept in
    :attr:`history`, and appended to ``log_file`` as a JSON line. Under several processes,
    each embeds its share of the samples, the features are gathered, and rank 0 clusters and
    broadcasts the ids.

    Args:
        dataset: the training samples, un-augmented, in training-index order.
        n_clusters: the K of each clustering.
        start_epoch: first clustering (the SimCLR warm-up ends here).
        every_n_epochs: interval between clusterings.
        space: ``head`` or ``encoder`` features (see :func:`clustering_features`).
        head: the projection head clustered when ``space="head"``.
        iterations: Lloyd iterations.
        restarts: runs per clustering, the lowest inertia kept.
        init: ``k-means++`` or ``random`` seeding.
        seed: base seed; the clustering of epoch e uses ``seed * 1000003 + e * restarts``.
        batch_size: embedding batch size.
        ema_decay: cluster with a moving average of the weights (see :class:`WeightAverage`),
            or ``None``: with the weights themselves.
        labels: int label code per training sample (``-1`` unknown), for the metrics.
        log_file: JSON-lines record of every clustering (``None``: none).

    Examples:
        >>> callback = KMeansReclustering(dataset, [100, 400], start_epoch=2)  # doctest: +SKIP
        >>> lightning.Trainer(callbacks=[callback]).fit(module, loader)  # doctest: +SKIP
    """

    def __init__(
        self,
        dataset: Dataset[dict[str, torch.Tensor]],
        n_clusters: Sequence[int],
        *,
        start_epoch: int,
        every_n_epochs: int = 1,
        space: str = "head",
        head: str = "main",
        iterations: int = 20,
        restarts: int = 1,
        init: str = "k-means++",
        seed: int = 0,
        batch_size: int = 512,
        ema_decay: float | None = None,
        labels: np.ndarray | None = None,
        log_file: str | Path | None = None,
    ) -> None:
        size = len(dataset)  # type: ignore[arg-type]
        too_many = [k for k in n_clusters if k > size]
        if too_many:
            raise ValueError(
                f"kmeans.n_clusters: K={too_many[0]} exceeds the {size} training samples; "
                "lower kmeans.n_clusters"
            )
        if labels is not None and len(labels) != size:
            raise ValueError(f"{len(labels)} labels for {size} training samples")
        if start_epoch < 0 or every_n_epochs < 1:
            raise ValueError(
                f"need start_epoch >= 0 and every_n_epochs >= 1, got {start_epoch} and "
                f"{every_n_epochs}"
            )
        self.dataset, self.n_clusters = dataset, list(n_clusters)
        self.start_epoch, self.every_n_epochs = start_epoch, every_n_epochs
        self.space, self.head, self.batch_size = space, head, batch_size
        self.iterations, self.restarts, self.init, self.seed = iterations, restarts, init, seed
        self.labels = labels
        self.average = None if ema_decay is None else WeightAverage(ema_decay)
        self.log_file = None if log_file is None else Path(log_file)
        self.history: list[dict[str, Any]] = []

    def due(self, epoch: int) -> bool:
        """Whether a clustering starts ``epoch`` (0-based).

        Examples:
            >>> [e for e in range(8) if KMeansReclustering(range(9), [2], start_epoch=1,
            ...                                            every_n_epochs=3).due(e)]
            [1, 4, 7]
        """
        return epoch >= self.start_epoch and (epoch - self.start_epoch) % self.every_n_epochs == 0

    def cluster(
        self, features: torch.Tensor | np.ndarray, epoch: int
    ) -> dict[int, tuple[np.ndarray, float]]:
        """K -> (ids of every sample, inertia) of the clusterings for ``epoch``, computed
        where the features are (see :func:`clinfonce.clusters.kmeans.kmeans`)."""
        seed = stream_seed(self.seed, epoch * self.restarts)
        out = {}
        for k in self.n_clusters:
            result = kmeans(
                features,
                k,
                spherical=True,
                iterations=self.iterations,
                restarts=self.restarts,
                seed=seed,
                init=self.init,
            )
            out[k] = (result.assignments, result.inertia)
        return out

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        assert isinstance(pl_module, ContrastiveModule)
        names = [kmeans_assignment(k) for k in self.n_clusters]
        resumed_without_ids = epoch > self.start_epoch and not all(
            n in pl_module.assignments for n in names
        )
        if not (self.due(epoch) or resumed_without_ids):
            return
        start = time.perf_counter()
        clusters: dict[int, tuple[np.ndarray, float]] | None = None
        weights = (
            contextlib.nullcontext() if self.average is None else self.average.swapped_in(pl_module)
        )
        with weights:
            features = clustering_features(  # every process embeds its share
                pl_module,
                self.dataset,
                space=self.space,
                head=self.head,
                batch_size=self.batch_size,
            )
        if trainer.is_global_zero:  # cluster once; every process trains on these ids
            clusters = self.cluster(features, epoch)
        clusters = trainer.strategy.broadcast(clusters, src=0)
        assert clusters is not None
        seconds = time.perf_counter() - start
        for k, (ids, inertia) in clusters.items():
            name = kmeans_assignment(k)
            previous = pl_module.assignments.get(name) if epoch > self.start_epoch else None
            record = self._record(epoch, k, ids, inertia, previous, seconds)
            if trainer.is_global_zero:
                self._write(record)
            pl_module.set_assignment(name, torch.from_numpy(ids))
            for key, value in record.items():
                if key not in ("epoch", "k"):
                    pl_module.log(f"kmeans/k{k}/{key}", float(value), on_step=False, on_epoch=True)
            rank_zero_info(
                f"epoch {epoch}: K-means K={k} on {len(ids)} samples: "
                f"{int(record['num_clusters'])} clusters used in {seconds:.1f}s"
                + (f", NMI vs labels {record['nmi_labels']:.3f}" if "nmi_labels" in record else "")
            )

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any
    ) -> None:
        if self.average is not None:
            self.average.update(pl_module)

    def state_dict(self) -> dict[str, Any]:
        """The weight average, so that a resumed run clusters the same features."""
        return {} if self.average is None else self.average.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.average is not None and state_dict:
            self.average.load_state_dict(state_dict)

    def _record(
        self,
        epoch: int,
        k: int,
        ids: np.ndarray,
        inertia: float,
        previous: torch.Tensor | None,
        seconds: float,
    ) -> dict[str, float]:
        """The logged quality of one clustering (also kept in :attr:`history`)."""
        quality = cluster_metrics(ids, ami=False)
        record: dict[str, float] = {
            "epoch": epoch,
            "k": k,
            "num_clusters": quality["num_clusters"],
            **{key: quality[key] for key in SIZE_KEYS},
            "inertia": inertia,
            "seconds": seconds,
        }
        if previous is not None:
            record["nmi_previous"] = cluster_metrics(ids, previous.cpu().numpy(), ami=False)["nmi"]
        if self.labels is not None:
            known = self.labels >= 0
            if known.any():
                versus = cluster_metrics(ids[known], self.labels[known], ami=False)
                record["nmi_labels"] = versus["nmi"]
                record["i_zt_labels"] = versus["i_zt"]
        self.history.append(record)
        return record

    def _write(self, record: dict[str, float]) -> None:
        if self.log_file is not None:
            with self.log_file.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
