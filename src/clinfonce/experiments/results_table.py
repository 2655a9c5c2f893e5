"""``results.csv``: one row per finished (run, seed) of an experiment, read and written whole.

The descriptive columns (name, method, clusters, group, x) always come from the grid, never
from old rows, so renaming a run's description needs no retraining.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from clinfonce.experiments.aggregate import NUMERIC_COLUMNS
from clinfonce.experiments.grid import Cell
from clinfonce.outputs import atomic_write

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


#: Mappings inside a clusters description are cut to this many characters.
_LONG = 40


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


def rows_by_key(frame: pd.DataFrame) -> dict[tuple[str, int], dict[str, Any]]:
    """The rows of a results frame by ``(name, seed)``, the key of a cell."""
    return {(str(r["name"]), int(r["seed"])): dict(r) for _, r in frame.iterrows()}


def write_results_file(path: Path, rows: dict[tuple[str, int], dict[str, Any]]) -> None:
    """Write ``results.csv`` whole: :data:`RESULT_COLUMNS` first, any others after."""
    frame = pd.DataFrame.from_records(list(rows.values()), columns=None if rows else RESULT_COLUMNS)
    columns = [c for c in RESULT_COLUMNS if c in frame] + [
        c for c in frame if c not in RESULT_COLUMNS
    ]
    atomic_write(path, lambda temp: temp.write_text(frame[columns].to_csv(index=False)))


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


def describe_cell(cell: Cell) -> dict[str, Any]:
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


def current_rows(
    rows: dict[tuple[str, int], dict[str, Any]], cells: Sequence[Cell]
) -> pd.DataFrame:
    """The rows of this grid's cells, in grid order, with the grid's run descriptions."""
    records = []
    for cell in cells:
        row = rows.get(cell.key)
        if row is not None:
            records.append({**row, **describe_cell(cell)})
    frame: pd.DataFrame = pd.DataFrame.from_records(records, columns=list(RESULT_COLUMNS))
    for column in NUMERIC_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    for column in ("group", "x", "clusters"):
        frame[column] = frame[column].fillna("").astype(str)
    return frame
