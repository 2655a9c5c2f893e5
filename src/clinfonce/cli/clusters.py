"""``clinfonce clusters``: stage 1 from the command line.

``build`` turns a metadata table into an assignment file (``id,cluster`` + JSON sidecar) and
reports the clusters' quality against the labels; ``sweep`` measures that quality over a
range of granularities (the paper's analysis: I(Z;T) and H(Z|T) against K);
``import-official`` turns the official Cl-InfoNCE ``meta_data_*.csv`` cluster columns into
assignment files, so runs of the original code and of this library can share clusters.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clinfonce import __version__
from clinfonce.clusters.suggest import LOW_INFORMATION_RATIO
from clinfonce.yaml_files import read_yaml_file

_LABEL_DEFAULTS = ("label", "class")

BUILD_EPILOG = """examples:
  # joint value of the 10 highest-entropy attributes, metrics against 'label'
  clinfonce clusters build meta.csv --builder attributes --k 10 --out clusters.csv
  # WordNet-style hierarchy, level 2 from the root (root = level 0)
  clinfonce clusters build meta.parquet --builder hierarchy --label-column label \\
      --parents tree.json --level 2 --out clusters.csv
  # hashtags, top-5 tag presence pattern, training rows only
  clinfonce clusters build posts.jsonl --builder tags --tag-column tags --k 5 \\
      --split train --out clusters.csv
  # spherical K-means on a .npy of embeddings (one row per table row)
  clinfonce clusters build meta.csv --builder kmeans --embeddings emb.npy \\
      --n-clusters 2500 --out clusters.csv
  # everything from a YAML file (keys = option names; the command line wins)
  clinfonce clusters build --config clusters.yaml

The output CSV has the header id,cluster; <out>.json records the builder, its parameters,
the input file's SHA-256 and the metrics. Both files are replaced atomically.
"""

SWEEP_EPILOG = """examples:
  # k = 1..14 ranked attributes, against the labels in 'label'
  clinfonce clusters sweep meta.csv --builder attributes --values 1:14 --out-dir sweep/
  # the official UT-Zappos50K clusters (precomputed columns), as in the paper
  clinfonce clusters sweep UT-zappos50K/rank_H/meta_data_train.csv --builder column \\
      --values 'label_gran_*' --label-column class --out-dir sweep-zappos/
  # K-means over several K
  clinfonce clusters sweep meta.csv --builder kmeans --columns f1,f2,f3 \\
      --values 10,100,1000 --out-dir sweep-kmeans/

Writes sweep.csv, sweep.md and sweep.png (I(Z;T) and H(Z|T) against K) to --out-dir.
Values: a comma list (3,5,7), an inclusive range (1:14 or 1:14:2), or for the column
builder column names and shell patterns (label_gran_*, expanded in natural order).
"""

IMPORT_EPILOG = """examples:
  # one granularity of the official UT-Zappos50K clusters
  clinfonce clusters import-official UT-zappos50K/rank_H/meta_data_train.csv \\
      --column label_gran_10 --out zappos-k10.csv
  # every label_gran_<k> column, checked against the images as our reader sees them
  clinfonce clusters import-official CUB/rank_H/meta_data_train.csv \\
      --all-columns cub-clusters/ --dataset cub-200-2011 --root data/CUB_200_2011
  # checked against a saved metadata table (its 'id' column, else 'path')
  clinfonce clusters import-official Wider/rank_H/meta_data_train.csv \\
      --column label_gran_7 --out wider-k7.csv --table wider.parquet

