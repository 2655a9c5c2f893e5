"""``clinfonce experiment``: run a grid of methods x cluster settings x seeds and report it."""

from __future__ import annotations

import argparse
import logging
import shlex

EPILOG = """examples:
  clinfonce experiment --config configs/experiments/smoke.yaml --out /tmp/smoke
  clinfonce experiment --config configs/experiments/fashion-mnist-hierarchy.yaml --dry-run
  clinfonce experiment --config configs/experiments/fashion-mnist-hierarchy.yaml \\
      --seeds 0 --only simclr,supcon train.epochs=2

The output folder (default runs/experiments/<name>) receives results.csv (one row per run
and seed), summary.csv, results.md (mean ± std over seeds, gap closed), accuracy.png,
sweep-<group>.png for sweeps, and runs/<name>-seed<s>/ (each training run). Rerunning the
same command skips finished runs and continues interrupted ones from their last.ckpt.

experiment file:
  base: ../fashion-mnist-simclr.yaml     # training config (path or mapping)
  seeds: [0, 1, 2]
  evaluation: {knn_k: 20, cs: [1.0], max_train: 20000}
  runs:
    - {name: simclr, set: {method.name: simclr}}
    - name: clinfonce-level2
      set: {method.name: clinfonce, clusters.builder: attributes,
            clusters.params: {columns: [level2]}}
    - {name: supcon, set: {method.name: supcon}}
    - name: topk                         # a sweep: topk-k1, topk-k2, ...
      sweep: {key: clusters.params.k, values: [1, 2, 3]}
      set: {method.name: clinfonce, clusters.builder: attributes}
    - {name: random-init, untrained: true}   # the untrained encoder, evaluated
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``experiment`` sub-command."""
    parser = subparsers.add_parser(
        "experiment",
        help="train and evaluate a grid of runs x seeds; write a results table and plots",
        description="Run every (run, seed) cell of an experiment file with one shared "
        "training budget: train, then evaluate with the linear probe and kNN. Writes "
        "results.csv, a Markdown table of mean ± std over seeds (with the gap closed between "
        "SimCLR and SupCon) and plots into one folder. Resumable: finished runs are skipped.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, help="experiment YAML file")
    parser.add_argument("--out", help="output folder (default runs/experiments/<experiment name>)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the runs and what each needs (train, resume, evaluate, done); run nothing",
    )
    parser.add_argument(
        "--seeds", help="comma-separated seeds replacing the file's, e.g. 0 or 0,1,2"
    )
    parser.add_argument("--only", help="comma-separated run names to run (default: all)")
    parser.add_argument(
        "--device",
        default="auto",
        help="evaluation device (default auto: CUDA when available, else CPU)",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="training-config overrides for every run, applied last, e.g. train.epochs=2",
    )
    parser.set_defaults(func=run)


def _split(text: str | None, what: str) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError(f"{what}: give a comma-separated list, got {text!r}")
    return items


def _seeds(text: str | None) -> list[int] | None:
    items = _split(text, "--seeds")
    if items is None:
        return None
    try:
        return [int(s) for s in items]
    except ValueError:
        raise ValueError(f"--seeds takes integers like 0,1,2, got {text!r}") from None


def _command(args: argparse.Namespace) -> str:
    parts = ["clinfonce", "experiment", "--config", args.config]
    for flag, value in (("--out", args.out), ("--seeds", args.seeds), ("--only", args.only)):
        if value is not None:
            parts += [flag, value]
    return shlex.join([*parts, *args.overrides])


def run(args: argparse.Namespace) -> int:
    """Plan (``--dry-run``) or run the experiment; prints progress and the table."""
    from clinfonce.experiments import (
        default_out_dir,
        expand_grid,
        load_experiment,
        plan_experiment,
        run_experiment,
    )
    from clinfonce.experiments.results_table import describe_clusters, method_label
    from clinfonce.experiments.runner import EXPERIMENT_FILES
    from clinfonce.outputs import check_output_folder, existing_paths

    spec = load_experiment(args.config)
    seeds, only = _seeds(args.seeds), _split(args.only, "--only")
    out = args.out or str(default_out_dir(spec))
    if args.dry_run:
        cells = expand_grid(spec, args.overrides, seeds=seeds, only=only)
        print(f"experiment {spec.name}: {len(cells)} run(s) into {out} (dry run: nothing runs)")
        for cell, status in plan_experiment(cells, out, spec):
            clusters = "" if cell.run.untrained else describe_clusters(cell.values)
            print(
                f"  {cell.index + 1:>3}/{len(cells)}  {status:<8}  {cell.run.name}  seed "
                f"{cell.seed}  method {method_label(cell)}"
                + (f"  clusters {clusters}" if clusters else "")
            )
        return 0
    check_output_folder(out, EXPERIMENT_FILES, existing_paths([args.config]), "--out")
    # Lightning's per-run notices (accelerator, tips) would drown the progress lines.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    result = run_experiment(
        spec,
        out,
        overrides=args.overrides,
        seeds=seeds,
        only=only,
        device=args.device,
        command=_command(args),
    )
    print()
    print(result.files["markdown"].read_text())
    written = ", ".join(p.name for p in result.files.values())
    print(f"wrote {written} into {result.out_dir}")
    return 0
