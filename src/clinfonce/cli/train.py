"""``clinfonce train``: train an encoder from a YAML config with ``key=value`` overrides."""

from __future__ import annotations

import argparse

import yaml

EPILOG = """methods (method.name; docs/objectives.md, docs/kmeans-and-baselines.md):
{methods}

objective (replaces the method's terms; leave method.name at auto, or kmeans-clinfonce to
weight its clusterings kmeans-<K>):
  objective:
    - {loss: simclr, head: instance}
    - {loss: clinfonce, clusters: level1, weight: 0.5, head: cluster, start_epoch: 2}

examples:
  clinfonce train --config configs/fashion-mnist-clinfonce.yaml
  clinfonce train --config configs/fashion-mnist-simclr.yaml train.epochs=20 optim.lr=0.1
  clinfonce train --config configs/synthetic-attributes-clinfonce.yaml \\
      clusters.params.columns='[colour, size]' output.name=syn-k2
  clinfonce train --config configs/fashion-mnist-kmeans-clinfonce.yaml train.devices=2
  clinfonce train --resume runs/fashion-mnist-clinfonce     # continue exactly

A run directory (output.dir/output.name) receives run.json (run id), config.yaml (resolved),
clusters.csv and its sidecar, checkpoints/last.ckpt (every epoch, every
train.checkpoint_every_n_steps, and on Ctrl-C/SIGTERM/SLURM's SIGUSR1) and best.ckpt, CSV
and TensorBoard logs, summary.json. A new run needs an empty run directory, or
output.overwrite=true (which clears it). Interruptions: docs/interruptions.md.
Several devices or nodes (train.devices, train.num_nodes): docs/distributed.md.
"""


class _MethodsEpilog(argparse.RawDescriptionHelpFormatter):
    """Lists the registered methods in the epilog only when help is shown: the registry
    imports torch and Lightning, which commands that never train must not pay for."""

    def add_text(self, text: str | None) -> None:
        if text is EPILOG:
            from clinfonce.training.methods.registry import methods_help

            text = EPILOG.replace("{methods}", methods_help())
        super().add_text(text)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``train`` sub-command."""
    parser = subparsers.add_parser(
        "train",
        help="train an encoder with any method (Cl-InfoNCE, SimCLR, SupCon, K-means, "
        "baselines) from a config file",
        description="Train an encoder with a contrastive objective. Settings come from a "
        "YAML config (sections data, clusters, augment, model, method, objective, kmeans, "
        "baseline, optim, train, monitor, output), changed by dotted key=value overrides "
        "(values parsed as YAML).",
        epilog=EPILOG,
        formatter_class=_MethodsEpilog,
    )
    parser.add_argument(
        "--config", help="YAML config file (optional: the defaults plus overrides also work)"
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="overrides, e.g. train.epochs=5"
    )
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR|CKPT",
        help="continue a run from its last.ckpt (or the given checkpoint), with the same "
        "global step, weights, optimiser state and data order; uses the run's config.yaml "
        "unless --config is given",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config and exit"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Load the config, train, print where the run went and its final metrics."""
    from clinfonce.training import load_config, load_run_config, resolve_resume, train
    from clinfonce.training.progress import metric_text

    if args.config is None and args.resume is None and not args.overrides:
        raise ValueError(
            "give --config FILE and/or key=value overrides (or --resume RUN_DIR to continue a run)"
        )
    if args.resume is not None and args.config is None:
        run_dir, _ = resolve_resume(args.resume)
        config = load_run_config(run_dir, args.overrides)
    else:  # a config file, or the defaults changed by the overrides alone
        config = load_config(args.config, args.overrides)
    if args.print_config:
        print(yaml.safe_dump(config.to_dict(), sort_keys=False), end="")
        return 0
    result = train(config, resume=args.resume)
    if result.global_zero:  # under DDP every process gets here; one reports
        print(f"run directory: {result.run_dir}")
        for key, value in sorted(result.metrics.items()):
            print(f"  {key}: {metric_text(key, value)}")
    return 0
