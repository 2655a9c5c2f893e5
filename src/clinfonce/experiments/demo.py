"""The demo: the two-stage method end to end, as a preset of the experiment runner.

Stage 1 turns auxiliary columns into clusters (Fashion-MNIST: the level-2 hierarchy; the
synthetic fallback: three metadata attributes) and reports their quality; stage 2 is an
experiment of four runs at one seed, trained and evaluated by
:func:`clinfonce.experiments.run_experiment`: an untrained encoder (the floor), SimCLR,
Cl-InfoNCE on those clusters and SupCon, all with one small budget. The demo adds its own
summary (``results.md``, ``results.json``, ``results.png``) beside the experiment's folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clinfonce.binder import deep_merge
from clinfonce.experiments.cells import SourceCache
from clinfonce.experiments.grid import expand_grid
from clinfonce.experiments.runner import run_experiment
from clinfonce.experiments.spec import ExperimentSpec, experiment_from_dict

Log = Callable[[str], None]
#: Shared by both datasets: docs/method.md §8's recipe (tau 0.2, AdamW lr 2e-3, 5% warm-up,
#: 8 epochs of batch 256), bfloat16 where the hardware has it (same accuracy, 1.7x faster).
_BUDGET = {
    "method": {"temperature": 0.2},
    "optim": {"name": "adamw", "lr": 0.002, "warmup_fraction": 0.05},
    "train": {"epochs": 8, "batch_size": 256, "precision": "auto"},
}
#: Fashion-MNIST: 10k training images (half of §8's 20k, so that the three trainings take
#: about 5 minutes on a 2-core CPU without bfloat16) in batches of 128 (twice the steps of 256
#: at the same cost: SimCLR +0.8 linear / +1.6 kNN here), crop (area 0.3-1) + flip +
#: brightness/contrast jitter (without it SimCLR does not beat an untrained encoder: results.md),
#: level-2 clusters.
_FASHION = {
    "data": {"dataset": "fashion-mnist", "train_subset": 10000},
    "train": {"batch_size": 128},
    "clusters": {"builder": "attributes", "params": {"columns": ["level2"]}},
    "augment": {"crop_scale": [0.3, 1.0], "jitter_p": 0.8},
}
_SYNTHETIC = {
    "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 12000}},
    "clusters": {
        "builder": "attributes",
        "params": {"columns": ["maker", "material", "region"]},
    },
}
_QUICK = {
    "data": {"train_subset": 1024},
    "train": {"epochs": 1, "batch_size": 128},
}
#: Test images evaluated (all of them unless quick).
_QUICK_TEST_IMAGES = 1000
#: The runs, in the order they are trained and shown; only Cl-InfoNCE uses the clusters.
_RUNS: tuple[dict[str, Any], ...] = (
    {"name": "random-init", "untrained": True, "set": {"method.name": "simclr", "clusters": {}}},
    {"name": "simclr", "set": {"method.name": "simclr", "clusters": {}}},
    {"name": "clinfonce", "set": {"method.name": "clinfonce"}},
    {"name": "supcon", "set": {"method.name": "supcon", "clusters": {}}},
)
_LABELS = {
    "random-init": "random-init encoder",
    "simclr": "SimCLR",
    "clinfonce": "Cl-InfoNCE",
    "supcon": "SupCon",
}


@dataclass
class DemoPlan:
    """Which data the demo uses, why, and the shared config values of its runs."""

    dataset: str
    reason: str
    base: dict[str, Any]
    test_images: int | None


def plan(data: str, quick: bool) -> DemoPlan:
    """Pick the dataset (``auto``: Fashion-MNIST when found) and the run budget."""
    from clinfonce.data.fashion_mnist import find_fashion_mnist, search_dirs

    if data == "auto":
        found = find_fashion_mnist()
        if found is not None:
            data, reason = "fashion-mnist", f"Fashion-MNIST found in {found}"
        else:
            searched = ", ".join(str(d) for d in search_dirs()[::2])
            data = "synthetic-attributes"
            reason = (
                f"Fashion-MNIST not found (searched {searched}; install dataset-fashion-mnist "
                "or set CLINFONCE_DATA), so using the built-in synthetic-attributes data"
            )
    else:
        reason = f"{data} chosen with --data"
    base = deep_merge(_BUDGET, _FASHION if data == "fashion-mnist" else _SYNTHETIC)
    if quick:
        base = deep_merge(base, _QUICK)
        if data == "synthetic-attributes":
            base = deep_merge(base, {"data": {"options": {"n_samples": 3000}}})
    return DemoPlan(data, reason, base, _QUICK_TEST_IMAGES if quick else None)


def demo_experiment(demo: DemoPlan, *, seed: int, quick: bool) -> ExperimentSpec:
    """The experiment the demo runs: its four runs at ``seed`` with the demo's budget.

    The evaluation fits the probes on the images the runs trained on (the same seeded
    ``data.train_subset``) and scores kNN (k = 20) and a logistic probe (C = 1) on the test
    split (a seeded subset of ``test_images`` when quick).
    """
    monitor = {"enabled": not quick, "every_n_epochs": 4, "max_bank": 2000, "max_queries": 1000}
    evaluation = {
        "knn_k": 20,
        "cs": [1.0],
        "topk": [1],
        "nmi": False,
        "max_train": demo.base["data"].get("train_subset"),
        "max_test": demo.test_images,
        "seed": seed,
    }
    return experiment_from_dict(
        {
            "description": f"clinfonce demo: {demo.reason}.",
            "base": deep_merge(demo.base, {"monitor": monitor}),
            "runs": [dict(run) for run in _RUNS],
            "seeds": [seed],
            "evaluation": evaluation,
        },
        name="demo",
    )


def run_demo(
    out: Path, demo: DemoPlan, *, seed: int, quick: bool, log: Log = print
) -> dict[str, Any]:
    """Report stage 1, run the demo's experiment into ``out/experiment``, and write the
    demo's summary into ``out``; returns what ``results.json`` holds."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    spec = demo_experiment(demo, seed=seed, quick=quick)
    log(f"data: {demo.dataset} ({demo.reason})")
    clinfonce = next(c for c in expand_grid(spec) if c.run.name == "clinfonce").config
    sources = SourceCache()
    source = sources.get(clinfonce)
    log(f"  {source.description}")
    cluster_info = _report_clusters(clinfonce, source, log)
    result = run_experiment(spec, out / "experiment", sources=sources, log=log)
    rows = [
        {
            "method": str(row["name"]),
            "knn_top1": float(row["knn_top1"]),
            "linear_top1": float(row["linear_top1"]),
            # The untrained encoder took no training time; its cell only built it.
            "train_seconds": 0.0
            if row["method"] == "untrained"
            else round(float(row["train_seconds"]), 1),
        }
        for _, row in result.rows.iterrows()
    ]
    table = _markdown(rows, demo, cluster_info)
    log("")
    log(table)
    (out / "results.md").write_text(table)
    summary = {
        "dataset": demo.dataset,
        "reason": demo.reason,
        "clusters": cluster_info,
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    _plot(
        rows,
        f"{demo.dataset}, Cl-InfoNCE on {', '.join(cluster_info['columns'])}",
        out / "results.png",
    )
    log(f"wrote {out / 'results.md'}, results.json, results.png ({summary['seconds']} s)")
    return summary


def _report_clusters(config: Any, source: Any, log: Log) -> dict[str, Any]:
    """Stage 1: the clusters Cl-InfoNCE trains on, measured against the labels."""
    from clinfonce.clusters import cluster_metrics
    from clinfonce.data import prepare_data

    prepared = prepare_data(config.data, config.clusters, source=source)
    columns = list(config.clusters.params["columns"])
    metrics = cluster_metrics(prepared.clusters, prepared.train_labels())
    log(
        f"stage 1: clusters from {', '.join(columns)} over {len(prepared.train_rows)} training "
        f"images: K = {int(metrics['num_clusters'])}, H(T) = {metrics['h_t']:.3f} bits, "
        f"I(Z;T) = {metrics['i_zt']:.3f}, H(Z|T) = {metrics['h_z_given_t']:.3f}, "
        f"NMI = {metrics['nmi']:.3f}"
    )
    return {"columns": columns, **{k: float(v) for k, v in metrics.items()}}


def _markdown(rows: list[dict[str, Any]], demo: DemoPlan, clusters: dict[str, Any]) -> str:
    train = demo.base["train"]
    lines = [
        f"# clinfonce demo: {demo.dataset}",
        "",
        f"{demo.reason}. Budget per method: {demo.base['data'].get('train_subset', 'all')} "
        f"training images, {train['epochs']} epoch(s), batch {train['batch_size']}. Cl-InfoNCE "
        f"clusters: {', '.join(clusters['columns'])} (K = {int(clusters['num_clusters'])}, "
        f"I(Z;T) = {clusters['i_zt']:.3f} of H(T) = {clusters['h_t']:.3f} bits). Top-1 (%) on "
        "the test split: kNN (cosine, k = 20) and a logistic-regression probe on standardised "
        "encoder features.",
        "",
        "| method | kNN top-1 | linear top-1 | train s |",
        "|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {_LABELS[row['method']]} | {row['knn_top1']:.1f} | {row['linear_top1']:.1f} | "
            f"{row['train_seconds']} |"
        )
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict[str, Any]], title: str, path: Path) -> None:
    from clinfonce.experiments.plots import pyplot

    plt = pyplot()
    names = [_LABELS[r["method"]] for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for offset, key, label in ((-0.2, "knn_top1", "kNN"), (0.2, "linear_top1", "linear probe")):
        values = [r[key] for r in rows]
        bars = ax.bar(x + offset, values, width=0.4, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    low = min(min(r["knn_top1"], r["linear_top1"]) for r in rows)
    ax.set_ylim(max(0.0, low - 10), 100)
    ax.set_xticks(x, names)
    ax.set_ylabel("test top-1 (%)")
    ax.set_title(f"clinfonce demo: {title}")
    ax.legend(loc="upper left", ncols=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
