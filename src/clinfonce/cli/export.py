"""``clinfonce export``: a run's encoder as TorchScript or ONNX, checked against the run."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  clinfonce export runs/photos                          # runs/photos/export/encoder.pt
  clinfonce export runs/photos --format onnx --out photos-encoder.onnx

The exported model takes float32 [batch, C, S, S] pixels in [0, 1] at the run's input size
(resized and centre-cropped) and returns the encoder features; the run's normalisation is
inside it. A JSON sidecar beside it says C, S, the normalisation and the check: the export
is run once against the run's own encoder and refused when they differ by more than 1e-5 of
the largest feature. ONNX needs `pip install 'clinfonce[onnx]'`.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``export`` sub-command."""
    parser = subparsers.add_parser(
        "export",
        help="write a run's encoder as TorchScript or ONNX (normalisation included)",
        description="Export the encoder of a finished run, checked against the run.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", metavar="RUN_DIR|CKPT", help="a run directory or a .ckpt file")
    parser.add_argument(
        "--format",
        choices=("torchscript", "onnx"),
        default="torchscript",
        help="default torchscript",
    )
    parser.add_argument(
        "--out", help="the file to write (default: <run>/export/encoder.pt or .onnx)"
    )
    parser.add_argument(
        "--which", choices=("last", "best"), default="last", help="the run's checkpoint"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace an --out file that clinfonce did not write"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the run, export, print where the file went and how close it is."""
    from clinfonce.outputs import check_output_file
    from clinfonce.runs.export import export_encoder, export_path
    from clinfonce.runs.load import load_run

    loaded = load_run(args.run, which=args.which)
    base = loaded.run_dir or loaded.checkpoint.parent
    out = Path(args.out) if args.out else export_path(base, args.format)
    sidecar = out.with_suffix(out.suffix + ".json")
    for path in (out, sidecar):
        check_output_file(
            path, [loaded.checkpoint], force=args.force, ours=lambda _: sidecar.is_file()
        )
    result = export_encoder(loaded, out, args.format)
    print(
        f"wrote {result.path} ({args.format}; differs from the run by at most "
        f"{result.max_difference:.1e} of the largest feature) and {result.sidecar}"
    )
    return 0
