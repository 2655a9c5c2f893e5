"""``clusters import-official``: assignment files from the official meta_data_*.csv
cluster columns, with their ids checked against our metadata.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from clinfonce import __version__
from clinfonce.cli.clusters.build import check_assignment_output
from clinfonce.cli.clusters.report import metric_lines
from clinfonce.cli.clusters.sweep import natural_key
from clinfonce.data.splits import split_mask

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


_OFFICIAL_ID = "path"  # the official files' sample key
_OFFICIAL_LABEL = "class"
_GRANULARITY_PREFIX = "label_gran_"
_EXAMPLE_IDS = 5  # ids quoted in an error message


def register_import(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    sub.set_defaults(func=run_import)


def _granularity_columns(official: pd.DataFrame, args: argparse.Namespace, path: Path) -> list[str]:
    """The columns to import, checked against the file and the output options."""
    available = sorted(
        (str(c) for c in official.columns if str(c).startswith(_GRANULARITY_PREFIX)),
        key=natural_key,
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
        in_split = ours[split_mask(table, "split", split, where=where, option="split")]
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


def run_import(args: argparse.Namespace) -> int:
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
            print("\n".join(metric_lines(metrics)))
        else:
            quality = (
                ""
                if labels is None
                else f", H(Z|T)={metrics['h_z_given_t']:.4f}, I(Z;T)={metrics['i_zt']:.4f}"
            )
            print(f"  {column}: K={result.num_clusters}{quality}", flush=True)
        print(f"wrote {target} ({len(ids)} rows, {result.num_clusters} clusters) and {target}.json")
    return 0
