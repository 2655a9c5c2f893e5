"""The options of ``clusters build`` and ``clusters sweep``: the shared ones, the builder
options and the command-only ones, as argparse arguments.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

LABEL_DEFAULTS = ("label", "class")


@dataclass(frozen=True)
class Option:
    """A command-line option that a YAML config may also set."""

    flag: str
    help: str
    type: Callable[[str], Any] | None = str
    choices: tuple[str, ...] | None = None
    param: str | None = None  # builder parameter it feeds (None: not a builder option)
    boolean: bool = False

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


def comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


#: Help of ``--encoding``, which every command that reads a table takes.
ENCODING_HELP = "text encoding of a CSV/TSV/JSONL table (default utf-8; e.g. latin-1)"

COMMON_OPTIONS: tuple[Option, ...] = (
    Option("--builder", "how to cluster (see the list above); required"),
    Option(
        "--label-column",
        "downstream label column: used for the metrics, and as the label of the hierarchy "
        "and label builders (default: 'label', else 'class', when present)",
    ),
    Option("--id-column", "sample key written to the assignment (default: 'id', else 'path')"),
    Option("--split", "keep only rows whose split column equals this (e.g. train)"),
    Option("--split-column", "column holding the split (default: split)"),
    Option("--encoding", ENCODING_HELP),
    Option(
        "--no-ami",
        "skip the adjusted mutual information, whose cost grows with clusters x labels "
        "(tens of seconds or more for ~10^5 clusters and ~10^3 labels)",
        None,
        boolean=True,
    ),
)

#: Builder parameters given as common options instead (the label serves the metrics too).
_COMMON_PARAMS = frozenset({"label_column"})
#: Second flags of builder parameters: ``--tag-column``, the tags builder's ``column``.
_EXTRA_FLAGS: tuple[tuple[str, str, str], ...] = (("--tag-column", "column", "tags"),)


def builder_options() -> tuple[Option, ...]:
    """One option per builder parameter, derived from the builders themselves: the flag is
    ``--<parameter>`` (``_`` as ``-``), the type and choices come from its annotation, and
    the help is its docstring line for each builder that takes it."""
    from clinfonce.clusters.builders import BUILDERS

    helps: dict[str, list[str]] = {}
    types: dict[str, Any] = {}
    for builder in BUILDERS.values():
        docs, hints = builder.parameter_docs(), builder.parameter_types()
        for name in builder.parameters():
            if name not in _COMMON_PARAMS:
                helps.setdefault(name, []).append(f"{builder.name}: {docs.get(name, name)}")
                types.setdefault(name, hints[name])
    options = [
        _typed_option(f"--{name.replace('_', '-')}", name, types[name], " ".join(texts))
        for name, texts in helps.items()
    ]
    options += [
        _typed_option(flag, name, types[name], f"{builder}: --{name}, by another name")
        for flag, name, builder in _EXTRA_FLAGS
    ]
    return tuple(options)


def _typed_option(flag: str, param: str, annotation: Any, text: str) -> Option:
    """The option of a builder parameter annotated ``annotation`` (``X | None`` as ``X``;
    a union's first member decides): a switch for ``bool``, choices for a ``Literal``, a
    count for ``int``, a comma-separated list for a sequence, else text."""
    kind = annotation
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    if kind is bool:
        return Option(flag, text, None, param=param, boolean=True)
    if typing.get_origin(kind) is typing.Literal:
        return Option(flag, text, choices=typing.get_args(kind), param=param)
    if kind is int:
        return Option(flag, text, non_negative, param=param)
    if typing.get_origin(kind) in (Sequence, list, tuple):
        return Option(flag, f"{text} Comma-separated.", comma_list, param=param)
    return Option(flag, text, param=param)


BUILDER_OPTIONS = builder_options()

BUILD_OPTIONS = (
    Option("--out", "assignment CSV to write (its sidecar: <out>.json)"),
    Option(
        "--force", "replace an existing --out file that clinfonce did not write", None, boolean=True
    ),
)
SWEEP_OPTIONS = (
    Option("--values", "granularity values: 3,5,7 or 1:14 or names/patterns (column)"),
    Option("--out-dir", "folder for sweep.csv, sweep.md and sweep.png"),
)


def add_options(parser: Any, options: Sequence[Option]) -> None:
    from clinfonce.clusters.builders import BUILDERS

    for option in options:
        if option.boolean:
            # A builder's switch can be turned either way (--spherical/--no-spherical).
            action: Any = (
                argparse.BooleanOptionalAction if option.param is not None else "store_const"
            )
            kwargs: dict[str, Any] = {"action": action, "default": None, "help": option.help}
            if action == "store_const":
                kwargs["const"] = True
            parser.add_argument(option.flag, **kwargs)
        else:
            parser.add_argument(
                option.flag,
                type=option.type,
                choices=tuple(BUILDERS) if option.flag == "--builder" else option.choices,
                default=None,
                help=option.help,
            )


def builder_list() -> str:
    from clinfonce.clusters.builders import BUILDERS

    return "\n".join(f"  {name:<11} {b.summary}" for name, b in BUILDERS.items())
