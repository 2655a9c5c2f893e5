"""``report.md`` of ``clinfonce run``: the start summary, the clusters, training curves,
the accuracies of every evaluated encoder, and the plots."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clinfonce.clusters.suggest import suggestion_markdown
from clinfonce.experiments.table_plan import TablePlan

#: Largest clusters drawn, by name, in the cluster-size plot.
_NAMED_CLUSTERS = 30
#: A loss term that ends within this share of the way from its chance level to its floor
#: has not learned.
_LEARNED_SHARE = 0.05


def _loss_logs(run_dirs: dict[str, Path]) -> dict[str, pd.DataFrame]:
    """Each trained run's CSV log (rows with ``train/loss``)."""
    logs = {}
    for name, run_dir in run_dirs.items():
        files = sorted((run_dir / "logs" / "csv").glob("version_*/metrics.csv"))
        if files:
            metrics = pd.read_csv(files[-1])
            if "train/loss" in metrics:
                logs[name] = metrics.dropna(subset=["train/loss"])
    return logs


def chance_loss(batch: int, views: int) -> float:
    """The contrastive loss of an encoder that tells nothing apart (every similarity equal):
    ``ln(V B - 1)``, whatever the positives, since each positive then scores like every
    other view in the denominator.

    Examples:
        >>> round(chance_loss(256, 2), 3)
        6.236
    """
    return math.log(views * batch - 1)


def floor_loss(positives: float, views: int) -> float:
    """The lowest loss with ``positives`` other samples of the anchor's cluster in the batch
    (its own other views count too): all positives alike and every negative far, so the
    log-sum over the denominator is the log of the number of positives.

    Examples:
        >>> floor_loss(0.0, 2)  # SimCLR: one positive, the other view
        0.0
    """
    return math.log(max(views * (1 + positives) - 1, 1.0))


def _term_positives(plan: TablePlan, term: str) -> float | None:
    """Expected other samples per anchor that ``term`` counts as positives (None: unknown)."""
    from clinfonce.clusters.assess import expected_positives

    batch = plan.config.train.batch_size
    if term in ("simclr", "instance"):
        return 0.0
    if term == "supcon" and plan.config.data.label_column is not None:
        labels = pd.factorize(plan.source.table[plan.config.data.label_column])[0]
        return expected_positives(labels[labels >= 0], batch)
    if term == "clinfonce" and plan.assessment is not None:
        return plan.assessment.positives
    return None


