"""``clinfonce evaluate``: linear probe, weighted kNN and cluster views of trained encoders."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from clinfonce.cli.embed import add_checkpoint_arguments, load_checkpoint, progress_log

EPILOG = """examples:
  clinfonce evaluate --run runs/fashion-mnist-clinfonce
  clinfonce evaluate --run runs/fashion-mnist-clinfonce --tsne --knn-k 20 200
  # several runs in one table (each run's files still go to its own directory)
  clinfonce evaluate --run runs/fm-simclr --run runs/fm-clinfonce --run runs/fm-supcon
  # large data: the SGD probe on crop + flip views, on a GPU
  clinfonce evaluate --checkpoint runs/in100/checkpoints/last.ckpt --probe sgd --device cuda
  # a checkpoint outside its run directory, data from a config file
  clinfonce evaluate --checkpoint model.ckpt --config configs/fashion-mnist-clinfonce.yaml \\
      --out eval/

Measures, on the encoder output (before the projection head) of un-augmented images:
  linear probe  logistic: multinomial logistic regression on standardised features, C from
                a grid picked on a 20% validation split, refitted on all training images;
                sgd: a linear layer trained on random crop + flip views (lr cosine);
  kNN           cosine similarity, k neighbours vote with weight exp(sim / T), T = 0.07;
  K-means NMI   spherical K-means of the test embedding (K = number of labels) vs labels;
  t-SNE         (--tsne) a PNG coloured by label and by K-means cluster.
Top-1 and top-5 (%) on the test split (or the training monitor's hold-out without one).
Writes evaluation-<checkpoint>.json and .md (and tsne-<checkpoint>.png) into the run
directory, or --out; prints the table.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``evaluate`` sub-command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="linear probe, weighted kNN, K-means NMI and t-SNE of trained encoders",
        description="Evaluate frozen encoders of trained runs: linear probe and weighted kNN "
        "top-1/top-5, NMI between a K-means of the embedding and the labels, and a t-SNE "
        "map. Results go to a JSON and a Markdown file per checkpoint.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_argument_group("what to evaluate (repeat to compare)")
    source.add_argument(
        "--run", action="append", default=[], metavar="RUN_DIR", help="a run directory"
    )
    source.add_argument(
        "--checkpoint", action="append", default=[], metavar="CKPT", help="a .ckpt file"
    )
    add_checkpoint_arguments(parser)
    probe = parser.add_argument_group("linear probe")
    probe.add_argument(
        "--probe",
        choices=("logistic", "sgd", "none"),
        default="logistic",
        help="logistic (default), sgd (for large data) or none",
    )
    probe.add_argument(
        "--cs",
        type=float,
        nargs="+",
        metavar="C",
        help="logistic: inverse regularisation grid (default 0.01 0.1 1 10; one value "
        "skips the validation split)",
    )
    probe.add_argument(
        "--val-fraction", type=float, default=0.2, help="logistic: validation share (0.2)"
    )
    probe.add_argument("--sgd-epochs", type=int, default=100, help="sgd: epochs (100)")
    probe.add_argument("--sgd-lr", type=float, default=0.3, help="sgd: peak lr, cosine (0.3)")
    probe.add_argument("--sgd-batch-size", type=int, default=128, help="sgd: batch size (128)")
    probe.add_argument("--sgd-weight-decay", type=float, default=0.0, help="sgd: weight decay")
    knn = parser.add_argument_group("kNN and cluster views")
    knn.add_argument(
        "--knn-k",
        type=int,
        nargs="+",
        default=[20, 200],
        metavar="K",
        help="neighbour counts (default 20 200)",
    )
    knn.add_argument("--knn-temperature", type=float, default=0.07, help="vote temperature (0.07)")
    knn.add_argument("--no-nmi", action="store_true", help="skip the K-means NMI")
    knn.add_argument("--tsne", action="store_true", help="write the t-SNE PNG")
    knn.add_argument("--tsne-points", type=int, default=2000, help="t-SNE points (2000)")
    data = parser.add_argument_group("data")
    data.add_argument("--train-split", help="probe training split (default data.train_split)")
    data.add_argument("--test-split", help="test split (default monitor.split, i.e. test)")
    data.add_argument("--max-train", type=int, help="seeded subset of the training images")
    data.add_argument("--max-test", type=int, help="seeded subset of the test images")
    parser.add_argument("--seed", type=int, default=0, help="seed of subsets and probes (0)")
    parser.add_argument(
        "--out",
        help="output folder (default: each run's directory); with several runs, one "
        "sub-folder per run plus the combined evaluation.md/json",
    )
    parser.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~clinfonce.runs.eval_settings.EvalSettings` of the parsed options."""
    from clinfonce.runs.eval_settings import EvalSettings

    extra = {"cs": tuple(args.cs)} if args.cs else {}
    return EvalSettings(
        probe=args.probe,
        val_fraction=args.val_fraction,
        sgd_epochs=args.sgd_epochs,
        sgd_lr=args.sgd_lr,
        sgd_batch_size=args.sgd_batch_size,
        sgd_weight_decay=args.sgd_weight_decay,
        knn_ks=tuple(args.knn_k),
        knn_temperature=args.knn_temperature,
        nmi=not args.no_nmi,
        tsne=args.tsne,
        tsne_points=args.tsne_points,
        train_split=args.train_split,
        test_split=args.test_split,
        max_train=args.max_train,
        max_test=args.max_test,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        seed=args.seed,
        **extra,
    )


def run(args: argparse.Namespace) -> int:
    """Evaluate every given run/checkpoint, write the files, print the table."""
    from clinfonce.runs.evaluate import default_out_dir, evaluate_run
    from clinfonce.runs.evaluation_report import results_report, write_results

    targets = [*args.run, *args.checkpoint]
    if not targets:
        raise ValueError("give --run RUN_DIR or --checkpoint CKPT (repeat to compare several)")
    for path in args.run:
        if not Path(path).is_dir():
            raise FileNotFoundError(
                f"--run {path}: not a run directory (for a file use --checkpoint)"
            )
    settings = settings_from_args(args)
    log = progress_log(args)
    several = len(targets) > 1
    everything = []
    for target in targets:
        loaded = load_checkpoint(args, target)
        log(f"evaluating {loaded.checkpoint} ({loaded.config.method.name})")
        if args.out is None:
            out = default_out_dir(loaded)
        else:
            name = loaded.run_dir.name if loaded.run_dir is not None else loaded.checkpoint.stem
            out = Path(args.out) / name if several else Path(args.out)
        results = evaluate_run(
            loaded,
            settings,
            out_dir=out,
            device=loaded.module.device,
            log=log,
            progress=not args.quiet,
        )
        json_path, md_path = write_results(results, out)
        log(
            f"wrote {json_path} and {md_path}" + (f", {results['tsne']}" if results["tsne"] else "")
        )
        everything.append(results)
    report = results_report(everything)
    if several and args.out is not None:
        Path(args.out, "evaluation.md").write_text(report)
        Path(args.out, "evaluation.json").write_text(json.dumps(everything, indent=2))
    print(report, end="")
    return 0
