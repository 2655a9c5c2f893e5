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
import json
import math
import pickle
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from clinfonce.experiments.aggregate import NUMERIC_COLUMNS
from clinfonce.experiments.report import write_atomic, write_report
from clinfonce.experiments.spec import Cell, ExperimentSpec, eval_hash, expand_grid

Log = Callable[[str], None]
CELL_FILE = "experiment-cell.json"
#: Files of the output folder an experiment writes (an input there would be replaced).
EXPERIMENT_FILES: tuple[str, ...] = (
    "experiment.yaml",
    "results.csv",
    "summary.csv",
    "results.md",
    "accuracy.png",
)
#: Columns of ``results.csv``: accuracies in percent, cluster metrics in bits over the
#: training rows (empty for runs without clusters), seconds of wall time in this process.
RESULT_COLUMNS: tuple[str, ...] = (
    "name",
    "seed",
    "method",
    "clusters",
    "group",
    "x",
    "num_clusters",
    "h_z_given_t",
    "i_zt",
    "h_t",
    "knn_top1",
    "knn_top5",
    "linear_top1",
    "linear_top5",
    "train_seconds",
    "eval_seconds",
    "resumed",
    "eval_train",
    "eval_test",
    "train_hash",
    "eval_hash",
    "run_dir",
)
_TEXT_COLUMNS = ("name", "method", "clusters", "group", "x", "train_hash", "eval_hash", "run_dir")
#: What a cell needs: nothing, evaluation only, resumed training, or training from scratch.
STATUSES: tuple[str, ...] = ("done", "evaluate", "resume", "train")
#: Mappings inside a clusters description are cut to this many characters.
_LONG = 40


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


def run_dir_of(out_dir: str | Path, cell: Cell) -> Path:
    """The cell's training run directory, ``<out>/runs/<name>-seed<seed>``."""
    return Path(out_dir) / "runs" / cell.dirname


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


def _read_marker(run_dir: Path) -> dict[str, Any]:
    path = run_dir / CELL_FILE
    if not path.is_file():
        return {}
    try:
        loaded = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}  # a marker cut off mid-write: redo the cell
    return loaded if isinstance(loaded, dict) else {}


def _write_marker(run_dir: Path, marker: dict[str, Any]) -> None:
    write_atomic(run_dir / CELL_FILE, json.dumps(marker, indent=2, default=str))


def read_results(path: str | Path) -> pd.DataFrame:
    """``results.csv`` as a frame (text columns as text, empty when the file is absent).

    Examples:
        >>> read_results("absent.csv").empty
        True
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        empty: pd.DataFrame = pd.DataFrame(columns=list(RESULT_COLUMNS))
        return empty
    frame = pd.read_csv(path, dtype={c: str for c in _TEXT_COLUMNS}, keep_default_na=False)
    missing = [c for c in ("name", "seed") if c not in frame]
    if missing:
        raise ValueError(
            f"{path}: not an experiment results file (no column {', '.join(missing)}); "
            "move it away or pick another --out"
        )
    for column in NUMERIC_COLUMNS:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def _rows_by_key(frame: pd.DataFrame) -> dict[tuple[str, int], dict[str, Any]]:
    return {(str(r["name"]), int(r["seed"])): dict(r) for _, r in frame.iterrows()}


def _matches(row: dict[str, Any] | None, train_hash: str, settings_hash: str) -> bool:
    return (
        row is not None
        and row.get("train_hash") == train_hash
        and row.get("eval_hash") == settings_hash
    )


def cell_status(
    cell: Cell,
    out_dir: str | Path,
    settings_hash: str,
    previous: dict[tuple[str, int], dict[str, Any]] | None = None,
) -> tuple[str, dict[str, Any] | None]:
    """What the cell needs (one of :data:`STATUSES`) and its finished row when done.

    Args:
        cell: the cell.
        out_dir: the experiment's output folder.
        settings_hash: :func:`eval_hash` of the evaluation settings.
        previous: rows of ``results.csv`` by ``(name, seed)``.
    """
    train_hash = cell.train_hash()
    row = (previous or {}).get(cell.key)
    if _matches(row, train_hash, settings_hash):
        return "done", row
    run_dir = run_dir_of(out_dir, cell)
    marker = _read_marker(run_dir)
    if marker.get("train_hash") != train_hash:
        return "train", None
    stage = marker.get("stage")
    if stage == "done" and _matches(marker.get("row"), train_hash, settings_hash):
        return "done", marker["row"]
    checkpoint = (run_dir / "checkpoints" / "last.ckpt").is_file()
    if stage in ("trained", "done") and (checkpoint or cell.run.untrained):
        return "evaluate", None
    if stage == "training" and checkpoint:
        return "resume", None
    return "train", None


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
    previous = _rows_by_key(read_results(Path(out_dir) / "results.csv"))
    settings_hash = eval_hash(spec.evaluation)
    return [(c, cell_status(c, out_dir, settings_hash, previous)[0]) for c in cells]


def method_label(cell: Cell) -> str:
    """The ``method`` column: the config's method name, ``untrained`` for untrained runs."""
    return "untrained" if cell.run.untrained else cell.config.method.name


