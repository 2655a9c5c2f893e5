"""The options of ``clusters build`` and ``clusters sweep``: the shared ones, the builder
options and the command-only ones, as argparse arguments.
"""

from __future__ import annotations

import argparse
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
    Option("--encoding", "text encoding of a CSV/TSV/JSONL table (default utf-8; e.g. latin-1)"),
    Option(
        "--no-ami",
        "skip the adjusted mutual information, whose cost grows with clusters x labels "
        "(tens of seconds or more for ~10^5 clusters and ~10^3 labels)",
        None,
        boolean=True,
    ),
)

BUILDER_OPTIONS: tuple[Option, ...] = (
    Option(
        "--k",
        "attributes/tags: number of ranked attributes/tags to combine",
        non_negative,
        param="k",
    ),
    Option(
        "--columns",
        "attributes: candidate attribute columns, comma-separated (default: all but id, "
        "path, label, class, split, source_index and the label column); kmeans: numeric "
        "feature columns",
        comma_list,
        param="columns",
    ),
    Option(
        "--exclude", "attributes: columns never used, comma-separated", comma_list, param="exclude"
    ),
    Option(
        "--rank",
        "attributes: order by descending entropy (ties by name) or keep --columns order",
        choices=("entropy", "given"),
        param="rank",
    ),
    Option(
        "--missing",
        "attributes: a missing value is a value of its own, or an error",
        choices=("own", "error"),
        param="missing",
    ),
    Option(
        "--max-levels",
        "attributes: more distinct values than this marks a column as continuous (64)",
        non_negative,
        param="max_levels",
    ),
    Option(
        "--parents",
        "hierarchy: child,parent CSV or nested JSON tree file",
        param="parents",
    ),
    Option("--level", "hierarchy: ancestor level (root = 0)", non_negative, param="level"),
    Option("--tag-column", "tags: the multi-valued tag column", param="column"),
    Option(
        "--method",
        "tags: top-k presence pattern, or TF-IDF + K-means",
        choices=("top-k", "tfidf-kmeans"),
        param="method",
    ),
    Option(
        "--tag-format",
        "tags: cell format (auto detects JSON lists, #hashtags or --sep delimited)",
        choices=("auto", "json", "hashtag", "delimited"),
        param="tag_format",
    ),
    Option("--sep", "tags: separator of delimited tags (|)", param="sep"),
    Option(
        "--max-features",
        "tags tfidf-kmeans: most frequent tags kept (1000)",
        non_negative,
        param="max_features",
    ),
    Option("--n-clusters", "kmeans, tags tfidf-kmeans: K", non_negative, param="n_clusters"),
    Option(
        "--embeddings", "kmeans: .npy [rows, dim] file, one row per table row", param="embeddings"
    ),
    Option(
        "--spherical",
        "kmeans: cosine K-means on L2-normalised vectors (default) or Euclidean",
        None,
        param="spherical",
        boolean=True,
    ),
    Option("--iterations", "kmeans: Lloyd iterations (20)", non_negative, param="iterations"),
    Option("--restarts", "kmeans: runs, best inertia kept (1)", non_negative, param="restarts"),
    Option("--seed", "kmeans, tags tfidf-kmeans: random seed (0)", int, param="seed"),
    Option(
        "--init",
        "kmeans: greedy k-means++ on a 20,000-point sample (default) or K random points",
        choices=("k-means++", "random"),
        param="init",
    ),
    Option(
        "--backend",
        "kmeans: faiss, pure torch, or auto",
        choices=("auto", "faiss", "torch"),
        param="backend",
    ),
    Option(
        "--column", "column: an existing cluster-id column (e.g. label_gran_10)", param="column"
    ),
)

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
            action: Any = (
                argparse.BooleanOptionalAction if option.flag == "--spherical" else "store_const"
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
