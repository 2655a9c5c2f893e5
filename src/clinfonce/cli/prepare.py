"""``clinfonce prepare``: decode a table's images once into a memory-mapped array."""

from __future__ import annotations

import argparse

from clinfonce.cli.clusters.options import ENCODING_HELP

EPILOG = """Each image is decoded once (JPEGs at a reduced scale where that loses nothing), its
shorter side resized to SIZE and the centre square cropped, and written into a uint8 array
that training memory-maps and augments on the device. Rows whose file keeps its path, size
and modification time are reused by later calls; changed or new files are decoded again,
and an interrupted call resumes. Training finds the array by itself with

  data.dataset: table
  data.options: {table: TABLE, prepare: auto}     # or prepare: true
  data.image_size: SIZE

examples:
  clinfonce prepare data/cub/metadata.csv --size 224 --image-root data/cub/images
  clinfonce prepare meta.csv --size 64 --channels 1 --out /scratch/prepared --workers 8
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``prepare`` sub-command."""
    parser = subparsers.add_parser(
        "prepare",
        help="decode a table's image files once into a memory-mapped array for fast training",
        description="Decode every image listed in a metadata table, in parallel, into a "
        "uint8 array at the training resolution, stored beside a copy of the table.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("table", help="metadata table (CSV, TSV, Parquet or JSONL)")
    parser.add_argument("--size", type=int, required=True, help="side of the stored images")
    parser.add_argument(
        "--image-root", help="folder the paths are relative to (default: the table's folder)"
    )
    parser.add_argument("--path-column", default="path", help="column of image paths")
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3), help="3 RGB, 1 gray")
    parser.add_argument(
        "--out",
        help="folder of prepared arrays, as data.options.prepare_dir (default: "
        ".clinfonce-prepared beside the table)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="decoding processes (default: the usable cores; 1 decodes in this process)",
    )
    parser.add_argument(
        "--missing",
        choices=("error", "skip"),
        default="error",
        help="missing or unreadable images: stop (error) or leave them out with a warning",
    )
    parser.add_argument("--encoding", default="utf-8", help=ENCODING_HELP)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Prepare the array and say where it is and what was decoded."""
    from clinfonce.data.custom_sources import load_table_source
    from clinfonce.data.prepared import DONE
    from clinfonce.data.prepared_sources import prepare_source_array

    if args.size < 1:
        raise ValueError(f"--size must be a positive number of pixels, got {args.size}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(
            f"--workers must be at least 1 (1 decodes in this process), got {args.workers}"
        )
    source = load_table_source(
        args.table,
        image_root=args.image_root,
        path_column=args.path_column,
        channels=args.channels,
        missing=args.missing,
        prepare=True,
        prepare_dir=args.out,
        encoding=args.encoding,
    )
    prepared = prepare_source_array(source, args.size, workers=args.workers)
    print(
        f"prepared {len(source.table)} images at {args.size} px in {prepared.folder}: "
        f"{prepared.decoded} decoded, {prepared.reused} reused, "
        f"{int((prepared.status != DONE).sum())} unreadable"
    )
    return 0