def describe_clusters(values: dict[str, Any]) -> str:
    """A one-line description of a config's ``clusters`` section (empty without one).

    Examples:
        >>> describe_clusters({"clusters": {"builder": "attributes",
        ...                                 "params": {"columns": ["level2"], "k": 1}}})
        'attributes columns=[level2] k=1'
    """
    section = values.get("clusters")
    if not isinstance(section, dict) or not section:
        return ""

    def text(value: Any) -> str:
        if isinstance(value, list | tuple):
            return "[" + ",".join(text(v) for v in value) + "]"
        if isinstance(value, dict):
            inner = ",".join(f"{k}:{text(v)}" for k, v in value.items())
            return "{" + (inner if len(inner) <= _LONG else inner[: _LONG - 3] + "...") + "}"
        return "null" if value is None else str(value)

    parts: list[str] = []
    for key, value in section.items():
        if key == "builder":
            parts.insert(0, str(value))
        elif key == "params" and isinstance(value, dict):
            parts += [f"{k}={text(v)}" for k, v in value.items()]
        else:
            parts.append(f"{key}={text(value)}")
    return " ".join(parts)


def cluster_info(data: Any) -> dict[str, float]:
    """K, H(Z|T), I(Z;T) and H(T) of a run's training clusters against its labels.

    Reads the plug-in metrics the data preparation stored (the unnamed clustering, or the
    only named one); empty when the run had no fixed clusters or no labels.
    """
    sidecar = getattr(data, "cluster_sidecar", None) or {}
    if "metrics_vs_labels" not in sidecar:
        named = list((getattr(data, "named_sidecars", None) or {}).values())
        sidecar = named[0] if len(named) == 1 else {}
    metrics = sidecar.get("metrics_vs_labels")
    if not metrics:
        return {}
    return {
        "num_clusters": float(metrics["num_clusters"]),
        "h_z_given_t": float(metrics["h_z_given_t"]),
        "i_zt": float(metrics["i_zt"]),
        "h_t": float(metrics["h_t"]),
    }


class _Sources:
    """Loaded datasets by (name, options): one load serves every run on the same data."""

    def __init__(self) -> None:
        self._cache: dict[str, Any] = {}

    def get(self, config: Any) -> Any:
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
    cell: Cell, run_dir: Path, resume: bool, sources: _Sources, log: Log
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
    _write_marker(run_dir, {**marker, "stage": "training"})
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
    _write_marker(run_dir, {**marker, "stage": "trained", "train": info})
    return module, info


def _evaluate_cell(
    cell: Cell, run_dir: Path, module: Any, spec: ExperimentSpec, device: Any
) -> tuple[dict[str, Any], float]:
    from clinfonce.evaluation.protocol import evaluate_run
    from clinfonce.training.load import LoadedRun, load_run

    start = time.perf_counter()
    config = _output_config(cell, run_dir)
    if module is None and cell.run.untrained:
        from clinfonce.training.build import untrained_encoder

        module = untrained_encoder(cell.config)
    if module is None:
        loaded = load_run(run_dir, which="last")
    else:
        loaded = LoadedRun(run_dir / "checkpoints" / "last.ckpt", run_dir, config, module)
    results = evaluate_run(loaded, spec.evaluation, device=device, log=lambda _: None)
    return results, round(time.perf_counter() - start, 2)


