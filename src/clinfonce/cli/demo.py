"""``clinfonce demo``: the two-stage method end to end, on real data when it is there.

The work is :mod:`clinfonce.experiments.demo`, a preset of the experiment runner: stage 1
clusters by auxiliary columns, stage 2 trains SimCLR, Cl-InfoNCE and SupCon with one small
budget and compares their frozen encoders (and an untrained one, the floor) by kNN and
linear-probe top-1.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

EPILOG = """examples:
  clinfonce demo                        # ~5 min on 2 CPU cores; writes runs/demo
  clinfonce demo --out /tmp/demo --quick   # a tiny budget, a minute or less
  clinfonce demo --data synthetic-attributes

Writes results.md, results.json and results.png into --out, and the experiment behind them
(its runs, results.csv) into --out/experiment; rerunning skips runs already finished, as
`clinfonce experiment` does.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` sub-command."""
    parser = subparsers.add_parser(
        "demo",
        help="run the two-stage method end to end and compare with SimCLR and SupCon",
        description="Build clusters from auxiliary information, train SimCLR, Cl-InfoNCE "
        "and SupCon with the same small budget, and compare kNN and linear-probe top-1. "
        "Uses Fashion-MNIST when its idx files are found, else the built-in "
        "synthetic-attributes data.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument(
        "--data",
        choices=("auto", "fashion-mnist", "synthetic-attributes"),
        default="auto",
        help="dataset (default auto: Fashion-MNIST if found, else synthetic-attributes)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny budget (smoke test)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every run (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo; prints progress, the cluster metrics and the results table."""
    from clinfonce.experiments.demo import plan, run_demo

    # Lightning's per-run notices (accelerator, tips) would drown the demo's own report.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    run_demo(Path(args.out), plan(args.data, args.quick), seed=args.seed, quick=args.quick)
    return 0
