"""``clinfonce embed``: export the encoder features of a dataset for any trained checkpoint."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

EPILOG = """examples:
  clinfonce embed --checkpoint runs/fashion-mnist-clinfonce/checkpoints/last.ckpt --out emb/
  clinfonce embed --checkpoint runs/fashion-mnist-clinfonce --split test --out emb-test/
  # another dataset through the same encoder: its config, changed by overrides
  clinfonce embed --checkpoint runs/syn/checkpoints/best.ckpt --config other.yaml \\
      data.options.n_samples=5000 --out emb-other/
  # a new table of image files through a run's encoder, decoded as the run decoded its own
  clinfonce embed --checkpoint runs/photos --table new-photos.csv --out emb-new/
  # K-means clusters of the embedding, ready to train on (clusters.assignment)
  clinfonce clusters build emb/index.csv --builder kmeans --embeddings emb/embeddings.npy \\
      --n-clusters 100 --out kmeans-100.csv

Writes embeddings.npy (float32 [N, D], the encoder output of the un-augmented eval view,
before the projection head), index.csv (line i describes embedding i: row = the sample's row
in the dataset's metadata table, id, label, split) and embeddings.json (what was embedded,
from which checkpoint). Without --split every row is embedded, in table order.
"""


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by the commands that load a trained checkpoint."""
    parser.add_argument(
        "--which",
        choices=("last", "best"),
        default="last",
        help="for a run directory: checkpoints/last.ckpt (default; the final model) or "
        "best.ckpt (best online kNN monitor, which looked at the test split)",
    )
    parser.add_argument(
        "--config",
        help="config whose data section names the data (default: the run directory's "
        "config.yaml, else the config stored in the checkpoint); the model always comes "
        "from the checkpoint",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides, e.g. data.options.root=/data/cub",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ..."
    )
    parser.add_argument(
        "--batch-size", type=int, default=512, help="images per forward pass (default 512)"
    )
    parser.add_argument(
        "--num-workers", type=int, default=0, help="loader workers for image files (default 0)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress messages")


def load_checkpoint(args: argparse.Namespace, path: str | Path) -> Any:
    """The :class:`~clinfonce.runs.load.LoadedRun` of ``path`` with the shared options."""
    from clinfonce.evaluation.features import resolve_device
    from clinfonce.runs.load import load_run

    return load_run(
        path,
        which=args.which,
        config=args.config,
        overrides=args.overrides,
        device=resolve_device(args.device),
    )


def progress_log(args: argparse.Namespace) -> Callable[[str], None]:
    """Progress messages go to stderr (stdout keeps the results), or nowhere with --quiet."""

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    return log


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``embed`` sub-command."""
    parser = subparsers.add_parser(
        "embed",
        help="export encoder embeddings (.npy + index CSV) of a dataset for a checkpoint",
        description="Embed the rows of a dataset with a trained encoder: the checkpoint gives "
        "the model, its run's config (or --config, with overrides) gives the data.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="CKPT|RUN_DIR",
        help="a .ckpt file, or a run directory (uses its checkpoints/<--which>.ckpt)",
    )
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace embeddings.npy/index.csv in --out that clinfonce did not write",
    )
    parser.add_argument(
        "--table",
        metavar="FILE",
        help="embed this metadata table of image files instead of the run's data (paths in "
        "the run's path column or 'path', relative to the table's folder or --image-root)",
    )
    parser.add_argument("--image-root", help="with --table: the folder its paths start from")
    parser.add_argument(
        "--split",
        nargs="+",
        metavar="SPLIT",
        help="embed only rows of these splits (values of data.split_column; default: all rows)",
    )
    add_checkpoint_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the checkpoint, embed, print where the files went."""
    from clinfonce.runs.embed import embed_run

    loaded = load_checkpoint(args, args.checkpoint)
    if args.table is not None:
        from clinfonce.runs.encoder import with_table

        module = loaded.module
        loaded.config = with_table(
            loaded.config,
            args.table,
            args.image_root,
            channels=int(module.mean.shape[1]),
            size=int(module.image_size),
        )
    check_embed_outputs(args, loaded.config.to_dict())
    log = progress_log(args)
    config = loaded.config
    log(f"checkpoint {loaded.checkpoint} ({config.method.name}, {config.model.encoder})")
    info = embed_run(
        loaded,
        args.out,
        splits=args.split,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        device=loaded.module.device,
        log=log,
        progress=not args.quiet,
    )
    print(
        f"wrote {info['count']} x {info['dim']} embeddings to {info['embeddings']}, index "
        f"{info['index']}"
    )
    return 0


#: The first line of an ``index.csv`` written by ``embed``.
INDEX_HEADER = "row,id,label,split"


def check_embed_outputs(args: argparse.Namespace, config: dict[str, Any]) -> None:
    """The files ``embed`` writes in ``--out`` must not be inputs (the checkpoint, the
    config, the files its data and clusters sections name), nor foreign files (an earlier
    export, even one cut short, is recognised by its sidecar or index and replaced)."""
    from clinfonce.outputs import check_output_file, existing_paths

    folder = Path(args.out)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {folder} is a file; give a folder")
    inputs = list(
        existing_paths(
            [args.checkpoint, args.config, args.table, config["data"], config["clusters"]]
        )
    )
    index = folder / "index.csv"
    ours = (folder / "embeddings.json").is_file() or (
        index.is_file() and index.read_text(errors="replace").startswith(INDEX_HEADER)
    )
    for name in ("embeddings.npy", "index.csv", "embeddings.json"):
        check_output_file(folder / name, inputs, force=args.force, ours=lambda _: ours)
