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
from typing import Any, TypeVar

import yaml

from clinfonce.binder import apply_overrides, bind, read_mapping
from clinfonce.data.config import ClusterSpec, expand_clusters_shorthand
from clinfonce.outputs import atomic_write
from clinfonce.training.config.checks import check_config
from clinfonce.training.config.schema import ExperimentConfig
from clinfonce.training.methods.registry import REGISTRY

_Spec = TypeVar("_Spec", bound=ClusterSpec)

#: ``data.options`` keys of the built-in sources that name files or folders.
PATH_OPTIONS: tuple[str, ...] = (
    "table",
    "image_root",
    "arrays",
    "root",
    "images_dir",
    "prepare_dir",
)


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
    """The config with its relative file paths made absolute (against the working folder).

    A run directory's ``config.yaml`` must work from anywhere: ``clinfonce embed`` and
    ``evaluate`` are often run from another folder than the training. Covers the path
    options of ``data.options`` (:data:`PATH_OPTIONS`), the clusterings' ``assignment``
    files, a hierarchy builder's ``parents`` file and a ``model.weights`` path. Only paths
    change, so the checked config is not checked again.

    Examples:
        >>> cfg = config_from_dict({"data": {"dataset": "table",
        ...                                  "options": {"table": "meta.csv"}}})
        >>> Path(with_absolute_paths(cfg).data.options["table"]).is_absolute()
        True
    """
    options = dict(config.data.options)
    for key in PATH_OPTIONS:
        if key in options:
            options[key] = _absolute(options[key])
    clusters = config.clusters
    named = {name: _absolute_spec(spec) for name, spec in clusters.named.items()}
    weights = config.model.weights
    if weights not in ("none", "imagenet"):
        weights = _absolute(weights)
    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, options=options),
        clusters=dataclasses.replace(_absolute_spec(clusters), named=named),
        model=dataclasses.replace(config.model, weights=weights),
    )


def _absolute(value: Any) -> Any:
    if isinstance(value, str) and value and not Path(value).is_absolute():
        return str(Path(value).absolute())
    return value


def _absolute_spec(spec: _Spec) -> _Spec:
    """A clustering (a :class:`ClusterSpec` or the section) with absolute file paths."""
    params = dict(spec.params)
    if spec.builder == "hierarchy" and "parents" in params:
        params["parents"] = _absolute(params["parents"])
    return dataclasses.replace(spec, assignment=_absolute(spec.assignment), params=params)


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (loadable with :func:`load_config`)."""
    text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    atomic_write(path, lambda temp: temp.write_text(text))
