"""Measure the positives levers (memory, cluster-balanced batches, overlap positives).

Fashion-MNIST (20,000 seeded training images, the 10,000 test images) with four extra
metadata columns made here, so that every case of docs/results.md "Positives beyond the batch"
has its auxiliary information:

- ``style``: a noisy attribute of the class: each class draws one of 8 of 32 values,
  neighbouring classes share 4 of them;
- ``ink``: the decile of an image's mean pixel value (read from the image itself);
- ``tags``: tags from the class hierarchy (``#clothes``, ``#tops`` ..., each kept with
  probability 0.8) plus noisy style tags (``#s0`` .. ``#s9``: the class's two typical ones
  with probability 0.5 each, any other with 0.05).

The runs (:data:`RUNS`) train the recipe of docs/method.md §8 (small CNN, tau 0.2, AdamW lr
2e-3, 5% warm-up, crop 0.3-1 + flip + jitter, 8 epochs) for each seed, then evaluate (kNN
k = 20 and the logistic probe with C = 1, top-1, on the test images). Jobs run as separate
processes, ``--workers`` at a time, seeds in the outer loop; every finished job appends one
JSON line to ``results.jsonl``; no job starts after ``--deadline`` seconds and running ones
are stopped at ``--stop`` seconds, so a bounded lease returns what finished.

Run: ``python benchmarks/measure_positives.py prepare --out data/positives`` then
``python benchmarks/measure_positives.py run --data data/positives --out runs/positives``;
``summarise runs/positives/results.jsonl`` prints the table (mean +- std over seeds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

#: Positives per anchor change with the batch: the cases at small batches are where the
#: levers should help.
SMALL, LARGE = 64, 256
MEMORY = {"size": 4096}
MOMENTUM_MEMORY = {"size": 4096, "momentum": 0.99}
LEVEL2 = {"builder": "attributes", "params": {"columns": ["level2"]}}
JOINT = {"builder": "attributes", "params": {"columns": ["style", "ink"]}}
STYLE = {"builder": "attributes", "params": {"columns": ["style"]}}
TAG_SETS = {"builder": "tags", "params": {"column": "tags", "k": 8}}
TAG_SETS_4 = {"builder": "tags", "params": {"column": "tags", "k": 4}}
INSTANCE = {"loss": "simclr"}


def _overlap(rule: str) -> list[dict[str, Any]]:
    return [INSTANCE, {"loss": "overlap", "tags": "tags", "overlap": rule}]


#: name -> (batch, config sections on top of the recipe).
RUNS: dict[str, tuple[int, dict[str, Any]]] = {
    "simclr b64": (SMALL, {"method": {"name": "simclr"}}),
    "simclr b256": (LARGE, {"method": {"name": "simclr"}}),
    "supcon b64": (SMALL, {"method": {"name": "supcon"}}),
    "supcon b64 + memory": (SMALL, {"method": {"name": "supcon", "memory": MEMORY}}),
    "supcon b256": (LARGE, {"method": {"name": "supcon"}}),
    "supcon b256 + memory": (LARGE, {"method": {"name": "supcon", "memory": MEMORY}}),
    "level2 b64": (SMALL, {"method": {"name": "clinfonce"}, "clusters": LEVEL2}),
    "level2 b64 + memory": (
        SMALL,
        {"method": {"name": "clinfonce", "memory": MEMORY}, "clusters": LEVEL2},
    ),
    "level2 b256": (LARGE, {"method": {"name": "clinfonce"}, "clusters": LEVEL2}),
    "level2 b256 + memory": (
        LARGE,
        {"method": {"name": "clinfonce", "memory": MEMORY}, "clusters": LEVEL2},
    ),
    "kmeans K=500 b64": (
        SMALL,
        {
            "method": {"name": "kmeans-clinfonce", "warmup_epochs": 1},
            "kmeans": {"n_clusters": [500]},
        },
    ),
    "kmeans K=500 b64 + momentum memory": (
        SMALL,
        {
            "method": {"name": "kmeans-clinfonce", "warmup_epochs": 1, "memory": MOMENTUM_MEMORY},
            "kmeans": {"n_clusters": [500]},
        },
    ),
    "style x ink b64": (SMALL, {"method": {"name": "clinfonce"}, "clusters": JOINT}),
    "style x ink b64 + momentum memory": (
        SMALL,
        {"method": {"name": "clinfonce", "memory": MOMENTUM_MEMORY}, "clusters": JOINT},
    ),
    "style x ink b64 + 4 per cluster": (
        SMALL,
        {"method": {"name": "clinfonce"}, "clusters": JOINT, "train": {"per_cluster": 4}},
    ),
    "style x ink b64 + 4 per cluster + momentum memory": (
        SMALL,
        {
            "method": {"name": "clinfonce", "memory": MOMENTUM_MEMORY},
            "clusters": JOINT,
            "train": {"per_cluster": 4},
        },
    ),
    "style b64": (SMALL, {"method": {"name": "clinfonce"}, "clusters": STYLE}),
    "style + InfoNCE b64": (
        SMALL,
        {"clusters": STYLE, "objective": [INSTANCE, {"loss": "clinfonce"}]},
    ),
    "tag sets (top 4) b64": (SMALL, {"method": {"name": "clinfonce"}, "clusters": TAG_SETS_4}),
    "tag sets (top 4) + InfoNCE b64": (
        SMALL,
        {"clusters": TAG_SETS_4, "objective": [INSTANCE, {"loss": "clinfonce"}]},
    ),
    "tag sets (top 8) + InfoNCE b64": (
        SMALL,
        {"clusters": TAG_SETS, "objective": [INSTANCE, {"loss": "clinfonce"}]},
    ),
    "overlap any + InfoNCE b64": (SMALL, {"objective": _overlap("any")}),
    "overlap jaccard + InfoNCE b64": (SMALL, {"objective": _overlap("jaccard")}),
}


# --- data ---------------------------------------------------------------------------------


def _tags(labels: np.ndarray, rng: np.random.Generator) -> list[str]:
    from clinfonce.data.fashion_mnist import LEVEL1
    from clinfonce.data.fashion_mnist import LEVEL2 as GROUPS

    rows = []
    for label in labels:
        kept = [f"#{LEVEL1[label]}", f"#{GROUPS[label]}"]
        tags = [tag for tag in kept if rng.random() < 0.8]
        typical = {int(label), (int(label) + 1) % 10}
        chance = [0.5 if style in typical else 0.05 for style in range(10)]
        tags += [f"#s{style}" for style in range(10) if rng.random() < chance[style]]
        rows.append(" ".join(tags))
    return rows


def prepare(out: Path, train: int, seed: int) -> None:
    """Write ``images.npy`` and ``metadata.csv`` (see the module docstring) to ``out``."""
    from clinfonce.data import load_source

    source = load_source("fashion-mnist")
    assert source.images is not None
    table = source.table
    rng = np.random.default_rng(seed)
    train_rows = rng.permutation(np.flatnonzero(table["split"] == "train"))[:train]
    rows = np.concatenate([train_rows, np.flatnonzero(table["split"] == "test")])
    kept = table.iloc[rows].reset_index(drop=True)
    images = source.images[rows]
    labels = kept["label"].to_numpy()
    kept["style"] = (4 * labels + rng.integers(0, 8, len(labels))) % 32
    brightness = images.reshape(len(images), -1).mean(axis=1)
    kept["ink"] = np.searchsorted(np.quantile(brightness, np.linspace(0.1, 0.9, 9)), brightness)
    kept["tags"] = _tags(labels, rng)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "images.npy", images)
    kept.to_csv(out / "metadata.csv", index=False)
    print(f"wrote {len(kept)} rows ({train} train) to {out}")


# --- one job ------------------------------------------------------------------------------


def job_config(name: str, seed: int, data: Path, out: Path, epochs: int, accelerator: str) -> Any:
    from clinfonce.training import config_from_dict

    batch, sections = RUNS[name]
    sections = json.loads(json.dumps(sections))  # a copy: the table above stays as it is
    values: dict[str, Any] = {
        "data": {
            "dataset": "arrays",
            "options": {"arrays": str(data / "images.npy"), "table": str(data / "metadata.csv")},
        },
        "augment": {"crop_scale": [0.3, 1.0], "jitter_p": 0.8},
        "model": {"encoder": "small-cnn", "head_hidden": 256, "head_out": 128},
        "method": {"temperature": 0.2, **sections.pop("method", {})},
        "optim": {"name": "adamw", "lr": 0.002, "weight_decay": 1e-4, "warmup_fraction": 0.05},
        "train": {
            "epochs": epochs,
            "batch_size": batch,
            "seed": seed,
            "precision": "auto",
            "progress_bar": False,
            "accelerator": accelerator,
            **sections.pop("train", {}),
        },
        "monitor": {"enabled": False},
        "output": {"dir": str(out), "name": f"{name.replace(' ', '_')}-seed{seed}"},
        **sections,
    }
    return config_from_dict(values)


def run_job(name: str, seed: int, data: Path, out: Path, epochs: int, device: str) -> None:
    """Train and evaluate one job; print its result as the last line (JSON)."""
    from clinfonce.runs import EvalSettings, evaluate_run, load_run
    from clinfonce.training import train

    accelerator = "gpu" if device == "cuda" else "cpu"
    started = time.perf_counter()
    result = train(job_config(name, seed, data, out, epochs, accelerator))
    fit = time.perf_counter() - started
    settings = EvalSettings(cs=(1.0,), knn_ks=(20,), topk=(1,), nmi=False, tsne=False, seed=seed)
    measured = evaluate_run(load_run(result.run_dir), settings, device=device, log=lambda _: None)
    row = {
        "run": name,
        "seed": seed,
        "linear": round(100 * measured["linear"]["top1"], 2),
        "knn": round(100 * measured["knn"]["20"]["top1"], 2),
        "fit_seconds": round(fit),
        "epochs": epochs,
        "device": device,
    }
    print(json.dumps(row))


# --- many jobs ----------------------------------------------------------------------------


def run_all(args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    results, log = args.results or args.out / "results.jsonl", args.log or args.out / "jobs.log"
    names = args.only.split(",") if args.only else list(RUNS)
    unknown = [name for name in names if name not in RUNS]
    if unknown:
        raise SystemExit(f"--only: unknown run(s) {unknown}; runs: {', '.join(RUNS)}")
    queue = [(name, seed) for seed in range(args.seeds) for name in names]
    running: dict[tuple[str, int], tuple[subprocess.Popen[str], float]] = {}
    started = time.perf_counter()
    environment = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONUNBUFFERED": "1"}
    while queue or running:
        elapsed = time.perf_counter() - started
        while queue and len(running) < args.workers and elapsed < args.deadline:
            name, seed = queue.pop(0)
            command = [sys.executable, __file__, "job", name, str(seed), "--data", str(args.data)]
            command += ["--out", str(args.out), "--epochs", str(args.epochs)]
            command += ["--device", args.device]
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=environment,
            )
            running[(name, seed)] = (process, time.perf_counter())
        if elapsed > args.deadline and queue:
            print(f"deadline: {len(queue)} jobs not started", flush=True)
            queue.clear()
        for key, (process, begun) in list(running.items()):
            if elapsed > args.stop:
                process.kill()
            if process.poll() is None:
                continue
            output = process.stdout.read() if process.stdout else ""
            del running[key]
            last = output.strip().splitlines()[-1:] or [""]
            took = time.perf_counter() - begun
            if process.returncode == 0 and last[0].startswith("{"):
                with results.open("a") as handle:
                    handle.write(last[0] + "\n")
                print(f"{took:5.0f} s  {last[0]}", flush=True)
            else:
                with log.open("a") as handle:
                    handle.write(f"== {key} rc={process.returncode}\n{output[-4000:]}\n")
                print(f"{took:5.0f} s  FAILED {key} rc={process.returncode}", flush=True)
        time.sleep(0.5)
    print(f"all jobs done in {time.perf_counter() - started:.0f} s")


def summarise(path: Path) -> None:
    """Mean +- std over seeds of each run, in :data:`RUNS` order, and the share of the gap
    from SimCLR to SupCon at the same batch that the run closes (of the means)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    means: dict[str, dict[str, float]] = {}
    cells: dict[str, list[str]] = {}
    for name in RUNS:
        mine = [row for row in rows if row["run"] == name]
        if not mine:
            continue
        means[name], cells[name] = {}, [str(len(mine))]
        for key in ("linear", "knn"):
            values = [row[key] for row in mine]
            means[name][key] = statistics.mean(values)
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells[name].append(f"{means[name][key]:.1f} ± {spread:.1f}")
        cells[name].append(f"{statistics.mean(row['fit_seconds'] for row in mine):.0f}")
    print("| run | seeds | linear top-1 | kNN top-1 (k = 20) | fit s | gap closed, linear / kNN |")
    print("|---|---|---|---|---|---|")
    for name, row in cells.items():
        batch = RUNS[name][0]
        low, high = means.get(f"simclr b{batch}"), means.get(f"supcon b{batch}")
        closed = "-"
        if low and high:
            shares = [(means[name][k] - low[k]) / (high[k] - low[k]) for k in ("linear", "knn")]
            closed = " / ".join(f"{100 * share:.0f}%" for share in shares)
        print(f"| {name} | {' | '.join(row)} | {closed} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("prepare", help="write the images and the metadata table")
    made.add_argument("--out", type=Path, required=True)
    made.add_argument("--train", type=int, default=20000)
    made.add_argument("--seed", type=int, default=0)
    for verb in ("run", "job"):
        sub = commands.add_parser(verb)
        if verb == "job":
            sub.add_argument("name", choices=list(RUNS))
            sub.add_argument("seed", type=int)
        sub.add_argument("--data", type=Path, required=True)
        sub.add_argument("--out", type=Path, required=True)
        sub.add_argument("--epochs", type=int, default=8)
        sub.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    runner = commands.choices["run"]
    runner.add_argument("--seeds", type=int, default=3)
    runner.add_argument("--only", help="comma-separated run names")
    runner.add_argument("--workers", type=int, default=1)
    runner.add_argument("--threads", type=int, default=1, help="threads per job")
    runner.add_argument("--deadline", type=float, default=float("inf"), help="start no job after")
    runner.add_argument("--stop", type=float, default=float("inf"), help="kill jobs after")
    runner.add_argument("--results", type=Path, help="default OUT/results.jsonl")
    runner.add_argument("--log", type=Path, help="failed jobs' output, default OUT/jobs.log")
    summary = commands.add_parser("summarise")
    summary.add_argument("results", type=Path)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.out, args.train, args.seed)
    elif args.command == "job":
        run_job(args.name, args.seed, args.data, args.out, args.epochs, args.device)
    elif args.command == "run":
        run_all(args)
    else:
        summarise(args.results)


if __name__ == "__main__":
    main()
