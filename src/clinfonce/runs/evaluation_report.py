"""The files of ``clinfonce evaluate``: ``evaluation-<checkpoint>.json`` and ``.md`` per
checkpoint, and the Markdown table comparing several."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clinfonce.outputs import atomic_write


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def results_markdown(results: Sequence[dict[str, Any]]) -> str:
    """A Markdown table with one row per evaluated checkpoint (accuracies in %).

    Examples:
        >>> print(results_markdown([{"run": "r", "method": "simclr", "linear": None,
        ...                          "knn": {"20": {"top1": 0.5}}, "embedding_clusters": None}]),
        ...       end="")
        | run | method | probe | kNN k=20 top-1 | K-means NMI |
        |---|---|---|---|---|
        | r | simclr | - | 50.0 | - |
    """
    topk = sorted({int(key[3:]) for r in results for key in _knn_metrics(r)})
    ks = sorted({int(k) for r in results for k in r["knn"]})
    probe_ks = sorted(
        {int(key[3:]) for r in results if r["linear"] for key in r["linear"] if _is_top(key)}
    )
    header = ["run", "method", "probe"]
    header += [f"linear top-{t}" for t in probe_ks]
    header += [f"kNN k={k} top-{t}" for k in ks for t in topk]
    header += ["K-means NMI"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        linear = r["linear"] or {}
        probe = linear.get("probe", "-")
        if probe == "logistic":
            probe = f"logistic, C={linear['c']:g}"
        row = [str(r["run"]), str(r["method"]), probe]
        row += [_percent(linear.get(f"top{t}")) for t in probe_ks]
        row += [_percent(r["knn"].get(str(k), {}).get(f"top{t}")) for k in ks for t in topk]
        clusters = r["embedding_clusters"]
        row += [f"{clusters['nmi']:.3f}" if clusters else "-"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _is_top(key: str) -> bool:
    return key.startswith("top") and key[3:].isdigit()


def _knn_metrics(result: dict[str, Any]) -> list[str]:
    return [key for per in result["knn"].values() for key in per if _is_top(key)]


def results_report(results: Sequence[dict[str, Any]]) -> str:
    """The Markdown file: what was measured, then :func:`results_markdown`."""
    first = results[0]
    linear = first["linear"]
    lines = [
        f"# Evaluation: {', '.join(str(r['run']) for r in results)}",
        "",
        f"Data: {first['dataset']}, {first['num_classes']} classes; probes fitted on "
        f"{first['train']['samples']} training images, accuracies (%) on "
        f"{first['test']['samples']} test images ({first['test']['rows']}). Features: "
        f"{first['features']}, {first['feature_dim']}-d.",
        f"kNN: cosine similarity, votes weighted by exp(sim / {first['knn_temperature']}).",
    ]
    if linear and linear["probe"] == "logistic":
        lines.append(
            "Linear probe: multinomial logistic regression on standardised features, C "
            f"picked on a {linear['val_fraction']:.0%} validation split, refitted on all "
            "training images."
        )
    elif linear:
        lines.append(
            f"Linear probe: SGD, {linear['epochs']} epochs, lr {linear['lr']} cosine, batch "
            f"{linear['batch_size']}, {linear['augmentation']}."
        )
    if first["embedding_clusters"]:
        lines.append(
            "K-means NMI: spherical K-means of the test embedding with K = number of labels, "
            "normalised mutual information with the labels."
        )
    return "\n".join([*lines, "", results_markdown(results)])


def write_results(results: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``evaluation-<checkpoint>.json`` and ``.md`` into ``out_dir``."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"evaluation-{Path(results['checkpoint']).stem}"
    json_path, md_path = folder / f"{stem}.json", folder / f"{stem}.md"
    text, report = json.dumps(results, indent=2), results_report([results])
    atomic_write(json_path, lambda temp: temp.write_text(text))
    atomic_write(md_path, lambda temp: temp.write_text(report))
    return json_path, md_path