def loss_lines(plan: TablePlan, run_dirs: dict[str, Path]) -> list[str]:
    """A table of each run's loss terms against their chance level and floor, with whether
    each learned: a Cl-InfoNCE term on coarse clusters can stay near chance for a whole
    short run while SimCLR's falls, and the curves alone do not say which level is which."""
    config = plan.config
    batch, views = config.train.batch_size, config.train.views
    chance = chance_loss(batch, views)
    lines = [
        f"Chance level of every term: ln({views} x {batch} - 1) = {chance:.2f} (an encoder "
        "that tells nothing apart). The floor is ln(positives per anchor), reached when "
        "every positive is alike and every negative far: 0 for SimCLR, higher the coarser "
        "the clusters. 'moved' is the share of the way from chance to the floor a term covered "
        "(start and end: means of the first and last tenth of the logged steps); a term that "
        "moved less than 5% did not learn its own task, though beside another term it can "
        "still change what the encoder learns: the accuracy table says whether it helped.",
        "",
        "| run | term | start | end | chance | floor | moved | learned? |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, log in _loss_logs(run_dirs).items():
        terms = [c[len("train/") :] for c in log.columns if c.startswith("train/")]
        parts = [t for t in terms if t != "loss"] or ["loss"]
        for term in parts:
            values = log[f"train/{term}"].dropna().to_numpy()
            if not len(values):
                continue
            tenth = max(1, len(values) // 10)
            start, end = float(values[:tenth].mean()), float(values[-tenth:].mean())
            positives = _term_positives(plan, name if term == "loss" else term)
            floor = None if positives is None else floor_loss(positives, views)
            if floor is not None and chance - floor > 1e-6:
                moved = (chance - end) / (chance - floor)
                verdict = "yes" if moved >= _LEARNED_SHARE else "no: within 5% of chance"
                verdict = "no: above chance" if moved <= -_LEARNED_SHARE else verdict
                cells = [f"{floor:.2f}", f"{moved:.0%}", verdict]
            else:
                cells = ["-", "-", "yes" if end < chance - 0.05 else "no: near chance"]
            label = name if term == "loss" else term
            lines.append(
                f"| {name} | {label} | {start:.2f} | {end:.2f} | {chance:.2f} | "
                + " | ".join(cells)
                + " |"
            )
    return [*lines, ""]


def _training_curves(
    run_dirs: dict[str, Path], path: Path, chance: float | None = None
) -> Path | None:
    """``train/loss`` against the step for each trained run, with the chance level."""
    from clinfonce.experiments.plots import pyplot

    logs = _loss_logs(run_dirs)
    if not logs:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, curve in logs.items():
        ax.plot(curve["step"], curve["train/loss"], label=name)
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", label=f"chance level {chance:.2f}")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def cluster_names(plan: TablePlan, ids: pd.Series, clusters: np.ndarray) -> dict[int, str]:
    """A readable name per cluster id: the joint attribute values, the hierarchy ancestor or
    the top tags present, read off one member row; ``cluster <id>`` otherwise."""
    section = plan.config.to_dict()["clusters"]
    params = section.get("params") or {}
    table = plan.source.table
    key = plan.config.data.id_column if plan.config.data.id_column in table else "id"
    rows = table.set_index(table[key].astype(str))
    first = pd.Series(ids.to_numpy(), index=clusters).groupby(level=0).first()
    names = {int(c): f"cluster {int(c)}" for c in first.index}
    builder = section.get("builder")
    try:
        members = rows.loc[first.to_numpy()]
    except KeyError:
        return names
    if builder == "attributes" and params.get("columns"):
        values = members[list(params["columns"])].astype(str).agg("/".join, axis=1)
        return {int(c): v for c, v in zip(first.index, values, strict=True)}
    if builder == "hierarchy":
        from clinfonce.clusters.hierarchy import ancestor_path, load_parents

        tree = load_parents(params["parents"])
        level = int(params["level"])
        named = {}
        for c, leaf in zip(first.index, members[params["label_column"]], strict=True):
            chain = ancestor_path(str(leaf), tree) if str(leaf) in tree else [str(leaf)]
            named[int(c)] = chain[level] if len(chain) > level else str(leaf)
        return named
    if builder == "tags" and params.get("k"):
        from clinfonce.clusters.tags import parse_tags, tag_sweep

        _, _, details = next(tag_sweep(table, [params["k"]], column=params["column"]))
        top = list(details["tags"])
        row, tag = parse_tags(members[params["column"]].reset_index(drop=True))
        named = {}
        for position, c in enumerate(first.index):
            present = sorted(set(tag[row == position].tolist()) & set(top), key=top.index)
            named[int(c)] = " ".join(f"#{t}" for t in present) or "(none of the top tags)"
        return named
    return names


def _cluster_sizes_plot(plan: TablePlan, path: Path) -> Path | None:
    """The training clusters' sizes on a linear axis, largest first, named."""
    from clinfonce.clusters import read_assignment
    from clinfonce.experiments.plots import pyplot

    assignment = path.parent / "clusters.csv"
    if not assignment.is_file():
        return None
    frame = read_assignment(assignment)
    ids = frame["cluster"].to_numpy()
    counts = pd.Series(ids).value_counts()
    shown = counts.iloc[:_NAMED_CLUSTERS]
    names = cluster_names(plan, frame["id"].astype(str), ids)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.25 * len(shown)))
    y = np.arange(len(shown))
    ax.barh(y, shown.to_numpy())
    ax.set_yticks(y, [names.get(int(c), f"cluster {int(c)}") for c in shown.index], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("training samples")
    part = f"the {len(shown)} largest of " if len(counts) > len(shown) else ""
    ax.set_title(f"{part}{len(counts)} clusters over {len(ids)} training samples", fontsize=9)
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
    sizes = _cluster_sizes_plot(plan, run_dir / "cluster-sizes.png")
    if sizes is not None:
        lines += ["## Clusters", "", f"![cluster sizes]({sizes.name})", ""]
    chance = chance_loss(config.train.batch_size, config.train.views)
    curves = _training_curves(run_dirs, run_dir / "training-curves.png", chance)
    if curves is not None:
        lines += ["## Training", "", *loss_lines(plan, run_dirs)]
        lines += [f"![training loss]({curves.name})", ""]
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
