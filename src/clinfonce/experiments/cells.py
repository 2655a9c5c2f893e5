"""Run one cell of an experiment: train it (or continue, or build the untrained encoder),
evaluate it, and return its ``results.csv`` row."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinfonce.experiments.cell_state import CELL_FILE, read_marker, run_dir_of, write_marker
from clinfonce.experiments.grid import Cell
from clinfonce.experiments.results_table import describe_cell
from clinfonce.experiments.spec import ExperimentSpec, eval_hash

if TYPE_CHECKING:  # loading data needs torch; only the type is needed here
    from clinfonce.data.prepare import PreparedData

Log = Callable[[str], None]


def cluster_info(data: PreparedData) -> dict[str, float]:
    """K, H(Z|T), I(Z;T) and H(T) of a run's training clusters against its labels.

    Reads the plug-in metrics the data preparation stored (the unnamed clustering, or the
    only named one); empty when the run had no fixed clusters or no labels.
    """
    sidecar = data.cluster_sidecar
    if (sidecar is None or sidecar.metrics is None) and len(data.named_sidecars) == 1:
        sidecar = next(iter(data.named_sidecars.values()))
    metrics = None if sidecar is None else sidecar.metrics
    if not metrics:
        return {}
    return {
        "num_clusters": float(metrics["num_clusters"]),
        "h_z_given_t": float(metrics["h_z_given_t"]),
        "i_zt": float(metrics["i_zt"]),
        "h_t": float(metrics["h_t"]),
    }


class SourceCache:
    """Loaded datasets by (name, options): one load serves every run on the same data."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def get(self, config: Any) -> Any:
        """The dataset of ``config.data``, loaded on first use."""
        from clinfonce.data import load_source

        key = json.dumps([config.data.dataset, config.data.options], sort_keys=True, default=str)
        if key not in self._cache:
            self._cache[key] = load_source(config.data.dataset, **config.data.options)
        return self._cache[key]


def _output_config(cell: Cell, run_dir: Path) -> Any:
    output = dataclasses.replace(
        cell.config.output, dir=str(run_dir.parent), name=run_dir.name, overwrite=True
    )
    return dataclasses.replace(cell.config, output=output)


def _train_cell(
    cell: Cell, run_dir: Path, resume: bool, sources: SourceCache, log: Log
) -> tuple[Any, dict[str, Any]]:
    """Train (or continue) one cell; returns the module and what the row needs."""
    from clinfonce.training import train
    from clinfonce.training.checkpointing import TrainingInterrupted

    config = _output_config(cell, run_dir)
    marker = {"name": cell.run.name, "seed": cell.seed, "train_hash": cell.train_hash()}
    source = sources.get(config)
    if not resume:
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
    write_marker(run_dir, {**marker, "stage": "training"})
    start = time.perf_counter()
    if cell.run.untrained:
        from clinfonce.training.build import untrained_encoder

        module, info = untrained_encoder(cell.config, source), {}
    else:
        try:
            result = train(
                config, resume=run_dir if resume else None, source=source, keep=(CELL_FILE,)
            )
        except TrainingInterrupted as exc:
            hint = "rerun the same `clinfonce experiment` command to continue this cell"
            raise TrainingInterrupted(exc.signum, run_dir, exc.global_step, hint) from None
        except (RuntimeError, EOFError, KeyError, ValueError, pickle.UnpicklingError) as exc:
            if not resume:
                raise
            log(f"  could not resume from {run_dir}/checkpoints/last.ckpt ({exc}); restarting")
            return _train_cell(cell, run_dir, False, sources, log)
        module, info = result.module, cluster_info(result.data)
    info = {**info, "train_seconds": round(time.perf_counter() - start, 2), "resumed": resume}
    write_marker(run_dir, {**marker, "stage": "trained", "train": info})
    return module, info


def _evaluate_cell(
    cell: Cell, run_dir: Path, module: Any, spec: ExperimentSpec, device: Any, source: Any
) -> tuple[dict[str, Any], float]:
    from clinfonce.runs.evaluate import evaluate_run
    from clinfonce.runs.load import LoadedRun, load_run

    start = time.perf_counter()
    config = _output_config(cell, run_dir)
    if module is None and cell.run.untrained:
        from clinfonce.training.build import untrained_encoder

        module = untrained_encoder(cell.config, source)
    if module is None:
        loaded = load_run(run_dir, which="last")
    else:
        loaded = LoadedRun(run_dir / "checkpoints" / "last.ckpt", run_dir, config, module)
    results = evaluate_run(
        loaded, spec.evaluation, device=device, log=lambda _: None, source=source
    )
    return results, round(time.perf_counter() - start, 2)


def _result_row(
    cell: Cell,
    run_dir: Path,
    info: dict[str, Any],
    results: dict[str, Any],
    eval_seconds: float,
    spec: ExperimentSpec,
) -> dict[str, Any]:
    knn = results["knn"].get(str(spec.knn_k), {})
    linear = results.get("linear") or {}

    def percent(value: Any) -> float:
        return 100 * float(value) if value is not None else math.nan

    return {
        **describe_cell(cell),
        "num_clusters": info.get("num_clusters", math.nan),
        "h_z_given_t": info.get("h_z_given_t", math.nan),
        "i_zt": info.get("i_zt", math.nan),
        "h_t": info.get("h_t", math.nan),
        "knn_top1": percent(knn.get("top1")),
        "knn_top5": percent(knn.get("top5")),
        "linear_top1": percent(linear.get("top1")),
        "linear_top5": percent(linear.get("top5")),
        "train_seconds": info.get("train_seconds", math.nan),
        "eval_seconds": eval_seconds,
        "resumed": bool(info.get("resumed", False)),
        "eval_train": results["train"]["samples"],
        "eval_test": results["test"]["samples"],
        "train_hash": cell.train_hash(),
        "eval_hash": eval_hash(spec.evaluation),
        "run_dir": str(run_dir),
    }


def run_cell(
    cell: Cell,
    status: str,
    out_dir: str | Path,
    spec: ExperimentSpec,
    *,
    device: Any = "cpu",
    sources: SourceCache | None = None,
    log: Log = print,
) -> dict[str, Any]:
    """Train (unless already trained) and evaluate one cell; returns its results row.

    The row is also written into the cell's ``experiment-cell.json`` (its done marker).
    """
    run_dir = run_dir_of(out_dir, cell)
    sources = sources or SourceCache()
    if status == "evaluate":
        module, info = None, dict(read_marker(run_dir).get("train", {}))
    else:
        module, info = _train_cell(cell, run_dir, status == "resume", sources, log)
    source = sources.get(cell.config)
    results, seconds = _evaluate_cell(cell, run_dir, module, spec, device, source)
    row = _result_row(cell, run_dir, info, results, seconds, spec)
    write_marker(
        run_dir,
        {
            "name": cell.run.name,
            "seed": cell.seed,
            "train_hash": row["train_hash"],
            "eval_hash": row["eval_hash"],
            "stage": "done",
            "train": info,
            "row": row,
        },
    )
    return row
