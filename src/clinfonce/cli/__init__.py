"""The ``clinfonce`` command line: one sub-command module per stage or task.

Each module in :data:`SUBCOMMANDS` exposes ``register(subparsers)``, which adds its parser
and sets ``func`` (taking the parsed namespace, returning an exit code) as a default.

Errors: a command reports a problem with its input (bad value, missing or unreadable file,
bad YAML, broken checkpoint) as one line, ``clinfonce COMMAND: error: ...``, and exit code
1; warnings print as ``clinfonce COMMAND: warning: ...``. ``--debug`` shows the traceback
instead, for a bug report. Training stopped by a signal exits with ``128 + signal``, the
shell's convention, after saving a resumable checkpoint.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from clinfonce import __version__

SUBCOMMANDS: tuple[str, ...] = (
    "run",
    "train",
    "demo",
    "clusters",
    "evaluate",
    "embed",
    "export",
    "experiment",
    "prepare",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="clinfonce",
        description="Weakly-supervised contrastive learning: cluster by auxiliary "
        "information, then train with Cl-InfoNCE.",
    )
    parser.add_argument("--version", action="version", version=f"clinfonce {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"clinfonce.cli.{name}").register(subparsers)
    _add_debug(subparsers)  # also accepted after the command (and its sub-command)
    return parser


def _add_debug(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for subparser in subparsers.choices.values():
        subparser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP
        )
        for action in subparser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_debug(action)


DEBUG_HELP = "on an error, show the full traceback instead of the one-line message"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``clinfonce`` script; returns the process exit code."""
    from clinfonce.interrupted import TrainingInterrupted

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
    prefix = f"clinfonce {args.command}"
    with one_line_warnings(prefix):
        try:
            code: int = args.func(args)
        except TrainingInterrupted as exc:
            print(f"{prefix}: {exc}", file=sys.stderr)
            return 128 + exc.signum
        except KeyboardInterrupt:
            if args.debug:
                raise
            print(f"{prefix}: interrupted", file=sys.stderr)
            return 130
        except (ValueError, OSError, KeyError) as exc:
            if args.debug:
                raise
            print(f"{prefix}: error: {describe_error(exc)}", file=sys.stderr)
            return 1
    return code


def describe_error(exc: BaseException) -> str:
    """The one-line text of an error (the first line; the type when there is no message).

    Examples:
        >>> describe_error(ValueError("bad value\\nmore"))
        'bad value'
        >>> describe_error(PermissionError(13, "Permission denied", "out.csv"))
        'out.csv: permission denied'
    """
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror[:1].lower()}{exc.strerror[1:]}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def one_line_warnings(prefix: str) -> Iterator[None]:
    """Print warnings as ``<prefix>: warning: <message>`` (no source line) while inside."""
    original = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        print(f"{prefix}: warning: {message}", file=file or sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


if __name__ == "__main__":
    sys.exit(main())
