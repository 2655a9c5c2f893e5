"""``clinfonce run``: your own images and metadata, end to end, without a config file."""

from __future__ import annotations

import argparse
import logging

from clinfonce.cli.clusters.options import ENCODING_HELP

EPILOG = """examples:
  clinfonce run meta.csv --aux colour,material          # cluster by the joint value
  clinfonce run meta.csv --aux auto --compare simclr    # let `clusters suggest` pick
  clinfonce run meta.csv --hierarchy tree.csv --level 2
  clinfonce run meta.csv --tags tags --k 4              # presence of the 4 top tags
  clinfonce run meta.csv --kmeans 100                   # no auxiliary columns at all
  clinfonce run meta.csv --aux colour --epochs 20 --out runs/mine optim.lr=0.001
  clinfonce run meta.csv --aux colour --encoder convnext_tiny --weights imagenet
  clinfonce run meta.csv --aux colour --weights runs/simclr   # adapt an earlier run

The table has one row per image: a column of image paths (found automatically: the
column whose values are existing files, relative to the table's folder or --image-root),
optional `id`, `label` and `split` columns (by name; the label is only used to evaluate),
and your auxiliary columns. Settings are read off the data and printed first: image size
(median side, at most 224 px), grayscale, images in memory when they fit, the batch
clamped to the data, epochs from the step budget, and the backbone: small-cnn from scratch
for images of at most 64 px on a CPU, else a ResNet with ImageNet weights (ResNet-50 on a
GPU) fine-tuned at a tenth of the learning rate (docs/backbones.md).

Writes to --out (default runs/<table name>-<source>, numbered -2, -3... when taken, so runs
with other flags never collide): config.yaml (reproduce with
`clinfonce train --config`), checkpoints, clusters.csv, embeddings.npy + index.csv of every
kept row (each --compare run's too, in compare/<method>/), and report.md with plots
(cluster sizes, training loss, accuracy, t-SNE).
"""


def _columns(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give one or more column names, separated by commas")
    return names


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` sub-command."""
    parser = subparsers.add_parser(
        "run",
        help="your own images + metadata table: clusters, training, embeddings and a "
        "report in one command",
        description="Train on a table of your own images with their auxiliary information:\n"
        "stage 1 (clusters), stage 2 (Cl-InfoNCE), embeddings of every row, evaluation\n"
        "when a label column exists, and a report.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("table", help="metadata table (.csv .tsv .parquet .jsonl)")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. optim.lr=0.001"
    )
    source = parser.add_argument_group("auxiliary information (one of)")
    source.add_argument(
        "--aux",
        type=_columns,
        metavar="COL[,COL...]|auto",
        help="cluster by the joint value of these columns; auto: the source "
        "`clinfonce clusters suggest` ranks first",
    )
    source.add_argument(
        "--hierarchy",
        metavar="FILE",
        help="parents of every node: a child,parent CSV (empty parent: a root) or a JSON tree "
        "(docs/method.md §2 has an example)",
    )
    source.add_argument("--level", type=int, help="hierarchy level (root = 0)")
    source.add_argument(
        "--hierarchy-column", metavar="COL", help="the hierarchy's leaf column (default: label)"
    )
    source.add_argument(
        "--tags",
        metavar="COL",
        help="a column of tags (#a #b, a|b, JSON); clusters are the presence patterns of the "
        "top --k tags (found without this flag by --aux auto)",
    )
    source.add_argument(
        "--k",
        type=_positive,
        metavar="N",
        help="number of top tags with --tags (default: the advisor's pick of 1, 2, 4, 8)",
    )
    source.add_argument(
        "--overlap",
        metavar="RULE",
        help="with --tags: positives weighted by shared tags instead of tag-set clusters "
        "(any, jaccard, at-least-M), beside InfoNCE; `clinfonce clusters suggest --tags` "
        "says which it recommends",
    )
    source.add_argument("--clusters", metavar="FILE", help="an existing stage-1 assignment file")
    source.add_argument(
        "--kmeans", type=_positive, metavar="K", help="K-means of the model's own embedding"
    )
    training = parser.add_argument_group("training")
    training.add_argument(
        "--method",
        help="method.name (default, for every source: pure Cl-InfoNCE when labelled rows show "
        "the clusters carry at least half the label information, else Cl-InfoNCE + InfoNCE)",
    )
    training.add_argument("--epochs", type=_positive, help="epochs (default: from --steps)")
    training.add_argument(
        "--steps",
        type=_positive,
        default=500,
        help="step budget when --epochs is not given (default 500)",
    )
    training.add_argument(
        "--batch-size",
        type=_positive,
        default=256,
        help="batch (default 256, lowered to the training rows)",
    )
    training.add_argument(
        "--compare",
        type=_columns,
        default=[],
        metavar="METHOD[,METHOD]",
        help="also train these at the same budget and evaluate them (simclr, supcon, ...)",
    )
    training.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    training.add_argument(
        "--encoder",
        help="model.encoder: small-cnn, a torchvision model (resnet18, convnext_tiny, ...) or "
        "timm:NAME (default: small-cnn for small images on a CPU, else a pretrained ResNet)",
    )
    training.add_argument(
        "--weights",
        metavar="none|imagenet|PATH",
        help="model.weights: none, imagenet, or a state dict, checkpoint or run directory "
        "to start from (default: imagenet for the pretrained ResNet, else none)",
    )
    training.add_argument(
        "--out", help="run directory (default runs/<table name>-<source>, numbered when taken)"
    )
    data = parser.add_argument_group("data (detected when not given)")
    data.add_argument(
        "--image-root", help="folder the paths are relative to (default: the table's folder)"
    )
    for role in ("path", "id", "label", "split"):
        data.add_argument(f"--{role}-column", metavar="COL", help=f"the {role} column")
    data.add_argument("--image-size", type=_positive, help="model input side in px")
    data.add_argument(
        "--memory-budget",
        type=float,
        default=2048,
        metavar="MIB",
        help="keep decoded images in memory up to this size (default 2048 MiB)",
    )
    data.add_argument("--encoding", help=f"{ENCODING_HELP}; also data.options.encoding=...")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Plan from the data, print the summary, train, embed, evaluate, report."""
    from clinfonce.experiments.table_plan import TableRunOptions
    from clinfonce.experiments.table_run import run_table

    # Lightning's notices (accelerator lines, tips) would drown the run's own summary.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    options = TableRunOptions(
        table=args.table,
        aux=args.aux,
        hierarchy=args.hierarchy,
        level=args.level,
        hierarchy_column=args.hierarchy_column,
        tags=args.tags,
        k=args.k,
        overlap=args.overlap,
        kmeans=args.kmeans,
        clusters=args.clusters,
        method=args.method,
        epochs=args.epochs,
        steps=args.steps,
        batch_size=args.batch_size,
        out=args.out,
        compare=args.compare,
        overrides=args.overrides,
        image_root=args.image_root,
        path_column=args.path_column,
        id_column=args.id_column,
        label_column=args.label_column,
        split_column=args.split_column,
        image_size=args.image_size,
        memory_budget_mib=args.memory_budget,
        seed=args.seed,
        encoder=args.encoder,
        weights=args.weights,
        encoding=args.encoding,
    )
    result = run_table(options, log=lambda line: print(line, flush=True))
    print(f"run directory: {result.run_dir}")
    return 0
