"""``clusters suggest``: rank the auxiliary columns as cluster sources."""

from __future__ import annotations

import argparse
from typing import Literal

import numpy as np

from clinfonce.cli.clusters.options import ENCODING_HELP, LABEL_DEFAULTS, comma_list
from clinfonce.data.splits import split_mask

SUGGEST_EPILOG = """examples:
  clinfonce clusters suggest meta.csv                    # labels from 'label' where present
  clinfonce clusters suggest meta.csv --label class --batch-size 128
  clinfonce clusters suggest meta.csv --hierarchy tree.csv --levels 1,2,3 --tags tags

Each candidate (every attribute column, joints of the top-k attributes, hierarchy levels,
top-k tag sets; a column of tag sets is found without --tags) is judged first without
labels: K, cluster sizes, and the expected number of other samples of an anchor's cluster
in a batch (none: the loss is SimCLR; most of the batch: it cannot tell samples apart).
Where rows have labels (a few per class suffice), by I(Z;T), H(Z|T) and I(Z;T)/H(T),
bias-corrected, with 90% bootstrap intervals; a source with no measurable information
about the labels ranks last, and a source that is the label under other names (every
cluster inside one label and every label inside one cluster) after it: that is SupCon,
not weak supervision. `clinfonce run --aux auto` trains on the first
source with the recommended objective.
"""


def _per_cluster(text: str) -> int | Literal["auto"]:
    if text == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {text!r}") from None


def register_suggest(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    sub.add_argument(
        "--per-cluster",
        type=_per_cluster,
        default="auto",
        metavar="Q",
        help="count positives for cluster-balanced batches of Q cluster mates "
        "(train.per_cluster); 0: random batches; auto (default): as `clinfonce run` trains, "
        "balanced only for sources too fine for a random batch",
    )
    sub.add_argument(
        "--memory",
        type=int,
        default=0,
        metavar="M",
        help="count positives with a memory of M past projections (method.memory.size)",
    )
    sub.add_argument(
        "--columns", type=comma_list, help="attribute columns to consider (default: all)"
    )
    sub.add_argument(
        "--exclude",
        type=comma_list,
        default=[],
        help="columns that are not auxiliary information (id, path, split are skipped anyway)",
    )
    sub.add_argument("--hierarchy", metavar="FILE", help="child,parent CSV or JSON tree")
    sub.add_argument(
        "--levels",
        type=comma_list,
        help="hierarchy levels (default: every level above the leaves; the leaf level is "
        "the leaf column itself, usually the label)",
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
    sub.add_argument("--encoding", default="utf-8", help=ENCODING_HELP)
    sub.set_defaults(func=run_suggest)


def run_suggest(args: argparse.Namespace) -> int:
    from clinfonce.clusters import read_table
    from clinfonce.clusters.attributes import RESERVED_COLUMNS
    from clinfonce.clusters.suggest import suggest, suggestion_markdown
    from clinfonce.clusters.tables import require_columns

    table = read_table(args.table, args.encoding)
    embeddings = None if args.embeddings is None else np.load(args.embeddings)
    if embeddings is not None and len(embeddings) != len(table):
        raise ValueError(
            f"--embeddings {args.embeddings}: {len(embeddings)} rows, but {args.table} has "
            f"{len(table)}; embed every row of the table, in order"
        )
    if args.split is not None:
        keep = split_mask(table, "split", args.split, where=args.table, option="--split")
        table = table[keep].reset_index(drop=True)
        embeddings = None if embeddings is None else embeddings[keep]
    label = args.label or next((c for c in LABEL_DEFAULTS if c in table.columns), None)
    if label is not None:
        require_columns(table, [label], "--label")
    hierarchy = None
    if args.hierarchy is not None:
        leaf = args.hierarchy_column or label
        if leaf is None:
            raise ValueError("--hierarchy needs its leaf column: pass --hierarchy-column COL")
        levels = None if args.levels is None else [int(v) for v in args.levels]
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
        per_cluster=args.per_cluster,
        memory=args.memory,
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
