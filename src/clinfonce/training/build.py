"""The module of a run, of a checkpoint, and the untrained floor, whatever the method.

:func:`build_module` makes the module a run trains (its method's
:meth:`~clinfonce.training.methods.spec.Method.build`), :func:`module_from_checkpoint` the
one a checkpoint holds, :func:`untrained_encoder` the encoder before any training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L

from clinfonce.data.config import ClustersConfig
from clinfonce.data.prepare import PreparedData, prepare_data
from clinfonce.data.sources import ImageSource
from clinfonce.training.base import EncoderModule
from clinfonce.training.config import ExperimentConfig, config_from_dict
from clinfonce.training.methods.registry import find_method, objective_terms
from clinfonce.training.objective import ObjectiveTerm


def build_module(
    config: ExperimentConfig,
    data: PreparedData,
    terms: Sequence[ObjectiveTerm] | None = None,
) -> EncoderModule:
    """The module that trains ``config`` on ``data``, with its per-sample tables registered
    (clusterings, attribute codes, cluster targets).

    Args:
        config: the checked config.
        data: the prepared data.
        terms: the config's objective terms when already resolved (``None``: resolved here).
    """
    if terms is None:
        terms = objective_terms(config)
    return find_method(config.method.name).build(config, data, terms)


def untrained_encoder(config: ExperimentConfig, source: ImageSource | None = None) -> EncoderModule:
    """The encoder as initialised with ``config``'s seed, in eval mode: the floor every
    method must clear. Method and clusters do not matter, only the ``model`` section (and
    the data's channels and statistics) shapes it.

    Args:
        config: the run's config.
        source: already loaded data (skips loading ``config.data``).
    """
    values = {
        k: v for k, v in config.to_dict().items() if k not in ("method", "clusters", "objective")
    }
    simclr = config_from_dict({**values, "method": {"name": "simclr"}})
    data = prepare_data(
        simclr.data, ClustersConfig(), monitor_split=None, seed=simclr.train.seed, source=source
    )
    L.seed_everything(simclr.train.seed, verbose=False)
    return build_module(simclr, data).eval()


def module_from_checkpoint(checkpoint: dict[str, Any]) -> EncoderModule:
    """Rebuild the module of a loaded training checkpoint (its class from the stored
    config's method) with the checkpoint's weights.

    Raises:
        KeyError: the checkpoint has no stored config or weights.
    """
    hparams = dict(checkpoint["hyper_parameters"])
    values = dict(hparams.pop("config"))
    # The checkpoint holds the weights: the encoder is not initialised from model.weights
    # again (no download, no file of the run that seeded it).
    values["model"] = {**values.get("model", {}), "weights": "none"}
    config = config_from_dict(values)
    module = find_method(config.method.name).rebuild(config, objective_terms(config), hparams)
    module.on_load_checkpoint(checkpoint)
    module.load_state_dict(checkpoint["state_dict"])
    return module
