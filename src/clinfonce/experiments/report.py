"""The experiment report: ``summary.csv``, ``results.md`` (what was run, how it was measured,
the mean ± std table) and the plots, from the finished results rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from clinfonce.experiments.aggregate import (
    add_gap_closed,
    gap_references,
    markdown_table,
    summarize,
)
from clinfonce.experiments.grid import Cell
from clinfonce.experiments.spec import ExperimentSpec
from clinfonce.outputs import atomic_write


def _budget_text(cells: Sequence[Cell]) -> str:
    config = cells[0].config
    data, train, optim = config.data, config.train, config.optim
    images = "all" if data.train_subset is None else str(data.train_subset)
    return (
        f"{data.dataset} ({images} training images), {config.model.encoder} encoder, "
        f"{train.epochs} epoch(s) of batch {train.batch_size} x {train.views} views, "
        f"{optim.name} lr {optim.lr:g}, temperature {config.method.temperature:g}, "
        f"precision {train.precision}"
    )


def _eval_text(spec: ExperimentSpec, rows: pd.DataFrame) -> str:
    settings = spec.evaluation
    samples = ""
    if not rows.empty and "eval_train" in rows:
        samples = (
            f" fitted on {int(rows['eval_train'].iloc[0])} training images and scored on "
            f"{int(rows['eval_test'].iloc[0])} test images"
        )
    if settings.probe == "logistic":
        probe = (
            "logistic regression on standardised encoder features, C from "
            f"{', '.join(f'{c:g}' for c in settings.cs)}"
        )
    elif settings.probe == "sgd":
        probe = f"SGD linear layer, {settings.sgd_epochs} epochs on crop + flip views"
    else:
        probe = "none"
    return (
        f"Linear probe: {probe}; kNN: cosine, k = {spec.knn_k}, votes weighted by "
        f"exp(sim / {settings.knn_temperature:g}); both{samples}. Accuracies in %, "
        "mean ± sample std over seeds."
    )


def write_report(
    spec: ExperimentSpec,
    cells: Sequence[Cell],
    rows: pd.DataFrame,
    out_dir: str | Path,
    *,
    command: str | None = None,
    plots: bool = True,
) -> tuple[pd.DataFrame, dict[str, Path]]:
    """``summary.csv``, ``results.md`` and (with ``plots``) the plots from the finished rows
    of ``cells``.

    Returns the summary and the files written.
    """
    from clinfonce.experiments.plots import accuracy_plot, sweep_plot

    out = Path(out_dir)
    order = list(dict.fromkeys(c.run.name for c in cells))
    summary = add_gap_closed(summarize(rows, order), spec.gap)
    files = {"summary": out / "summary.csv", "markdown": out / "results.md"}
    atomic_write(files["summary"], lambda temp: temp.write_text(summary.to_csv(index=False)))
    seeds = sorted({c.seed for c in cells})
    lines = [f"# Experiment: {spec.name}", ""]
    if spec.description:
        lines += [spec.description, ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [
        f"Budget of every run (unless the run overrides it): {_budget_text(cells)}; "
        f"seeds {', '.join(map(str, seeds))}.",
        "",
        _eval_text(spec, rows),
    ]
    refs = gap_references(summary, spec.gap)
    if refs is not None:
        lines.append(
            f"Gap closed: (run - {refs[0]}) / ({refs[1]} - {refs[0]}) on the seed means of "
            "top-1 (0 = the first, 1 = the second)."
        )
    if "num_clusters_mean" in summary and summary["num_clusters_mean"].notna().any():
        lines.append(
            "K, H(Z|T), I(Z;T): the run's clusters against the labels over its training "
            "images, plug-in estimates in bits."
        )
    lines += ["", markdown_table(summary) if not summary.empty else "(no finished runs yet)"]
    missing = [f"{c.run.name} seed {c.seed}" for c in cells if c.key not in _keys(rows)]
    if missing:
        lines += [f"Not finished yet: {', '.join(missing)}.", ""]
    if plots and not summary.empty:
        files["accuracy"] = accuracy_plot(
            summary, out / "accuracy.png", f"{spec.name}: test top-1 (mean over seeds)"
        )
        references = summary[summary["name"].isin(refs)] if refs is not None else None
        for group in [g for g in dict.fromkeys(summary["group"]) if g]:
            sweep = summary[summary["group"] == group]
            if len(sweep) < 2:
                continue
            x_label = next(c.run.x_label for c in cells if c.run.group == group) or "x"
            companions = {c.run.group or "" for c in cells if c.run.plot_with == group}
            files[f"sweep-{group}"] = sweep_plot(
                sweep,
                out / f"sweep-{group}.png",
                f"{spec.name}: {group}",
                references=references,
                companions={g: summary[summary["group"] == g] for g in sorted(companions) if g},
                x_label=x_label,
            )
        pictures = [p.name for k, p in files.items() if k == "accuracy" or k.startswith("sweep-")]
        lines += [f"Plots: {', '.join(pictures)}.", ""]
    text = "\n".join(lines).rstrip() + "\n"
    atomic_write(files["markdown"], lambda temp: temp.write_text(text))
    return summary, files


def _keys(rows: pd.DataFrame) -> set[tuple[str, int]]:
    return {(str(n), int(s)) for n, s in zip(rows["name"], rows["seed"], strict=True)}
