"""Your own images and metadata, end to end: the work behind ``clinfonce run``.

From a table (one row per image file, plus auxiliary columns) to a trained encoder,
embeddings of every row and a report, with settings read off the data
(:mod:`clinfonce.data.defaults`) and printed before anything trains:

1. the columns (path, id, label, split), image size and colour, in memory or prepared on disk;
2. stage 1: the clusters (named columns, ``auto`` via :func:`clinfonce.clusters.suggest.suggest`,
   a hierarchy level, tags, an assignment file, or K-means of the model's own embedding);
3. stage 2: training, with the batch clamped to the data and epochs from a step budget;
4. ``embeddings.npy`` + ``index.csv`` of every row, keyed by the table's id;
5. with labels: kNN and linear probe of the encoder, of an untrained encoder (the floor)
   and of any baselines trained at the same budget; ``report.md`` with plots.

The run directory's ``config.yaml`` reproduces the training with ``clinfonce train --config``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinfonce.data.sources import ImageSource
from clinfonce.experiments.table_plan import TableRunOptions, plan_table_run
from clinfonce.experiments.table_report import write_report
from clinfonce.training.config import ExperimentConfig, config_from_dict

Log = Callable[[str], None]
#: Methods ``--compare`` accepts (baselines trained at the same budget).
COMPARE_METHODS: tuple[str, ...] = ("simclr", "supcon", "clinfonce", "clinfonce-plus-simclr")


@dataclass
class TableRunResult:
    """Where a finished ``clinfonce run`` put things.

    Attributes:
        run_dir: the run directory (checkpoints, config.yaml, logs).
        report: ``report.md``.
        embeddings: ``embeddings.npy`` (``index.csv`` beside it).
        rows: per evaluated encoder: name, ``knn_top1``, ``linear_top1`` (%), seconds.
    """

    run_dir: Path
    report: Path
    embeddings: Path
    rows: list[dict[str, Any]]


def run_table(options: TableRunOptions, log: Log = print) -> TableRunResult:
    """``clinfonce run``: plan, train, embed every row, evaluate and write the report.

    Examples:
        >>> result = run_table(TableRunOptions("meta.csv", aux=["colour"]))  # doctest: +SKIP
        >>> result.report  # doctest: +SKIP
        PosixPath('runs/meta/report.md')
    """
    from clinfonce.runs.embed import embed_run
    from clinfonce.runs.eval_settings import EvalSettings
    from clinfonce.runs.evaluate import evaluate_run
    from clinfonce.runs.load import LoadedRun
    from clinfonce.training import train

    unknown = sorted(set(options.compare) - set(COMPARE_METHODS))
    if unknown:
        raise ValueError(
            f"--compare {', '.join(unknown)}: not a method to compare; use "
            f"{', '.join(COMPARE_METHODS)}"
        )
    plan = plan_table_run(options, log)
    config, source = plan.config, plan.source
    if "supcon" in options.compare and config.data.label_column is None:
        raise ValueError("--compare supcon needs a label column (--label-column)")
    log(f"stage 2: training {config.method.name} ...")
    started = time.perf_counter()
    trained = train(config, source=source)
    seconds = {config.method.name: time.perf_counter() - started}
    run_dir = trained.run_dir
    main = LoadedRun(trained.last_checkpoint, run_dir, config, trained.module.eval())
    embedded = embed_run(main, run_dir, source=source, log=log)
    runs = {config.method.name: main}
    for method in dict.fromkeys(options.compare):
        if method == config.method.name:
            continue  # trained already
        values = config.to_dict()
        values["method"]["name"] = method
        values["output"] = {"dir": str(run_dir / "compare"), "name": method}
        if method in ("simclr", "supcon"):
            values["clusters"] = {}
        other = config_from_dict(values)
        log(f"stage 2: training {method} at the same budget ...")
        started = time.perf_counter()
        result = train(other, source=source)
        seconds[method] = time.perf_counter() - started
        runs[method] = LoadedRun(
            result.last_checkpoint, result.run_dir, other, result.module.eval()
        )
        embed_run(runs[method], result.run_dir, source=source, log=log)
    rows: list[dict[str, Any]] = []
    if (
        config.data.label_column is not None
        and plan.source.table[config.data.label_column].nunique() >= 2
    ):
        settings = EvalSettings(knn_ks=(20,), topk=(1,), nmi=False, seed=config.train.seed)
        floor = _untrained(config, source)
        for name, loaded in [("untrained encoder", floor), *runs.items()]:
            log(f"evaluating {name}")
            with_tsne = dataclasses.replace(settings, tsne=loaded is main)  # the trained one
            results = evaluate_run(loaded, with_tsne, out_dir=run_dir, log=log, source=source)
            rows.append(
                {
                    "name": name,
                    "knn_top1": 100 * results["knn"]["20"]["top1"],
                    "linear_top1": 100 * results["linear"]["top1"],
                    "train_seconds": round(seconds.get(name, 0.0), 1),
                    "tsne": results["tsne"],
                    "test": results["test"],
                }
            )
            log(f"  {name}: kNN {rows[-1]['knn_top1']:.1f}, linear {rows[-1]['linear_top1']:.1f}")
    trained_dirs = {name: loaded.run_dir or run_dir for name, loaded in runs.items()}
    report = write_report(plan, run_dir, rows, trained_dirs)
    log(f"wrote {report}, {embedded['embeddings']} and {embedded['index']}")
    return TableRunResult(run_dir, report, Path(embedded["embeddings"]), rows)


def _untrained(config: ExperimentConfig, source: ImageSource) -> Any:
    """The encoder as initialised (same seed), as a loaded run: the floor to clear."""
    from clinfonce.runs.load import LoadedRun
    from clinfonce.training.build import untrained_encoder

    module = untrained_encoder(config, source)
    return LoadedRun(Path("untrained.ckpt"), None, module.cfg, module)
