"""Run an experiment grid: train and evaluate every (run, seed) cell, resumably, then report.

Output folder::

    experiment.yaml          the experiment as run (base config, runs, seeds, evaluation)
    results.csv              one row per finished (run, seed), see RESULT_COLUMNS
    summary.csv              per run: mean and std over seeds, gap closed
    results.md               budget, evaluation protocol and the mean ± std table
    accuracy.png             linear-probe and kNN top-1 per run
    sweep-<group>.png        K, H(Z|T), I(Z;T) and accuracy against a sweep's values
    runs/<name>-seed<s>/     each cell's training run directory, plus experiment-cell.json

Resuming: ``experiment-cell.json`` records a cell's stage (``training``, ``trained``,
``done``) with fingerprints of its training config and of the evaluation settings. On a
rerun, a cell whose row (in ``results.csv`` or its marker) has the same fingerprints is
skipped; a trained cell is only evaluated; a cell interrupted while training continues from
its ``last.ckpt``; a cell whose config changed is trained again from scratch.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from clinfonce.experiments.cell_state import cell_status
from clinfonce.experiments.cells import SourceCache, run_cell
from clinfonce.experiments.grid import Cell, expand_grid
from clinfonce.experiments.report import write_report
from clinfonce.experiments.results_table import (
    current_rows,
    read_results,
    rows_by_key,
    write_results_file,
)
from clinfonce.experiments.spec import ExperimentSpec, eval_hash
from clinfonce.outputs import atomic_write

Log = Callable[[str], None]


#: Files of the output folder an experiment writes (an input there would be replaced).
EXPERIMENT_FILES: tuple[str, ...] = (
    "experiment.yaml",
    "results.csv",
    "summary.csv",
    "results.md",
    "accuracy.png",
)


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` produced.

    Attributes:
        out_dir: the output folder.
        rows: the results rows of this grid's cells.
        summary: per run: mean/std over seeds and gap closed.
        files: report files by kind (``results``, ``summary``, ``markdown``, ``accuracy``,
            ``sweep-<group>``).
        trained: cells trained or evaluated in this call; the others were already done.
    """

    out_dir: Path
    rows: pd.DataFrame
    summary: pd.DataFrame
    files: dict[str, Path] = field(default_factory=dict)
    trained: int = 0


def default_out_dir(spec: ExperimentSpec) -> Path:
    """``runs/experiments/<experiment name>``."""
    return Path("runs") / "experiments" / spec.name


