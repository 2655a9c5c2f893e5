"""The ``clinfonce`` command line: one sub-command module per stage or task.

Each module in :data:`SUBCOMMANDS` exposes ``register(subparsers)``, which adds its parser
and sets ``func`` (taking the parsed namespace, returning an exit code) as a default.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from clinfonce import __version__

SUBCOMMANDS: tuple[str, ...] = (
    "run",
    "train",
    "demo",
    "clusters",
    "evaluate",
    "embed",
    "experiment",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="clinfonce",
        description="Weakly-supervised contrastive learning: cluster by auxiliary "
        "information, then train with Cl-InfoNCE.",
    )
    parser.add_argument("--version", action="version", version=f"clinfonce {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"clinfonce.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``clinfonce`` script; returns the process exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # `run TABLE --aux COL key=value`: overrides may follow options, which argparse leaves
    # over once the positionals were filled.
    if extra and hasattr(args, "overrides") and all("=" in e and e[0] != "-" for e in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"clinfonce {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
