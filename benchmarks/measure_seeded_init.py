"""Measure: Cl-InfoNCE from a SimCLR run's ResNet-18 against the same from scratch.

Fashion-MNIST's training set is split (seeded) into two disjoint halves of ``--half`` images:
SimCLR trains on half A; Cl-InfoNCE on the level-2 clusters then trains on half B twice,
once with ``model.weights`` set to the SimCLR run, once from a random initialisation, with
the same budget and seed. Both are evaluated (kNN k=20 and the linear probe, top-1) on half
B's features against ``--test`` seeded test images. The recipe is the demo's (tau 0.2, AdamW
lr 2e-3 with a 5% warm-up, crop 0.3-1 + flip + brightness/contrast jitter); the budget is
set by ``--half``, ``--epochs`` and ``--batch``. Prints one table.

Run: ``OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/measure_seeded_init.py
--out runs/seeded-init --seed 0``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clinfonce.data import load_source
from clinfonce.runs import EvalSettings, evaluate_run, load_run
from clinfonce.training import config_from_dict, train


def write_halves(out: Path, half: int, test: int, seed: int) -> tuple[Path, Path]:
    """Fashion-MNIST as an array and a table whose split column says a, b or test."""
    source = load_source("fashion-mnist")
    table = source.table.copy()
    assert source.images is not None
    rng = np.random.default_rng(seed)
    train_rows = rng.permutation(np.flatnonzero(table["split"] == "train"))[: 2 * half]
    test_rows = rng.permutation(np.flatnonzero(table["split"] == "test"))[:test]
    rows = np.concatenate([train_rows, test_rows])
    split = np.array(["a"] * half + ["b"] * half + ["test"] * test)
    kept = table.iloc[rows].reset_index(drop=True)
    kept["split"] = split
    out.mkdir(parents=True, exist_ok=True)
    arrays, metadata = out / "images.npy", out / "metadata.csv"
    np.save(arrays, source.images[rows])
    kept.to_csv(metadata, index=False)
    return arrays, metadata


def config(args: argparse.Namespace, arrays: Path, metadata: Path, name: str, **parts: Any) -> Any:
    values: dict[str, Any] = {
        "data": {
            "dataset": "arrays",
            "options": {"arrays": str(arrays), "table": str(metadata)},
            "train_split": parts.pop("split"),
        },
        "model": {"encoder": "resnet18", **parts.pop("model", {})},
        "method": {"name": parts.pop("method"), "temperature": 0.2},
        "optim": {"name": "adamw", "lr": 0.002, "warmup_fraction": 0.05},
        "augment": {"crop_scale": [0.3, 1.0], "jitter_p": 0.8},
        "train": {
            "epochs": args.epochs,
            "batch_size": args.batch,
            "seed": args.seed,
            "precision": "auto",
            "progress_bar": False,
        },
        "monitor": {"enabled": False},
        "output": {"dir": str(args.out), "name": f"{name}-seed{args.seed}"},
        **parts,
    }
    return config_from_dict(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/seeded-init"))
    parser.add_argument("--half", type=int, default=2000, help="images per training half")
    parser.add_argument("--test", type=int, default=2000, help="test images evaluated")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    arrays, metadata = write_halves(args.out / "data", args.half, args.test, args.seed)
    clusters = {"builder": "attributes", "params": {"columns": ["level2"]}}
    started = time.perf_counter()
    simclr = train(config(args, arrays, metadata, "simclr-a", split="a", method="simclr"))
    print(f"SimCLR on half A: {time.perf_counter() - started:.0f} s", flush=True)
    rows = {}
    for name, model in (("from-simclr", {"weights": str(simclr.run_dir)}), ("scratch", {})):
        started = time.perf_counter()
        cfg = config(
            args,
            arrays,
            metadata,
            name,
            split="b",
            method="clinfonce",
            model=model,
            clusters=clusters,
        )
        result = train(cfg)
        seconds = time.perf_counter() - started
        settings = EvalSettings(knn_ks=(20,), topk=(1,), nmi=False, seed=args.seed)
        measured = evaluate_run(load_run(result.run_dir), settings, out_dir=result.run_dir)
        rows[name] = {
            "knn_top1": 100 * measured["knn"]["20"]["top1"],
            "linear_top1": 100 * measured["linear"]["top1"],
            "train_seconds": round(seconds),
        }
        print(name, rows[name], flush=True)
    (args.out / f"results-seed{args.seed}.json").write_text(json.dumps(rows, indent=2))
    print(
        f"seed {args.seed}, {args.half} + {args.half} images, {args.epochs} epochs of batch "
        f"{args.batch}, resnet18, {args.test} test images"
    )
    print(f"{'Cl-InfoNCE (level 2) init':<28} {'kNN top-1':>10} {'linear top-1':>13} {'s':>6}")
    for name, row in rows.items():
        print(
            f"{name:<28} {row['knn_top1']:>10.1f} {row['linear_top1']:>13.1f} "
            f"{row['train_seconds']:>6}"
        )


if __name__ == "__main__":
    main()