def format_eta(seconds: float | None) -> str:
    """``hh:mm`` of a remaining time (minutes rounded up); ``--:--`` when unknown.

    Examples:
        >>> format_eta(3 * 3600 + 61), format_eta(0), format_eta(None)
        ('03:02', '00:00', '--:--')
    """
    if seconds is None or not math.isfinite(seconds):
        return "--:--"
    minutes = math.ceil(max(seconds, 0.0) / 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def plan_experiment(
    cells: Sequence[Cell], out_dir: str | Path, spec: ExperimentSpec
) -> list[tuple[Cell, str]]:
    """Every cell with its status (see :func:`cell_status`), without running anything.

    Examples:
        >>> from clinfonce.experiments.spec import experiment_from_dict
        >>> spec = experiment_from_dict({"base": {"method": {"name": "simclr"}},
        ...                              "runs": [{"name": "a"}]})
        >>> [(c.dirname, s) for c, s in plan_experiment(expand_grid(spec), "/nonexistent",
        ...                                               spec)]
        [('a-seed0', 'train')]
    """
    previous = rows_by_key(read_results(Path(out_dir) / "results.csv"))
    settings_hash = eval_hash(spec.evaluation)
    return [(c, cell_status(c, out_dir, settings_hash, previous)[0]) for c in cells]


def _spec_record(spec: ExperimentSpec, cells: Sequence[Cell], overrides: Sequence[str]) -> str:
    runs = list({c.run.name: c.run for c in cells}.values())
    record = {
        "name": spec.name,
        "description": spec.description,
        "source": str(spec.source) if spec.source else None,
        "base": spec.base,
        "overrides": list(overrides),
        "seeds": sorted({c.seed for c in cells}),
        "evaluation": {
            **dataclasses.asdict(spec.evaluation),
            "cs": list(spec.evaluation.cs),
            "knn_ks": list(spec.evaluation.knn_ks),
            "topk": list(spec.evaluation.topk),
        },
        "gap": list(spec.gap) if spec.gap else None,
        "runs": [dataclasses.asdict(r) for r in runs],
    }
    return yaml.safe_dump(record, sort_keys=False)


def _kind(cell: Cell, status: str) -> str:
    """Cells of one kind take about as long: ``done``, ``untrained``, ``evaluate``, ``train``."""
    if status == "done":
        return "done"
    if cell.run.untrained:
        return "untrained"
    return "evaluate" if status == "evaluate" else "train"


def estimate_remaining(finished: Sequence[tuple[str, float]], kinds: Sequence[str]) -> float | None:
    """Seconds left for cells of ``kinds``: each at the mean time of finished cells of its
    kind (of all finished cells when none of its kind has finished); ``None`` before any.

    Examples:
        >>> estimate_remaining([("train", 80.0), ("untrained", 0.0), ("train", 100.0)],
        ...                    ["train", "untrained", "evaluate"])
        150.0
        >>> estimate_remaining([], ["train"]) is None
        True
    """
    if not finished:
        return None
    overall = sum(t for _, t in finished) / len(finished)
    means: dict[str, float] = {}
    for kind in {k for k, _ in finished}:
        times = [t for k, t in finished if k == kind]
        means[kind] = sum(times) / len(times)
    return sum(means.get(kind, overall) for kind in kinds)


def run_experiment(
    spec: ExperimentSpec,
    out_dir: str | Path | None = None,
    *,
    overrides: Sequence[str] = (),
    seeds: Sequence[int] | None = None,
    only: Sequence[str] | None = None,
    device: str = "auto",
    command: str | None = None,
    sources: SourceCache | None = None,
    log: Log = print,
) -> ExperimentResult:
    """Run every cell not yet done, then write the results, the table and the plots.

    Args:
        spec: from :func:`clinfonce.experiments.load_experiment`.
        out_dir: output folder (default :func:`default_out_dir`).
        overrides: ``key=value`` changes to every run's training config.
        seeds: replace the experiment's seeds.
        only: run only these run names.
        device: evaluation device (``auto``: CUDA when available); training follows each
            config's ``train.accelerator``.
        command: the command line, quoted in ``results.md``.
        sources: datasets already loaded (default: each loaded once, when first needed).
        log: receives progress lines (``run i/n: <name> seed s — ETA hh:mm``).

    Examples:
        >>> from clinfonce.experiments import load_experiment, run_experiment
        >>> result = run_experiment(load_experiment("configs/experiments/smoke.yaml"),
        ...                         "/tmp/smoke")  # doctest: +SKIP
        >>> result.files["markdown"]  # doctest: +SKIP
        PosixPath('/tmp/smoke/results.md')
    """
    from clinfonce.evaluation.features import resolve_device

    out = Path(out_dir) if out_dir is not None else default_out_dir(spec)
    cells = expand_grid(spec, overrides, seeds=seeds, only=only)
    eval_device = resolve_device(device)
    out.mkdir(parents=True, exist_ok=True)
    record = _spec_record(spec, cells, overrides)
    atomic_write(out / "experiment.yaml", lambda temp: temp.write_text(record))
    results_path = out / "results.csv"
    rows = rows_by_key(read_results(results_path))
    settings_hash = eval_hash(spec.evaluation)
    statuses = [cell_status(c, out, settings_hash, rows) for c in cells]
    for cell, (status, row) in zip(cells, statuses, strict=True):
        if status == "done" and row is not None:
            rows[cell.key] = row  # a marker's row missing from results.csv comes back
    write_results_file(results_path, rows)
    kinds = [_kind(c, status) for c, (status, _) in zip(cells, statuses, strict=True)]
    sources = sources or SourceCache()
    finished: list[tuple[str, float]] = []
    for i, (cell, (status, _)) in enumerate(zip(cells, statuses, strict=True)):
        where = f"run {cell.index + 1}/{len(cells)}: {cell.run.name} seed {cell.seed}"
        if status == "done":
            log(f"{where} — done, skipped")
            continue
        eta = estimate_remaining(finished, [k for k in kinds[i:] if k != "done"])
        note = {"evaluate": " (trained; evaluating)", "resume": " (resuming from last.ckpt)"}
        log(f"{where} — ETA {format_eta(eta)}{note.get(status, '')}")
        start = time.perf_counter()
        row = run_cell(cell, status, out, spec, device=eval_device, sources=sources, log=log)
        finished.append((kinds[i], time.perf_counter() - start))
        rows[cell.key] = row
        write_results_file(results_path, rows)
        log(
            f"  linear top-1 {row['linear_top1']:.1f}, kNN top-1 {row['knn_top1']:.1f} "
            f"(train {row['train_seconds']:.0f} s, evaluation {row['eval_seconds']:.0f} s)"
        )
        # The table follows every finished run; the plots come once, at the end.
        write_report(spec, cells, current_rows(rows, cells), out, command=command, plots=False)
    current = current_rows(rows, cells)
    summary, files = write_report(spec, cells, current, out, command=command)
    files = {"results": results_path, **files}
    return ExperimentResult(out, current, summary, files, len(finished))