def _describe(cell: Cell) -> dict[str, Any]:
    """The descriptive columns of a cell's row (taken from the grid, never from old rows)."""
    x = "" if cell.run.group is None else ("all" if cell.run.x is None else str(cell.run.x))
    return {
        "name": cell.run.name,
        "seed": cell.seed,
        "method": method_label(cell),
        "clusters": "" if cell.run.untrained else describe_clusters(cell.values),
        "group": cell.run.group or "",
        "x": x,
    }


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
        **_describe(cell),
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
    sources: _Sources | None = None,
    log: Log = print,
) -> dict[str, Any]:
    """Train (unless already trained) and evaluate one cell; returns its results row.

    The row is also written into the cell's ``experiment-cell.json`` (its done marker).
    """
    run_dir = run_dir_of(out_dir, cell)
    sources = sources or _Sources()
    if status == "evaluate":
        module, info = None, dict(_read_marker(run_dir).get("train", {}))
    else:
        module, info = _train_cell(cell, run_dir, status == "resume", sources, log)
    results, seconds = _evaluate_cell(cell, run_dir, module, spec, device)
    row = _result_row(cell, run_dir, info, results, seconds, spec)
    _write_marker(
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


def _write_results(path: Path, rows: dict[tuple[str, int], dict[str, Any]]) -> None:
    frame = pd.DataFrame.from_records(list(rows.values()), columns=None if rows else RESULT_COLUMNS)
    columns = [c for c in RESULT_COLUMNS if c in frame] + [
        c for c in frame if c not in RESULT_COLUMNS
    ]
    write_atomic(path, frame[columns].to_csv(index=False))


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
        log: receives progress lines (``run i/n: <name> seed s — ETA hh:mm``).

    Examples:
        >>> from clinfonce.experiments import load_experiment, run_experiment
        >>> result = run_experiment(load_experiment("configs/experiments/smoke.yaml"),
        ...                         "/tmp/smoke")  # doctest: +SKIP
        >>> result.files["markdown"]  # doctest: +SKIP
        PosixPath('/tmp/smoke/results.md')
    """
    from clinfonce.evaluation.protocol import resolve_device

    out = Path(out_dir) if out_dir is not None else default_out_dir(spec)
    cells = expand_grid(spec, overrides, seeds=seeds, only=only)
    eval_device = resolve_device(device)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "experiment.yaml", _spec_record(spec, cells, overrides))
    results_path = out / "results.csv"
    rows = _rows_by_key(read_results(results_path))
    settings_hash = eval_hash(spec.evaluation)
    statuses = [cell_status(c, out, settings_hash, rows) for c in cells]
    for cell, (status, row) in zip(cells, statuses, strict=True):
        if status == "done" and row is not None:
            rows[cell.key] = row  # a marker's row missing from results.csv comes back
    _write_results(results_path, rows)
    kinds = [_kind(c, status) for c, (status, _) in zip(cells, statuses, strict=True)]
    sources = _Sources()
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
        _write_results(results_path, rows)
        log(
            f"  linear top-1 {row['linear_top1']:.1f}, kNN top-1 {row['knn_top1']:.1f} "
            f"(train {row['train_seconds']:.0f} s, evaluation {row['eval_seconds']:.0f} s)"
        )
        # The table follows every finished run; the plots come once, at the end.
        write_report(spec, cells, _current_rows(rows, cells), out, command=command, plots=False)
    current = _current_rows(rows, cells)
    summary, files = write_report(spec, cells, current, out, command=command)
    files = {"results": results_path, **files}
    return ExperimentResult(out, current, summary, files, len(finished))


def _current_rows(
    rows: dict[tuple[str, int], dict[str, Any]], cells: Sequence[Cell]
) -> pd.DataFrame:
    """The rows of this grid's cells, in grid order, with the grid's run descriptions."""
    records = []
    for cell in cells:
        row = rows.get(cell.key)
        if row is not None:
            records.append({**row, **_describe(cell)})
    frame: pd.DataFrame = pd.DataFrame.from_records(records, columns=list(RESULT_COLUMNS))
    for column in NUMERIC_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    for column in ("group", "x", "clusters"):
        frame[column] = frame[column].fillna("").astype(str)
    return frame
