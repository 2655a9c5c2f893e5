"""``clusters build``: one assignment file (and its sidecar) from a metadata table."""

from __future__ import annotations

import argparse
from pathlib import Path

from clinfonce import __version__
from clinfonce.cli.clusters.inputs import builder_inputs
from clinfonce.cli.clusters.report import low_information_note, metric_lines
from clinfonce.clusters.suggest import LOW_INFORMATION_RATIO

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


def run_build(args: argparse.Namespace) -> int:
    from clinfonce.clusters import cluster_metrics, write_assignment
    from clinfonce.clusters.builders import run_builder
    from clinfonce.clusters.io import file_sha256
    from clinfonce.clusters.tables import resolve_id_column, sample_ids

    prep = builder_inputs(args, need_label=False)
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
    print("\n".join(metric_lines(metrics)))
    ratio = metrics.get("i_zt_over_h_t")
    if ratio is not None and ratio < LOW_INFORMATION_RATIO:
        print(low_information_note(f"I(Z;T)/H(T) = {ratio:.2f}", "these clusters carry"))
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