Sample ids are the official 'path' values, which equal the 'id' of the dataset readers
(clinfonce.data.official), so the output plugs into a training config as
clusters.assignment. Cluster ids are renumbered 0..K-1 in sorted official order; the sidecar
(<out>.json) records the source file, its SHA-256, the column and the metrics against the
official 'class'. With --table or --dataset, every official id must be in that table and
every row of its --split must have a cluster; otherwise nothing is written.
"""


@dataclass(frozen=True)
class _Option:
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


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


_COMMON: tuple[_Option, ...] = (
    _Option("--builder", "how to cluster (see the list above); required"),
    _Option(
        "--label-column",
        "downstream label column: used for the metrics, and as the label of the hierarchy "
        "and label builders (default: 'label', else 'class', when present)",
    ),
    _Option("--id-column", "sample key written to the assignment (default: 'id', else 'path')"),
    _Option("--split", "keep only rows whose split column equals this (e.g. train)"),
    _Option("--split-column", "column holding the split (default: split)"),
    _Option("--encoding", "text encoding of a CSV/TSV/JSONL table (default utf-8; e.g. latin-1)"),
    _Option(
        "--no-ami",
        "skip the adjusted mutual information, whose cost grows with clusters x labels "
        "(tens of seconds or more for ~10^5 clusters and ~10^3 labels)",
        None,
        boolean=True,
    ),
)

_BUILDER_OPTIONS: tuple[_Option, ...] = (
    _Option(
        "--k",
        "attributes/tags: number of ranked attributes/tags to combine",
        _non_negative,
        param="k",
    ),
    _Option(
        "--columns",
        "attributes: candidate attribute columns, comma-separated (default: all but id, "
        "path, label, class, split, source_index and the label column); kmeans: numeric "
        "feature columns",
        _names,
        param="columns",
    ),
    _Option(
        "--exclude", "attributes: columns never used, comma-separated", _names, param="exclude"
    ),
    _Option(
        "--rank",
        "attributes: order by descending entropy (ties by name) or keep --columns order",
        choices=("entropy", "given"),
        param="rank",
    ),
    _Option(
        "--missing",
        "attributes: a missing value is a value of its own, or an error",
        choices=("own", "error"),
        param="missing",
    ),
    _Option(
        "--max-levels",
        "attributes: more distinct values than this marks a column as continuous (64)",
        _non_negative,
        param="max_levels",
    ),
    _Option(
        "--parents",
        "hierarchy: child,parent CSV or nested JSON tree file",
        param="parents",
    ),
    _Option("--level", "hierarchy: ancestor level (root = 0)", _non_negative, param="level"),
    _Option("--tag-column", "tags: the multi-valued tag column", param="column"),
    _Option(
        "--method",
        "tags: top-k presence pattern, or TF-IDF + K-means",
        choices=("top-k", "tfidf-kmeans"),
        param="method",
    ),
    _Option(
        "--tag-format",
        "tags: cell format (auto detects JSON lists, #hashtags or --sep delimited)",
        choices=("auto", "json", "hashtag", "delimited"),
        param="tag_format",
    ),
    _Option("--sep", "tags: separator of delimited tags (|)", param="sep"),
    _Option(
        "--max-features",
        "tags tfidf-kmeans: most frequent tags kept (1000)",
        _non_negative,
        param="max_features",
    ),
    _Option("--n-clusters", "kmeans, tags tfidf-kmeans: K", _non_negative, param="n_clusters"),
    _Option(
        "--embeddings", "kmeans: .npy [rows, dim] file, one row per table row", param="embeddings"
    ),
    _Option(
        "--spherical",
        "kmeans: cosine K-means on L2-normalised vectors (default) or Euclidean",
        None,
        param="spherical",
        boolean=True,
    ),
    _Option("--iterations", "kmeans: Lloyd iterations (20)", _non_negative, param="iterations"),
    _Option("--restarts", "kmeans: runs, best inertia kept (1)", _non_negative, param="restarts"),
    _Option("--seed", "kmeans, tags tfidf-kmeans: random seed (0)", int, param="seed"),
    _Option(
        "--init",
        "kmeans: greedy k-means++ on a 20,000-point sample (default) or K random points",
        choices=("k-means++", "random"),
        param="init",
    ),
    _Option(
        "--backend",
        "kmeans: faiss, pure torch, or auto",
        choices=("auto", "faiss", "torch"),
        param="backend",
    ),
    _Option(
        "--column", "column: an existing cluster-id column (e.g. label_gran_10)", param="column"
    ),
)

#: What ``clusters sweep`` writes into ``--out-dir``.
SWEEP_FILES: tuple[str, ...] = ("sweep.csv", "sweep.md", "sweep.png")
_BUILD_ONLY = (
    _Option("--out", "assignment CSV to write (its sidecar: <out>.json)"),
    _Option(
        "--force", "replace an existing --out file that clinfonce did not write", None, boolean=True
    ),
)
_SWEEP_ONLY = (
    _Option("--values", "granularity values: 3,5,7 or 1:14 or names/patterns (column)"),
    _Option("--out-dir", "folder for sweep.csv, sweep.md and sweep.png"),
)


def _add_options(parser: Any, options: Sequence[_Option]) -> None:
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


def _builder_list() -> str:
    from clinfonce.clusters.builders import BUILDERS

    return "\n".join(f"  {name:<11} {b.summary}" for name, b in BUILDERS.items())


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
    parser.set_defaults(func=lambda _: _help(parser))
    for name, options, epilog, run, summary in (
        ("build", _BUILD_ONLY, BUILD_EPILOG, _run_build, "write an assignment file"),
        ("sweep", _SWEEP_ONLY, SWEEP_EPILOG, _run_sweep, "metrics over granularities"),
    ):
        sub = commands.add_parser(
            name,
            help=summary,
            description=f"{summary[0].upper()}{summary[1:]}. Builders:\n{_builder_list()}\n\n"
            "Builder options apply to the builders named in their help. Every option can "
            "also come from --config (YAML keys = option names, e.g. label_column: class).",
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.add_argument("table", nargs="?", help="metadata table (.csv .tsv .parquet .jsonl)")
        sub.add_argument("--config", help="YAML file of option values (command line wins)")
        _add_options(sub, _COMMON)
        _add_options(sub.add_argument_group("builder options"), _BUILDER_OPTIONS)
        _add_options(sub, options)
        sub.set_defaults(func=run, _options=(*_COMMON, *_BUILDER_OPTIONS, *options))
    _register_suggest(commands)
    _register_import(commands)


SUGGEST_EPILOG = """examples:
  clinfonce clusters suggest meta.csv                    # labels from 'label' where present
  clinfonce clusters suggest meta.csv --label class --batch-size 128
  clinfonce clusters suggest meta.csv --hierarchy tree.csv --levels 1,2,3 --tags tags

