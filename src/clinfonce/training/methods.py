"""Which LightningModule and which callbacks train each ``method.name``.

The contrastive methods (SimCLR, SupCon, the Cl-InfoNCE presets, ``kmeans-clinfonce``) are
:class:`~clinfonce.training.module.ContrastiveModule` with different objective terms; the
baselines of docs/method.md §5 have modules of their own
(:mod:`clinfonce.training.baselines`). :func:`build_module` makes the module a run trains,
:func:`module_from_checkpoint` the one a checkpoint holds, whatever its method.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from clinfonce.clusters._codes import dense_rank
from clinfonce.data.prepare import PreparedData
from clinfonce.training.base import EncoderModule
from clinfonce.training.baselines import (
    AttributeContrast,
    AttributeModule,
    AttributePredictor,
    ClusterClassifier,
    attribute_columns,
    encode_attributes,
)
from clinfonce.training.config import ExperimentConfig
from clinfonce.training.kmeans import KMeansReclustering
from clinfonce.training.module import ContrastiveModule
from clinfonce.training.objective import cluster_sources, kmeans_start_epoch, objective_terms

#: Baselines trained on attribute columns, by method name.
ATTRIBUTE_MODULES: dict[str, type[AttributeModule]] = {
    "attribute-prediction": AttributePredictor,
    "cmc-attributes": AttributeContrast,
}
#: Methods with a module other than :class:`ContrastiveModule`.
BASELINE_MODULES: dict[str, type[EncoderModule]] = {
    "ce-clusters": ClusterClassifier,
    **ATTRIBUTE_MODULES,
}
#: Per-clustering record of ``kmeans-clinfonce`` in the run directory.
KMEANS_LOG = "kmeans.jsonl"


def module_class(method: str) -> type[EncoderModule]:
    """The LightningModule class of a method name.

    Examples:
        >>> module_class("ce-clusters").__name__, module_class("kmeans-clinfonce").__name__
        ('ClusterClassifier', 'ContrastiveModule')
    """
    return BASELINE_MODULES.get(method, ContrastiveModule)


def build_module(config: ExperimentConfig, data: PreparedData) -> EncoderModule:
    """The module that trains ``config`` on ``data``, with its per-sample tables registered
    (named clusterings, attribute codes). ``ce-clusters`` renumbers ``data.clusters`` to
    ``0..K-1`` (in id order) so the classifier has exactly one output per cluster."""
    common: dict[str, Any] = {
        "in_channels": data.channels,
        "image_size": data.image_size,
        "mean": data.mean,
        "std": data.std,
    }
    method = config.method.name
    if method == "ce-clusters":
        if data.clusters is None:
            raise ValueError("ce-clusters needs cluster ids: configure the clusters section")
        data.clusters, count = dense_rank(data.clusters)
        return ClusterClassifier(config.to_dict(), num_clusters=count, **common)
    if method in ATTRIBUTE_MODULES:
        table = data.source.table.iloc[data.train_rows].reset_index(drop=True)
        columns = attribute_columns(table, config.clusters)
        codes = encode_attributes(
            table, columns, missing=str(config.clusters.params.get("missing", "own"))
        )
        module = ATTRIBUTE_MODULES[method](config.to_dict(), outputs=codes.outputs, **common)
        module.set_attributes(codes.codes)
        return module
    contrastive = ContrastiveModule(config.to_dict(), **common)
    for name, ids in data.named_clusters.items():  # looked up by sample index
        contrastive.set_assignment(name, torch.from_numpy(ids))
    return contrastive


def untrained_encoder(config: ExperimentConfig, source: Any = None) -> EncoderModule:
    """The encoder as initialised with ``config``'s seed, in eval mode: the floor every
    method must clear. Method and clusters do not matter, only the ``model`` section (and
    the data's channels and statistics) shapes it.

    Args:
        config: the run's config.
        source: already loaded data (skips loading ``config.data``).
    """
    import lightning as L

    from clinfonce.data.config import ClustersConfig
    from clinfonce.data.prepare import prepare_data
    from clinfonce.training.config import config_from_dict

    values = {
        k: v for k, v in config.to_dict().items() if k not in ("method", "clusters", "objective")
    }
    simclr = config_from_dict({**values, "method": {"name": "simclr"}})
    data = prepare_data(
        simclr.data, ClustersConfig(), monitor_split=None, seed=simclr.train.seed, source=source
    )
    L.seed_everything(simclr.train.seed, verbose=False)
    return build_module(simclr, data).eval()


def method_callbacks(
    config: ExperimentConfig, data: PreparedData, run_dir: str | Path | None = None
) -> list[Callback]:
    """Callbacks a method trains with: the re-clustering of ``kmeans-clinfonce``, logging
    to ``run_dir/kmeans.jsonl``; none for the others."""
    if config.method.name != "kmeans-clinfonce":
        return []
    km = config.kmeans
    labels = data.train_labels()
    return [
        KMeansReclustering(
            data.eval_dataset(data.train_rows),
            km.n_clusters,
            start_epoch=kmeans_start_epoch(objective_terms(config), cluster_sources(config)),
            every_n_epochs=km.every_n_epochs,
            space=km.features,
            iterations=km.iterations,
            restarts=km.restarts,
            init=km.init,
            seed=config.train.seed if km.seed is None else km.seed,
            batch_size=km.batch_size,
            labels=None if labels is None else np.asarray(labels),
            log_file=None if run_dir is None else Path(run_dir) / KMEANS_LOG,
        )
    ]


def module_from_checkpoint(checkpoint: dict[str, Any]) -> EncoderModule:
    """Rebuild the module of a loaded training checkpoint (its class from the stored
    config's method) with the checkpoint's weights.

    Raises:
        KeyError: the checkpoint has no stored config or weights.
    """
    hparams = dict(checkpoint["hyper_parameters"])
    cls = module_class(hparams["config"]["method"]["name"])
    module = cls(**hparams)
    module.on_load_checkpoint(checkpoint)
    module.load_state_dict(checkpoint["state_dict"])
    return module
