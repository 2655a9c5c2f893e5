"""Values into typed dataclasses: the one binder of every config the package reads.

Training configs, evaluation settings, experiment files and cluster configs are nested
mappings (YAML files, ``key=value`` overrides, presets merged with user values) that become
dataclasses. A utility below every other module (it needs only PyYAML), so any of them binds
its settings without importing torch. The pieces, each usable alone:

- :func:`read_mapping`: a YAML file that must hold a mapping, with file/line errors;
- :func:`deep_merge`: a preset with user values on top;
- :func:`apply_overrides` / :func:`apply_override`: dotted ``key=value`` changes;
- :func:`bind`: the mapping as a dataclass, with type checks and unknown-key errors that list
  the valid keys, so a typo never silently configures the wrong thing.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from clinfonce.yaml_files import parse_yaml, read_yaml_file

T = TypeVar("T")


def read_mapping(path: str | Path, what: str = "a config") -> dict[str, Any]:
    """The mapping a YAML file holds (an empty file: ``{}``).

    Args:
        path: the file.
        what: what the file is, for the message when it is not a mapping.

    Raises:
        FileNotFoundError: no such file.
        ValueError: invalid YAML (naming the file, line and column) or not a mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found")
    loaded = read_yaml_file(path) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: {what} must be a mapping of sections")
    return loaded


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in: mappings merge recursively, other values replace;
    neither input is changed.

    Examples:
        >>> deep_merge({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}, "b": 4})
        {'a': {'x': 1, 'y': 3}, 'b': 4}
    """
    merged = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def apply_overrides(values: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``values`` with each ``dotted.key=value`` override applied in order.

    Examples:
        >>> apply_overrides({"optim": {"lr": 0.1}}, ["optim.lr=0.2", "train.epochs=3"])
        {'optim': {'lr': 0.2}, 'train': {'epochs': 3}}
    """
    changed = copy.deepcopy(dict(values))
    for override in overrides:
        apply_override(changed, override)
    return changed


def _from_value(value: Any, annotation: Any, key: str) -> Any:
    """Check (and lightly coerce) ``value`` against a field annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _from_value(value, option, key)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0])
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        if not isinstance(value, dict):
            raise ValueError(f"{key} must be a mapping of settings, got {value!r}")
        return bind(annotation, value, key)
    if origin is list:
        (item,) = typing.get_args(annotation)
        if not isinstance(value, list | tuple):
            raise ValueError(f"{key} must be a list, got {value!r}")
        return [_from_value(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{key} must be a mapping, got {value!r}")
        _, item = typing.get_args(annotation)
        return {k: _from_value(v, item, f"{key}.{k}") for k, v in value.items()}
    if annotation is float and isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            return float(value)  # YAML reads "1e-3" as a string
        except ValueError:
            pass
    elif annotation in (int, bool) and type(value) is annotation:
        return value
    elif annotation is str and isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    elif annotation is Any:
        return value
    name = getattr(annotation, "__name__", str(annotation))
    raise ValueError(f"{key} must be {name}, got {value!r}")


def bind(cls: type[T], values: Mapping[str, Any], where: str = "") -> T:
    """The dataclass ``cls`` from nested ``values``: every field checked against its type
    (nested dataclasses, lists, dicts, unions, ``None``), ints accepted for floats, numbers
    for strings, anything left out at its default.

    Args:
        cls: a dataclass (its annotations say what each key may hold).
        values: the key -> value mapping (e.g. a YAML section).
        where: the dotted key of ``values`` in the whole config, for messages.

    Raises:
        ValueError: an unknown key (naming it and listing the valid ones) or a value of the
            wrong type (naming its key).

    Examples:
        >>> from dataclasses import dataclass
        >>> @dataclass
        ... class Section:
        ...     size: int = 1
        ...     rate: float = 0.5
        >>> bind(Section, {"rate": 1})
        Section(size=1, rate=1.0)
        >>> bind(Section, {"sise": 2}, "model")
        Traceback (most recent call last):
        ValueError: unknown config key 'model.sise' in 'model'; valid keys: size, rate
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = [k for k in values if k not in names]
    if unknown:
        place = f"in '{where}'" if where else "at the top level"
        raise ValueError(
            f"unknown config key '{_join(where, unknown[0])}' {place}; valid keys: "
            f"{', '.join(names)}"
        )
    kwargs = {k: _from_value(v, hints[k], _join(where, k)) for k, v in values.items()}
    return cls(**kwargs)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def apply_override(values: dict[str, Any], override: str) -> None:
    """Apply one ``dotted.key=value`` override to a nested dict (value parsed as YAML).

    A number indexes a list, e.g. ``objective.1.weight=0.5``.

    Examples:
        >>> d = {"objective": [{"loss": "simclr"}]}
        >>> apply_override(d, "optim.lr=0.1"); apply_override(d, "objective.0.weight=2"); d
        {'objective': [{'loss': 'simclr', 'weight': 2}], 'optim': {'lr': 0.1}}
    """
    if "=" not in override:
        raise ValueError(f"override {override!r} must look like section.key=value")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ValueError(f"override {override!r}: empty key part")
    node: dict[str, Any] | list[Any] = values
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            child = node[_list_index(node, part, ".".join(parts[:depth]), override)]
        else:
            child = node.setdefault(part, {})
        if not isinstance(child, dict | list):
            raise ValueError(f"override {override!r}: {part} is not a section")
        node = child
    value = parse_yaml(raw, f"override {override!r}") if raw.strip() else None
    if isinstance(node, list):
        node[_list_index(node, parts[-1], ".".join(parts[:-1]), override)] = value
    else:
        node[parts[-1]] = value


def _list_index(items: list[Any], part: str, where: str, override: str) -> int:
    if not part.isdigit() or int(part) >= len(items):
        raise ValueError(
            f"override {override!r}: {where} is a list of {len(items)}; index it with "
            f"0..{len(items) - 1}, not {part!r}"
        )
    return int(part)