Each candidate (every attribute column, joints of the top-k attributes, hierarchy levels,
top-k tag sets) is judged first without labels: K, cluster sizes, and the expected number
of other samples of an anchor's cluster in a batch (none: the loss is SimCLR; most of the
batch: it cannot tell samples apart). Where rows have labels (a few per class suffice), by
I(Z;T), H(Z|T) and I(Z;T)/H(T), bias-corrected, with 90% bootstrap intervals; a source
with no measurable information about the labels ranks last. `clinfonce run --aux auto`
trains on the first source with the recommended objective.
"""


def _register_suggest(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub = commands.add_parser(
        "suggest",
        help="rank the auxiliary columns as cluster sources and recommend one",
        description="Rank candidate sources of clusters in a metadata table and recommend "
        "one source and a pure or combined objective.",
        epilog=SUGGEST_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.add_argument("table", help="metadata table (.csv .tsv .parquet .jsonl)")
    sub.add_argument(
        "--label",
        help="label column (default: 'label' or 'class' when present); rows "
        "without a value count as unlabelled",
    )
    sub.add_argument("--batch-size", type=int, default=256, help="training batch (default 256)")
    sub.add_argument("--columns", type=_names, help="attribute columns to consider (default: all)")
    sub.add_argument(
        "--exclude",
        type=_names,
        default=[],
        help="columns that are not auxiliary information (id, path, split are skipped anyway)",
    )
    sub.add_argument("--hierarchy", metavar="FILE", help="child,parent CSV or JSON tree")
    sub.add_argument(
        "--levels", type=_names, default=["1", "2"], help="hierarchy levels (default 1,2)"
    )
    sub.add_argument("--hierarchy-column", help="the hierarchy's leaf column (default: label)")
    sub.add_argument("--tags", metavar="COL", help="a tag column")
    sub.add_argument(
        "--embeddings",
        metavar="NPY",
        help="embeddings of every table row, in order (e.g. `clinfonce embed` of a SimCLR "
        "run): ranks sources without labels by how well they agree with its neighbourhoods",
    )
    sub.add_argument("--split", help="use only rows whose 'split' column equals this")
    sub.add_argument("--seed", type=int, default=0, help="seed of the resamples (default 0)")
    sub.set_defaults(func=_run_suggest)


def _run_suggest(args: argparse.Namespace) -> int:
    from clinfonce.clusters import read_table
    from clinfonce.clusters.attributes import RESERVED_COLUMNS
    from clinfonce.clusters.suggest import suggest, suggestion_markdown
    from clinfonce.clusters.tables import require_columns

    table = read_table(args.table)
    embeddings = None if args.embeddings is None else np.load(args.embeddings)
    if embeddings is not None and len(embeddings) != len(table):
        raise ValueError(
            f"--embeddings {args.embeddings}: {len(embeddings)} rows, but {args.table} has "
            f"{len(table)}; embed every row of the table, in order"
        )
    if args.split is not None:
        require_columns(table, ["split"], "--split")
        keep = (table["split"].astype(str) == args.split).to_numpy()
        table = table[keep].reset_index(drop=True)
        embeddings = None if embeddings is None else embeddings[keep]
        if table.empty:
            raise ValueError(f"{args.table}: no rows with split == {args.split!r}")
    label = args.label or next((c for c in _LABEL_DEFAULTS if c in table.columns), None)
    if label is not None:
        require_columns(table, [label], "--label")
    hierarchy = None
    if args.hierarchy is not None:
        leaf = args.hierarchy_column or label
        if leaf is None:
            raise ValueError("--hierarchy needs its leaf column: pass --hierarchy-column COL")
        levels = [int(v) for v in args.levels]
        hierarchy = (args.hierarchy, leaf, levels)
    exclude = sorted({*RESERVED_COLUMNS, *args.exclude, *([label] if label else [])})
    if args.hierarchy_column:
        exclude.append(args.hierarchy_column)
    found = suggest(
        table,
        exclude,
        label_column=label,
        batch_size=args.batch_size,
        columns=args.columns,
        hierarchy=hierarchy,
        tags=args.tags,
        embeddings=embeddings,
        seed=args.seed,
    )
    labelled = 0 if label is None else int(table[label].notna().sum())
    print(
        f"{len(found.ranked)} candidate sources over {len(table)} rows of {args.table}, batch "
        f"{found.batch_size}; labels: "
        + (f"{labelled} rows of {label!r}" if labelled else "none (ranked without labels)")
    )
    for name, why in found.skipped.items():
        print(f"  skipped {name}: {why}")
    print()
    print(suggestion_markdown(found))
    print(f"recommended: {found.best.candidate.name}, method.name={found.method}")
    print(f"  why: {found.reason}")
    return 0


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _apply_config(args: argparse.Namespace) -> None:
    """Fill options not given on the command line from ``--config``."""
    if args.config is None:
        return
    path = Path(args.config)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    loaded = read_yaml_file(path) or {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: a config is a mapping of option names to values")
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
            setattr(args, dest, _config_value(options[dest], value, path))


def _config_value(option: _Option, value: Any, path: Path) -> Any:
    if option.boolean:
        if not isinstance(value, bool):
            raise ValueError(f"{path}: {option.dest} must be true or false, got {value!r}")
        return value
    if isinstance(value, list) and option.type is _names:
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


@dataclass
class _Prepared:
    table: pd.DataFrame
    path: Path
    builder: str
    params: dict[str, Any]
    label_column: str | None


def _prepare(args: argparse.Namespace, *, need_label: bool) -> _Prepared:
    from clinfonce.clusters import read_table
    from clinfonce.clusters.attributes import RESERVED_COLUMNS as RESERVED
    from clinfonce.clusters.builders import get_builder
    from clinfonce.clusters.tables import require_columns

    _apply_config(args)
    if args.table is None:
        raise ValueError("no table given: pass TABLE or set 'table' in --config")
    if args.builder is None:
        raise ValueError("no builder given: pass --builder NAME (see --help for the list)")
    spec = get_builder(args.builder)
    path = Path(args.table)
    table = read_table(path, args.encoding or "utf-8")
    if args.split is not None:
        split_column = args.split_column or "split"
        require_columns(table, [split_column], "--split-column")
        keep = table[split_column].astype(str) == str(args.split)
        if not keep.any():
            present = ", ".join(sorted(table[split_column].astype(str).unique()))
            raise ValueError(f"no rows with {split_column} == {args.split!r} (present: {present})")
        table = table[keep].reset_index(drop=True)
    label = args.label_column
    if label is None:
        label = next((c for c in _LABEL_DEFAULTS if c in table.columns), None)
    elif label not in table.columns:
        require_columns(table, [label], "--label-column")
    if label is not None and table[label].isna().any():
        rows = np.flatnonzero(table[label].isna().to_numpy())
        raise ValueError(
            f"label column {label!r} has {len(rows)} missing value(s) (rows "
            f"{', '.join(map(str, rows[:5]))}); fill or drop those rows, or pick another "
            f"--label-column"
        )
    if need_label and label is None:
        raise ValueError(
            "the sweep needs labels: pass --label-column (available columns: "
            f"{', '.join(map(str, table.columns))})"
        )
    accepted = spec.parameters()
    params: dict[str, Any] = {}
    for option in _BUILDER_OPTIONS:
        value = getattr(args, option.dest)
        if value is None or option.param is None:
            continue
        if option.param not in accepted:
            raise ValueError(
                f"{option.flag} does not apply to builder {args.builder!r}; its parameters: "
                f"{', '.join(accepted) or '(none)'}"
            )
        if option.param in params:
            raise ValueError(f"{option.flag} sets {option.param!r} a second time; give one")
        params[option.param] = value
    if "label_column" in accepted:
        if label is None:
            raise ValueError(f"builder {args.builder!r} needs --label-column")
        params["label_column"] = label
    # Never use the label as an attribute (reserved names are skipped anyway).
    uses_label = label is not None and label not in RESERVED
    if args.builder == "attributes" and "columns" not in params and uses_label:
        params["exclude"] = sorted({*params.get("exclude", []), label})
    if isinstance(params.get("k"), int):
        params["k"] = cap_k([params["k"]], table, args.builder, params)[0]
    return _Prepared(table, path, args.builder, params, label)


def cap_k(
    values: Sequence[Any], table: pd.DataFrame, builder: str, params: dict[str, Any]
) -> list[Any]:
    """Numbers of attributes (or tags) to combine, capped at how many the table has, with a
    note: ``--k 10`` on a table with two attribute columns means "all of them"."""
    if builder == "attributes":
        from clinfonce.clusters.attributes import candidate_columns

        what = "attribute columns"
        available = len(candidate_columns(table, params.get("columns"), params.get("exclude", ())))
    elif builder == "tags" and "column" in params:
        from clinfonce.clusters.tags import tag_matrix

        what = f"tags in {params['column']!r}"
        fmt, sep = params.get("tag_format", "auto"), params.get("sep", "|")
        available = len(tag_matrix(table, params["column"], fmt=fmt, sep=sep).vocabulary)
    else:
        return list(values)
    over = [v for v in values if isinstance(v, int) and v > available]
    if not over:
        return list(values)
    print(
        f"note: k = {', '.join(map(str, over))} capped at {available}, the number of {what}",
        flush=True,
    )
    return list(dict.fromkeys(min(v, available) if isinstance(v, int) else v for v in values))


def _metric_lines(metrics: dict[str, float]) -> list[str]:
    rows = [
        ("samples", f"{metrics['num_samples']:.0f}"),
        ("clusters K", f"{metrics['num_clusters']:.0f}"),
        ("H(Z)", f"{metrics['h_z']:.4f} bits"),
        (
            "cluster sizes",
            f"min {metrics['size_min']:.0f}, median {metrics['size_median']:g}, "
            f"max {metrics['size_max']:.0f}; singletons {metrics['singleton_fraction']:.1%} "
            f"of clusters",
        ),
    ]
    if "h_t" in metrics:
        rows += [
            ("H(T)", f"{metrics['h_t']:.4f} bits"),
            ("H(Z|T)", f"{metrics['h_z_given_t']:.4f} bits (lower: labels split less)"),
            ("H(T|Z)", f"{metrics['h_t_given_z']:.4f} bits"),
            ("I(Z;T)", f"{metrics['i_zt']:.4f} bits (higher: clusters tell more)"),
            ("I(Z;T)/H(T)", f"{metrics['i_zt_over_h_t']:.3f}"),
            ("NMI / AMI", f"{metrics['nmi']:.4f} / {metrics.get('ami', float('nan')):.4f}"),
        ]
    return [f"  {name:<14} {value}" for name, value in rows]


def _low_information_note(where: str, subject: str) -> str:
    """The advice printed for clusters with I(Z;T)/H(T) below LOW_INFORMATION_RATIO: pure
    Cl-InfoNCE pulls together samples the labels tell apart, and fell below SimCLR there."""
    return (
        f"note: {where} < {LOW_INFORMATION_RATIO}: {subject} little of the label information; "
        "a combined Cl-InfoNCE + InfoNCE objective is the safer choice "
        "(method.name=clinfonce-plus-simclr, what the default method.name=auto picks): pure "
        "method.name=clinfonce can fall below SimCLR on such clusters, or beat it; compare both"
    )


def _run_build(args: argparse.Namespace) -> int:
    from clinfonce.clusters import cluster_metrics, write_assignment
    from clinfonce.clusters.builders import run_builder
    from clinfonce.clusters.io import file_sha256
    from clinfonce.clusters.tables import resolve_id_column, sample_ids

    prep = _prepare(args, need_label=False)
    if args.out is None:
        raise ValueError("no output given: pass --out clusters.csv")
    check_assignment_output(args, args.out)
    ids = sample_ids(prep.table, args.id_column)
    print(f"building {prep.builder} clusters for {len(prep.table)} rows of {prep.path}", flush=True)
    result = run_builder(prep.table, prep.builder, **prep.params)
    labels = None if prep.label_column is None else prep.table[prep.label_column]
    metrics = cluster_metrics(result.ids, labels, ami=not args.no_ami)
    for key in ("attributes", "tags"):
        if key in result.details:
            print(f"  {key} used (in order): {', '.join(result.details[key])}")
    print(f"metrics{'' if labels is None else f' against {prep.label_column!r}'}:")
    print("\n".join(_metric_lines(metrics)))
    ratio = metrics.get("i_zt_over_h_t")
    if ratio is not None and ratio < LOW_INFORMATION_RATIO:
        print(_low_information_note(f"I(Z;T)/H(T) = {ratio:.2f}", "these clusters carry"))
    sidecar = {
        "builder": prep.builder,
        "params": prep.params,
        "details": result.details,
        "input": {
            "path": str(prep.path),
            "sha256": file_sha256(prep.path),
            "rows": len(prep.table),
            "split": args.split,
        },
        "id_column": resolve_id_column(prep.table, args.id_column),
        "label_column": prep.label_column,
        "metrics": metrics,
        "clinfonce_version": __version__,
    }
    write_assignment(args.out, ids, result.ids, sidecar)
    print(f"wrote {args.out} ({len(ids)} rows, {result.num_clusters} clusters) and {args.out}.json")
    return 0


def check_assignment_output(args: argparse.Namespace, out: str | Path) -> None:
    """Refuse an ``--out`` (or its ``.json`` sidecar) that is an input of the command, or an
    existing file that is not an assignment clinfonce wrote, unless ``--force``."""
    from clinfonce.clusters.io import is_assignment_file
    from clinfonce.outputs import check_output_file, existing_paths

    outputs = ("out", "all_columns", "func")
    inputs = list(existing_paths([v for k, v in vars(args).items() if k not in outputs]))
    force = bool(getattr(args, "force", False))
    check_output_file(out, inputs, force=force, ours=is_assignment_file)
    sidecar = f"{out}.json"
    check_output_file(
        sidecar,
        inputs,
        force=force,
        ours=lambda p: is_assignment_file(str(p)[:-5]),
        option="sidecar",
    )


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def parse_values(text: str, builder: str, columns: Sequence[str]) -> list[Any]:
    """Granularity values from ``--values``: ints, inclusive ranges, or column names.

    Examples:
        >>> parse_values("1:3,7", "attributes", [])
        [1, 2, 3, 7]
        >>> parse_values("g_*", "column", ["g_10", "x", "g_3"])
        ['g_3', 'g_10']
    """
    values: list[Any] = []
    for token in _names(text):
        if builder == "column":
            if any(ch in token for ch in "*?["):
                matched = sorted(fnmatch.filter(columns, token), key=_natural_key)
                if not matched:
                    raise ValueError(f"--values: no column matches {token!r}")
                values += matched
            else:
                values.append(token)
            continue
        ranged = re.fullmatch(r"(\d+):(\d+)(?::(\d+))?", token)
        if ranged:
            start, stop, step = int(ranged[1]), int(ranged[2]), int(ranged[3] or 1)
            if step < 1 or stop < start:
                raise ValueError(f"--values: bad range {token!r} (use start:stop[:step])")
            values += list(range(start, stop + 1, step))
        elif re.fullmatch(r"\d+", token):
            values.append(int(token))
        else:
            raise ValueError(f"--values: {token!r} is not an integer or a start:stop range")
    if not values:
        raise ValueError("--values is empty")
    return values


def _run_sweep(args: argparse.Namespace) -> int:
    from clinfonce.clusters.sweep import plot_sweep, sweep_metrics, to_markdown
    from clinfonce.outputs import check_output_folder, existing_paths

    prep = _prepare(args, need_label=True)
    if args.values is None or args.out_dir is None:
        raise ValueError("the sweep needs --values and --out-dir")
    assert prep.label_column is not None
    values = parse_values(args.values, prep.builder, [str(c) for c in prep.table.columns])
    from clinfonce.clusters.builders import get_builder

    if get_builder(prep.builder).granularity(prep.params) == "k":
        values = cap_k(values, prep.table, prep.builder, prep.params)
    out = Path(args.out_dir)
    check_output_folder(out, SWEEP_FILES, existing_paths([args.table, args.config]), "--out-dir")
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"sweeping {prep.builder} over {len(values)} values on {len(prep.table)} rows of "
        f"{prep.path} (labels: {prep.label_column!r})",
        flush=True,
    )

    def progress(row: dict[str, Any]) -> None:
        first = next(iter(row))
        print(
            f"  {first}={row[first]}: K={row['num_clusters']}, H(Z|T)={row['h_z_given_t']:.4f}, "
            f"I(Z;T)={row['i_zt']:.4f}",
            flush=True,
        )

    frame = sweep_metrics(
        prep.table,
        prep.builder,
        values,
        labels=prep.table[prep.label_column],
        ami=not args.no_ami,
        progress=progress,
        **prep.params,
    )
    frame.to_csv(out / "sweep.csv", index=False)
    (out / "sweep.md").write_text(to_markdown(frame))
    plot_sweep(frame, out / "sweep.png", title=f"{prep.path.name}: {prep.builder} sweep")
    with pd.option_context("display.width", 160, "display.max_columns", None):
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    param = frame.columns[0]
    low = frame.loc[frame["i_zt_over_h_t"] < LOW_INFORMATION_RATIO, param].tolist()
    if low:
        values_text = ", ".join(map(str, low))
        print(_low_information_note(f"I(Z;T)/H(T) at {param} = {values_text}", "they carry"))
    print(f"wrote {out / 'sweep.csv'}, {out / 'sweep.md'}, {out / 'sweep.png'}")
    sys.stdout.flush()
    return 0


_OFFICIAL_ID = "path"  # the official files' sample key
_OFFICIAL_LABEL = "class"
_GRANULARITY_PREFIX = "label_gran_"
_EXAMPLE_IDS = 5  # ids quoted in an error message


def _register_import(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sub = commands.add_parser(
        "import-official",
        help="assignment files from the official meta_data_*.csv cluster columns",
        description="Import the clusters of the official Cl-InfoNCE code: read a "
        "meta_data_*.csv file (index column, path, class, label_gran_<k> columns, a "
        "trailing count row) and write one assignment file (id,cluster + sidecar) per "
        "chosen label_gran_<k> column, optionally checking its ids against our metadata.",
        epilog=IMPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.add_argument("meta_csv", help="an official meta_data_*.csv file")
    sub.add_argument("--column", help="the cluster column to import, e.g. label_gran_10")
    sub.add_argument("--out", help="assignment CSV to write (its sidecar: <out>.json)")
    sub.add_argument(
        "--all-columns",
        metavar="OUTDIR",
        help="import every label_gran_<k> column instead, to OUTDIR/<column>.csv",
    )
    sub.add_argument(
        "--table", help="our metadata table (.csv .tsv .parquet .jsonl) to check the ids against"
    )
    sub.add_argument(
        "--dataset",
        help="or check against this dataset, read from --root by its reader: ut-zappos50k, "
        "cub-200-2011, wider-attribute or imagenet100",
    )
    sub.add_argument("--root", help="the dataset folder for --dataset")
    sub.add_argument(
        "--split",
        default="train",
        help="rows of this split of the checked table must all get a cluster (default: train; "
        "not checked when the table has no 'split' column)",
    )
    sub.add_argument(
        "--no-ami",
        action="store_true",
        help="skip the adjusted mutual information (slow for ~10^4 clusters)",
    )
    sub.set_defaults(func=_run_import)


def _granularity_columns(official: pd.DataFrame, args: argparse.Namespace, path: Path) -> list[str]:
    """The columns to import, checked against the file and the output options."""
    available = sorted(
        (str(c) for c in official.columns if str(c).startswith(_GRANULARITY_PREFIX)),
        key=_natural_key,
    )
    if not available:
        raise ValueError(
            f"{path}: no {_GRANULARITY_PREFIX}<k> columns (columns: "
            f"{', '.join(map(str, official.columns))}); the official meta_data_train*.csv "
            f"files hold the clusters, meta_data_val.csv only path and class"
        )
    if args.all_columns is not None:
        if args.column is not None or args.out is not None:
            raise ValueError("give --all-columns OUTDIR, or --column with --out, not both")
        return available
    if args.column is None or args.out is None:
        raise ValueError(
            f"pass --column and --out (or --all-columns OUTDIR); columns in {path.name}: "
            f"{', '.join(available)}"
        )
    if args.column not in official.columns:
        raise ValueError(
            f"--column {args.column!r} is not in {path}; its cluster columns: "
            f"{', '.join(available)}"
        )
    return [args.column]


def _reference_table(args: argparse.Namespace) -> tuple[pd.DataFrame, str] | None:
    """The metadata table the ids are checked against (``--table`` or ``--dataset``)."""
    if args.table is not None and args.dataset is not None:
        raise ValueError("give --table or --dataset (with --root), not both")
    if (args.dataset is None) != (args.root is None):
        raise ValueError("--dataset and --root go together: --dataset NAME --root DIR")
    if args.table is not None:
        from clinfonce.clusters import read_table

        return read_table(args.table), str(args.table)
    if args.dataset is not None:
        from clinfonce.data.official import read_official

        print(f"reading {args.dataset} from {args.root} to check the ids", flush=True)
        return read_official(args.dataset, args.root), f"{args.dataset} at {args.root}"
    return None


def _examples(values: Sequence[str]) -> str:
    return ", ".join(repr(v) for v in values[:_EXAMPLE_IDS])


def check_official_ids(
    official: pd.DataFrame, table: pd.DataFrame, where: str, *, split: str | None = "train"
) -> dict[str, Any]:
    """Check that the official ``path`` ids and a metadata table describe the same samples.

    Every official id must be a sample id of ``table`` (``id``, else ``path``), and every row
    of ``table`` in ``split`` (when it has a ``split`` column) must be among the official
    ids, as training joins them. The official ``class`` and the table's ``label`` are
    compared too: they may number classes differently but must group rows the same way.

    Returns:
        What was checked, for the sidecar.

    Raises:
        ValueError: ids that do not match, with counts, examples and a hint.

    Examples:
        >>> official = pd.DataFrame({"path": ["a/1.jpg"], "class": [3]})
        >>> table = pd.DataFrame({"id": ["a/1.jpg", "b/2.jpg"], "split": ["train", "test"]})
        >>> check_official_ids(official, table, "meta.csv")["matched"]
        1
    """
    from clinfonce.clusters.tables import resolve_id_column, sample_ids

    id_column = resolve_id_column(table)
    ours = pd.Index(sample_ids(table, id_column))
    theirs = pd.Index(sample_ids(official, _OFFICIAL_ID))
    unmatched = theirs[~theirs.isin(ours)]
    if len(unmatched):
        found = pd.Index([Path(p).name for p in unmatched]).isin([Path(p).name for p in ours])
        hint = (
            "; their file names do occur in the table, so the folders differ (official "
            f"{unmatched[0]!r} vs table {ours[0]!r}): the images are laid out differently"
            if found.all()
            else f"; official ids look like {theirs[0]!r}, the table's {id_column!r} like "
            f"{ours[0]!r}"
        )
        raise ValueError(
            f"{len(unmatched)} of {len(theirs)} official ids are not in {where} (column "
            f"{id_column!r}), e.g. {_examples(list(unmatched))}{hint}; use the table of the "
            "same dataset release, read by its reader"
        )
    report: dict[str, Any] = {
        "table": where,
        "id_column": id_column,
        "rows": len(table),
        "matched": len(theirs),
        "split": None,
        "labels_agree": None,
    }
    if split is not None and "split" in table.columns:
        in_split = ours[(table["split"].astype(str) == split).to_numpy()]
        if len(in_split) == 0:
            present = ", ".join(sorted(table["split"].astype(str).unique()))
            raise ValueError(f"{where}: no rows with split == {split!r} (present: {present})")
        uncovered = in_split[~in_split.isin(theirs)]
        if len(uncovered):
            raise ValueError(
                f"{len(uncovered)} of {len(in_split)} {split!r} rows of {where} have no "
                f"official cluster, e.g. {_examples(list(uncovered))}; training on that split "
                "would fail. Was the table read with the official split (e.g. UT-Zappos50K's "
                "seed 0)? Or pass --split for the split the file covers"
            )
        report["split"] = split
    if _OFFICIAL_LABEL in official.columns and "label" in table.columns:
        label = table.set_index(ours)["label"].loc[theirs].to_numpy()
        pairs = pd.DataFrame({"official": official[_OFFICIAL_LABEL].to_numpy(), "ours": label})
        agree = bool(
            (pairs.groupby("official")["ours"].nunique() == 1).all()
            and (pairs.groupby("ours")["official"].nunique() == 1).all()
        )
        report["labels_agree"] = agree
    return report


def _run_import(args: argparse.Namespace) -> int:
    from clinfonce.clusters import cluster_metrics, read_table, write_assignment
    from clinfonce.clusters.builders import run_builder
    from clinfonce.clusters.io import file_sha256
    from clinfonce.clusters.tables import require_columns, sample_ids

    path = Path(args.meta_csv)
    official = read_table(path)
    require_columns(official, [_OFFICIAL_ID], f"{path} (an official meta_data file)")
    columns = _granularity_columns(official, args, path)
    ids = sample_ids(official, _OFFICIAL_ID)
    reference = _reference_table(args)
    checked = None
    if reference is not None:
        checked = check_official_ids(official, reference[0], reference[1], split=args.split)
        print(f"all {checked['matched']} official ids found in {reference[1]}", end="")
        if checked["split"] is not None:
            print(f"; every {checked['split']!r} row of it has a cluster", end="")
        print()
        if checked["labels_agree"] is False:
            print(
                f"warning: the official {_OFFICIAL_LABEL!r} and the table's 'label' group the "
                "rows differently (not just a renumbering); check that both describe the same "
                "images"
            )
    labels = official[_OFFICIAL_LABEL] if _OFFICIAL_LABEL in official.columns else None
    source = {"path": str(path), "sha256": file_sha256(path), "rows": len(official)}
    if len(columns) > 1:
        print(f"importing {len(columns)} columns of {path} to {args.all_columns}", flush=True)
    targets = {
        column: Path(args.out)
        if args.all_columns is None
        else Path(args.all_columns) / f"{column}.csv"
        for column in columns
    }
    for target in targets.values():  # all checked before anything is written
        check_assignment_output(args, target)
    for column, target in targets.items():
        result = run_builder(official, "column", column=column)
        metrics = cluster_metrics(result.ids, labels, ami=not args.no_ami)
        sidecar = {
            "builder": "official-import",
            "params": {"column": column},
            "details": {"renumbered": "official values in sorted order -> 0..K-1"},
            "input": source,
            "id_column": _OFFICIAL_ID,
            "label_column": None if labels is None else _OFFICIAL_LABEL,
            "checked_against": checked,
            "metrics": metrics,
            "clinfonce_version": __version__,
        }
        write_assignment(target, ids, result.ids, sidecar)
        if len(columns) == 1:
            print(f"{column} of {path}:")
            print("\n".join(_metric_lines(metrics)))
        else:
            quality = (
                ""
                if labels is None
                else f", H(Z|T)={metrics['h_z_given_t']:.4f}, I(Z;T)={metrics['i_zt']:.4f}"
            )
            print(f"  {column}: K={result.num_clusters}{quality}", flush=True)
        print(f"wrote {target} ({len(ids)} rows, {result.num_clusters} clusters) and {target}.json")
    return 0
