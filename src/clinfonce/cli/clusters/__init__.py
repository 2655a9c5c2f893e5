"""``clinfonce clusters``: stage 1 from the command line.

``build`` turns a metadata table into an assignment file (``id,cluster`` + JSON sidecar) and
reports the clusters' quality against the labels; ``sweep`` measures that quality over a
range of granularities (the paper's analysis: I(Z;T) and H(Z|T) against K);
``import-official`` turns the official Cl-InfoNCE ``meta_data_*.csv`` cluster columns into
assignment files, so runs of the original code and of this library can share clusters.
"""

from __future__ import annotations

import argparse

from clinfonce.cli.clusters.build import BUILD_EPILOG, run_build
from clinfonce.cli.clusters.official import register_import
from clinfonce.cli.clusters.options import (
    BUILD_OPTIONS,
    BUILDER_OPTIONS,
    COMMON_OPTIONS,
    SWEEP_OPTIONS,
    add_options,
    builder_list,
)
from clinfonce.cli.clusters.suggest import register_suggest
from clinfonce.cli.clusters.sweep import SWEEP_EPILOG, run_sweep


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``clusters build``, ``clusters sweep`` and ``clusters import-official``."""
    parser = subparsers.add_parser(
        "clusters",
        help="stage 1: clusters from auxiliary information, and their quality",
        description="Stage 1 of Cl-InfoNCE: turn a metadata table into one cluster id per "
        "sample (build), measure cluster quality across granularities (sweep), or import "
        "the official code's clusters (import-official).",
    )
    commands = parser.add_subparsers(
        dest="clusters_command", metavar="{build,sweep,suggest,import-official}"
    )
    parser.set_defaults(func=lambda _: show_help(parser))
    for name, options, epilog, run, summary in (
        ("build", BUILD_OPTIONS, BUILD_EPILOG, run_build, "write an assignment file"),
        ("sweep", SWEEP_OPTIONS, SWEEP_EPILOG, run_sweep, "metrics over granularities"),
    ):
        sub = commands.add_parser(
            name,
            help=summary,
            description=f"{summary[0].upper()}{summary[1:]}. Builders:\n{builder_list()}\n\n"
            "Builder options apply to the builders named in their help. Every option can "
            "also come from --config (YAML keys = option names, e.g. label_column: class).",
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument("table", nargs="?", help="metadata table (.csv .tsv .parquet .jsonl)")
        sub.add_argument("--config", help="YAML file of option values (command line wins)")
        add_options(sub, COMMON_OPTIONS)
        add_options(sub.add_argument_group("builder options"), BUILDER_OPTIONS)
        add_options(sub, options)
        sub.set_defaults(func=run, _options=(*COMMON_OPTIONS, *BUILDER_OPTIONS, *options))
    register_suggest(commands)
    register_import(commands)


def show_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
