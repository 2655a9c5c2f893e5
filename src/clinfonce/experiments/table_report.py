"""``report.md`` of ``clinfonce run``: the start summary, the clusters, training curves,
the accuracies of every evaluated encoder, and the plots."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clinfonce.clusters.suggest import suggestion_markdown
from clinfonce.experiments.table_plan import TablePlan


def _training_curves(run_dirs: dict[str, Path], path: Path) -> Path | None:
    """``train/loss`` against the step for each trained run (from its CSV log)."""
    from clinfonce.experiments.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    drawn = False
    for name, run_dir in run_dirs.items():
        logs = sorted((run_dir / "logs" / "csv").glob("version_*/metrics.csv"))
        if not logs:
            continue
        metrics = pd.read_csv(logs[-1])
        if "train/loss" not in metrics:
            continue
        curve = metrics.dropna(subset=["train/loss"])
        ax.plot(curve["step"], curve["train/loss"], label=name)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _cluster_sizes_plot(path: Path) -> Path | None:
    """Sorted cluster sizes of the training clusters (log scale)."""
    from clinfonce.clusters import read_assignment
    from clinfonce.experiments.plots import pyplot

    assignment = path.parent / "clusters.csv"
    if not assignment.is_file():
        return None
    ids = read_assignment(assignment)["cluster"].to_numpy()
    sizes = np.sort(np.bincount(ids)[np.bincount(ids) > 0])[::-1]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(np.arange(len(sizes)), sizes, width=1.0)
    ax.set_yscale("log")
    ax.set_xlabel("cluster (largest first)")
    ax.set_ylabel("training samples")
    ax.set_title(f"{len(sizes)} clusters over {len(ids)} training samples")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(
    plan: TablePlan,
    run_dir: Path,
    rows: Sequence[dict[str, Any]],
    run_dirs: dict[str, Path],
) -> Path:
    """``report.md`` with the start summary, the clusters, the accuracies and the plots."""
    from clinfonce.experiments.plots import accuracy_plot

    config = plan.config
    lines = [
        f"# clinfonce run: {_text(Path(config.data.options['table']).name)}",
        "",
        "## Data and settings",
        "",
        *[f"- {_text(line)}" for line in plan.summary],
        "",
        f"Reproduce the training with `clinfonce train --config {run_dir / 'config.yaml'}` "
        "(set output.name or output.overwrite=true to train it again).",
        "",
    ]
    if plan.suggestion is not None:
        lines += [
            "## Cluster sources considered (--aux auto)",
            "",
            suggestion_markdown(plan.suggestion),
            f"Recommendation: {_text(plan.suggestion.reason)}",
            "",
        ]
    sizes = _cluster_sizes_plot(run_dir / "cluster-sizes.png")
    if sizes is not None:
        lines += ["## Clusters", "", f"![cluster sizes]({sizes.name})", ""]
    curves = _training_curves(run_dirs, run_dir / "training-curves.png")
    if curves is not None:
        lines += ["## Training", "", f"![training loss]({curves.name})", ""]
    lines += [
        "## Embeddings",
        "",
        "`embeddings.npy` (float32, one row per table row that was kept, the encoder output "
        "before the projection head) and `index.csv` (its row, id, label, split).",
        "",
    ]
    if rows:
        test = rows[0]["test"]
        lines += [
            "## Accuracy",
            "",
            f"Top-1 (%) on {test['samples']} test images ({test['rows']}): kNN (cosine, "
            "k = 20) and a logistic-regression probe on the frozen features.",
            "",
            "| encoder | kNN top-1 | linear top-1 | train s |",
            "|---|---|---|---|",
            *[
                f"| {r['name']} | {r['knn_top1']:.1f} | {r['linear_top1']:.1f} | "
                f"{r['train_seconds']} |"
                for r in rows
            ],
            "",
        ]
        summary = pd.DataFrame(
            {
                "name": [r["name"] for r in rows],
                "linear_top1_mean": [r["linear_top1"] for r in rows],
                "knn_top1_mean": [r["knn_top1"] for r in rows],
            }
        )
        accuracy_plot(summary, run_dir / "accuracy.png", f"{config.method.name}: top-1")
        lines += ["![accuracy](accuracy.png)", ""]
        tsne = next((r["tsne"] for r in rows if r["tsne"]), None)
        if tsne:
            lines += ["## t-SNE of the test embeddings", "", f"![t-SNE]({Path(tsne).name})", ""]
    else:
        lines += ["No label column: no accuracy to report.", ""]
    report = run_dir / "report.md"
    report.write_text("\n".join(lines))
    return report


def _text(value: str) -> str:
    """Text from the user's table (column names, file names) as Markdown shows it: ``<b>``
    in a column name is shown, not rendered as HTML.

    Examples:
        >>> _text("<b>colour</b> & size")
        '&lt;b&gt;colour&lt;/b&gt; &amp; size'
    """
    return html.escape(value, quote=False)
