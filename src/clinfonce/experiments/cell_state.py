"""Where a cell of an experiment stands: its ``experiment-cell.json`` marker and status.

The marker records a cell's stage (``training``, ``trained``, ``done``) with fingerprints of
its training config and of the evaluation settings, so a rerun can tell what a cell still
needs (see :func:`cell_status`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from clinfonce.experiments.grid import Cell
from clinfonce.outputs import atomic_write

CELL_FILE = "experiment-cell.json"


#: What a cell needs: nothing, evaluation only, resumed training, or training from scratch.
STATUSES: tuple[str, ...] = ("done", "evaluate", "resume", "train")


def run_dir_of(out_dir: str | Path, cell: Cell) -> Path:
    """The cell's training run directory, ``<out>/runs/<name>-seed<seed>``."""
    return Path(out_dir) / "runs" / cell.dirname


def read_marker(run_dir: Path) -> dict[str, Any]:
    """The cell's marker in ``run_dir`` (empty when absent or cut off mid-write)."""
    path = run_dir / CELL_FILE
    if not path.is_file():
        return {}
    try:
        loaded = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}  # a marker cut off mid-write: redo the cell
    return loaded if isinstance(loaded, dict) else {}


def write_marker(run_dir: Path, marker: dict[str, Any]) -> None:
    """Replace the cell's marker whole, so an interruption leaves the old one or the new."""
    text = json.dumps(marker, indent=2, default=str)
    atomic_write(run_dir / CELL_FILE, lambda temp: temp.write_text(text))


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
    marker = read_marker(run_dir)
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
