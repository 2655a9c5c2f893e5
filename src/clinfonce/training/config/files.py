"""Experiment configs in and out: values or a YAML file (+ overrides) -> a checked config.

:func:`config_from_dict` and :func:`load_config` are the one way a training config is made:
bound by :func:`~clinfonce.binder.bind` and checked by
:func:`~clinfonce.training.config.checks.check_config`, once; everything downstream receives
the typed :class:`~clinfonce.training.config.schema.ExperimentConfig`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard, TypeVar

import yaml

from clinfonce.binder import apply_overrides, bind, read_mapping
from clinfonce.clusters.builders import get_builder
from clinfonce.data.config import ClusterSpec, DataConfig, expand_clusters_shorthand
from clinfonce.data.sources import source_path_options
from clinfonce.outputs import atomic_write
from clinfonce.paths import absolute_options, absolute_path, path_fields
from clinfonce.training.config.checks import check_config
from clinfonce.training.config.schema import ExperimentConfig
from clinfonce.training.methods.registry import REGISTRY

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_Section = TypeVar("_Section", bound="DataclassInstance")


def config_from_dict(
    values: dict[str, Any] | None = None, overrides: Sequence[str] = ()
) -> ExperimentConfig:
    """Build and check a config from nested ``values`` plus ``key=value`` overrides.

    A method's own default temperature (``kmeans-clinfonce``: 0.2) applies when
    ``method.temperature`` is not given.

    Examples:
        >>> config_from_dict({"method": {"name": "kmeans-clinfonce"}}).method.temperature
        0.2
    """
    merged = apply_overrides(values or {}, overrides)
    if isinstance(merged.get("clusters"), dict):
        merged["clusters"] = expand_clusters_shorthand(merged["clusters"])
    method = merged.get("method")
    if isinstance(method, dict) and "temperature" not in method:
        own = REGISTRY.get(str(method.get("name")))
        if own is not None and own.temperature is not None:
            method["temperature"] = own.temperature
    config = bind(ExperimentConfig, merged)
    check_config(config)
    return config


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Load a YAML config file (optional) and apply overrides.

    ``output.name`` defaults to the file's stem.

    Examples:
        >>> cfg = load_config("configs/fashion-mnist-clinfonce.yaml", ["train.epochs=1"])
        ... # doctest: +SKIP
    """
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        values = read_mapping(path)
        values.setdefault("output", {}).setdefault("name", path.stem)
    try:
        return config_from_dict(values, overrides)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}" if path is not None else str(exc)) from None


def with_absolute_paths(config: ExperimentConfig) -> ExperimentConfig:
    """The config with its relative file and folder paths made absolute (against the working
    folder).

    A run directory's ``config.yaml`` must work from anywhere: ``clinfonce embed`` and
    ``evaluate`` are often run from another folder than the training. The paths are found
    from annotations (:mod:`clinfonce.paths`): the schema's fields (a clustering's
    ``assignment``, ``output.dir``), the ``data.options`` of the source's loader and the
    ``params`` of each clustering's builder (K-means' ``embeddings``, hierarchy's
    ``parents``); ``model.weights`` too when it names a file or run rather than ``none`` or
    ``imagenet``. Only paths change, so the checked config is not checked again.

    Examples:
        >>> cfg = config_from_dict({"data": {"dataset": "table",
        ...                                  "options": {"table": "meta.csv"}}})
        >>> Path(with_absolute_paths(cfg).data.options["table"]).is_absolute()
        True
    """
    config = _absolute_paths(config)
    weights = config.model.weights
    if weights in ("none", "imagenet"):  # keywords, not files
        return config
    model = dataclasses.replace(config.model, weights=absolute_path(weights))
    return dataclasses.replace(config, model=model)


def _absolute_paths(section: _Section) -> _Section:
    """A config section (a dataclass) with the paths of its fields and sub-sections made
    absolute."""
    changes: dict[str, Any] = {}
    for name in path_fields(type(section)):
        changes[name] = absolute_path(getattr(section, name))
    for item in dataclasses.fields(section):
        value = getattr(section, item.name)
        if _is_section(value):
            changes[item.name] = _absolute_paths(value)
        elif isinstance(value, list):
            changes[item.name] = [_absolute_paths(v) if _is_section(v) else v for v in value]
        elif isinstance(value, dict) and any(_is_section(v) for v in value.values()):
            changes[item.name] = {k: _absolute_paths(v) for k, v in value.items()}
    if isinstance(section, DataConfig):
        options = source_path_options(section.dataset)
        changes["options"] = absolute_options(section.options, options)
    if isinstance(section, ClusterSpec) and section.builder is not None:
        params = get_builder(section.builder).path_parameters()
        changes["params"] = absolute_options(section.params, params)
    return dataclasses.replace(section, **changes)


def _is_section(value: Any) -> TypeGuard[DataclassInstance]:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (loadable with :func:`load_config`)."""
    text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    atomic_write(path, lambda temp: temp.write_text(text))
