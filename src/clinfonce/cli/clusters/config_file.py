"""``--config``: option values of ``clusters build``/``sweep`` from a YAML file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from clinfonce.binder import read_mapping
from clinfonce.cli.clusters.options import Option, comma_list


def apply_config_file(args: argparse.Namespace) -> None:
    """Fill options not given on the command line from ``--config``."""
    if args.config is None:
        return
    path = Path(args.config)
    loaded = read_mapping(path, "a clusters config (option names to values)")
    options = {o.dest: o for o in args._options}
    for key, value in loaded.items():
        dest = str(key).replace("-", "_")
        if dest == "table":
            args.table = args.table or str(value)
            continue
        if dest not in options:
            raise ValueError(
                f"{path}: unknown key {key!r}; known keys: table, {', '.join(sorted(options))}"
            )
        if getattr(args, dest) is None:
            setattr(args, dest, config_value(options[dest], value, path))


def config_value(option: Option, value: Any, path: Path) -> Any:
    if option.boolean:
        if not isinstance(value, bool):
            raise ValueError(f"{path}: {option.dest} must be true or false, got {value!r}")
        return value
    if isinstance(value, list) and option.type is comma_list:
        return [str(v) for v in value]
    if isinstance(value, list) and option.dest == "values":
        return ",".join(map(str, value))
    text = str(value)
    if option.choices is not None and text not in option.choices:
        raise ValueError(f"{path}: {option.dest}={text!r}; choose from {', '.join(option.choices)}")
    try:
        return option.type(text) if option.type is not None else value
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise ValueError(f"{path}: {option.dest}={value!r}: {exc}") from exc
