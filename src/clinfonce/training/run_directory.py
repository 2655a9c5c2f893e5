"""The run directory: its layout, claiming it for a new run, finding its checkpoints.

Run directory (``output.dir/output.name``)::

    run.json                    the run id, also stamped into every checkpoint of the run
    config.yaml                 the resolved config
    clusters.csv[.json]         the cluster assignment used and its sidecar (Cl-InfoNCE)
    clusters-<name>.csv[.json]  each named clustering (clusters.named)
    kmeans.jsonl                kmeans-clinfonce: one line per K-means re-clustering
    checkpoints/last.ckpt       every epoch (train.checkpoint_every_n_steps: more often)
                                and on SIGINT/SIGTERM/SLURM pre-emption; --resume continues
    checkpoints/best.ckpt       best monitor/knn_top1 so far (when labels exist)
    logs/csv/version_<n>/metrics.csv, logs/tensorboard/version_<n>/
                                CSV and TensorBoard logs, one version per (re)start
    summary.json                final metrics, steps, wall time
    .lock                       held by the process training in it (see :class:`RunLock`)

Training (``--resume``) and evaluation (``clinfonce evaluate``/``embed``) find checkpoints
here the same way (:func:`checkpoint_in`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from clinfonce.binder import deep_merge
from clinfonce.data.cluster_ids import write_clusters
from clinfonce.data.prepare import PreparedData
from clinfonce.outputs import existing_paths, inputs_inside, is_inside, process_lock
from clinfonce.training.checkpointing import (
    RUN_FILE,
    check_same_run,
    read_checkpoint,
)
from clinfonce.training.config import ExperimentConfig, load_config, save_config

CONFIG_FILE = "config.yaml"
LOCK_FILE = ".lock"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
#: Entries that mark a directory as a run directory, which ``output.overwrite`` may clear.
RUN_MARKERS: tuple[str, ...] = (RUN_FILE, CONFIG_FILE, "checkpoints", "logs", "summary.json")
#: Checkpoints a run directory holds (``checkpoints/<name>.ckpt``).
CHECKPOINT_NAMES: tuple[str, ...] = ("last", "best")


def run_directory(config: ExperimentConfig) -> Path:
    """``output.dir / output.name`` (name defaults to ``run``).

    Raises:
        ValueError: ``output.name`` is a path rather than a name, so the run would land
            outside ``output.dir``.
    """
    name = config.output.name or "run"
    if Path(name).name != name or name in (".", ".."):
        raise ValueError(
            f"output.name={name!r} must be a plain name (no '/' or '..'); put the parent "
            "folder in output.dir instead"
        )
    return Path(config.output.dir) / name


def claim_run_directory(
    config: ExperimentConfig, keep: Sequence[str] = (), inputs: Iterable[str | Path] = ()
) -> Path:
    """The run directory for a new run: created, or emptied when ``output.overwrite``.

    A directory holding anything (an interrupted run, other files) is refused unless
    ``output.overwrite=true``, which deletes its contents first, checkpoints included, so
    nothing of an earlier run can be mistaken for the new one. Only a run directory (see
    :data:`RUN_MARKERS`) is ever cleared, and never one holding an input of the run: a
    file the config names (table, hierarchy, assignment) or one of ``inputs``.

    Args:
        config: the run's config.
        keep: names in the directory that belong to the caller (an experiment's cell
            marker): neither counted nor deleted.
        inputs: further files the run reads (the table's image files, see
            :attr:`~clinfonce.data.sources.ImageSource.inputs`).
    """
    run_dir = run_directory(config)
    present = check_run_directory(config, keep)
    if present and (run_dir / LOCK_FILE).exists():
        with _run_lock(run_dir):  # refuses a directory a run is training in
            pass
    if present:
        inside = inputs_inside(run_dir, inputs)
        if inside:
            more = f" and {len(inside) - 1} more" if len(inside) > 1 else ""
            raise ValueError(
                f"output.overwrite=true would delete {inside[0]}{more}: this is an input of "
                f"the run (the table or an image it lists) inside its run directory {run_dir}; "
                "pick another output.name (`clinfonce run`: --out)"
            )
    for path in present:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def check_run_directory(config: ExperimentConfig, keep: Sequence[str] = ()) -> list[Path]:
    """What :func:`claim_run_directory` would delete, after the checks it can make from the
    config alone (run before the data loads, so a refusal comes at once).

    Raises:
        ValueError: the directory is a file, is not empty and ``output.overwrite`` is not
            set, is not a run directory, or holds a file the config names as an input.
    """
    run_dir = run_directory(config)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"run directory {run_dir} is a file; pick another output.name")
    ignored = {*keep, LOCK_FILE}  # the lock file stays: a process may be waiting on it
    present = [p for p in run_dir.iterdir() if p.name not in ignored] if run_dir.is_dir() else []
    if present and not config.output.overwrite:
        raise ValueError(
            f"run directory {run_dir} is not empty (it holds {present[0].name}"
            f"{f' and {len(present) - 1} more' if len(present) > 1 else ''}); continue it with "
            f"`clinfonce train --resume {run_dir}`, pick another output.name (`clinfonce run`: "
            "--out), or set output.overwrite=true to delete it and start again"
        )
    if present and not any((run_dir / name).exists() for name in RUN_MARKERS):
        raise ValueError(
            f"run directory {run_dir} holds files but is not a clinfonce run directory (no "
            f"{' or '.join(RUN_MARKERS[:2])}); output.overwrite=true only clears run "
            "directories: pick another output.name, or empty it yourself"
        )
    config_values = config.to_dict()
    for source in existing_paths([config_values["data"], config_values["clusters"]]):
        if present and is_inside(source, run_dir):
            raise ValueError(
                f"output.overwrite=true would delete {source}: this is an input of this run, "
                f"inside its run directory {run_dir}; move it elsewhere or pick another "
                "output.name"
            )
    return present


def _run_lock(run_dir: Path) -> AbstractContextManager[None]:
    def in_use(holder: str) -> None:
        raise ValueError(
            f"run directory {run_dir} is in use: {holder} is training in it (a second "
            "`--resume` of the same run?); wait for it to finish, or stop it first"
        )

    return process_lock(run_dir / LOCK_FILE, in_use)


class RunLock(Callback):
    """Holds the run directory's lock while training (global rank zero): a second process
    resuming or overwriting the same run is refused instead of writing the same checkpoints.
    First among the callbacks, so it refuses before any other writes."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._held = ExitStack()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.is_global_zero:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._held.enter_context(_run_lock(self.run_dir))

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._held.close()


class RunFiles(Callback):
    """Writes the resolved config and the clusters used into the run directory, once.

    A callback, because only once the strategy is set up is the global rank known for every
    launcher (Lightning's, torchrun, SLURM): under DDP every process runs :func:`train`, and
    only global rank zero may write the shared run directory.
    """

    def __init__(self, config: ExperimentConfig, data: PreparedData, run_dir: Path) -> None:
        self.config, self.data, self.run_dir = config, data, run_dir

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if trainer.is_global_zero:
            save_config(self.config, self.run_dir / CONFIG_FILE)
            write_clusters(self.data, self.config.data, self.run_dir)


def requeued_slurm_job() -> bool:
    """Whether this is a SLURM job started again by ``scontrol requeue`` (after pre-emption)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def load_run_config(run_dir: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """The resolved config saved in a run directory, with overrides applied."""
    return load_config(Path(run_dir) / CONFIG_FILE, list(overrides))


def checkpoint_in(path: Path, which: str) -> Path:
    """The ``which`` checkpoint of a run directory, or ``path`` itself when it is not a
    directory (a ``.ckpt`` file), whether or not it exists.

    Examples:
        >>> checkpoint_in(Path("no-such-run"), "best")
        PosixPath('no-such-run')
    """
    return path / "checkpoints" / f"{which}.ckpt" if path.is_dir() else path


def resolve_resume(resume: str | Path, config: ExperimentConfig | None = None) -> tuple[Path, Path]:
    """Run directory and checkpoint of a ``--resume`` argument (a run dir or a ``.ckpt``).

    With ``config`` (the one the resumed run will use), also what changed since the run
    started (see :func:`check_resume_config`).

    Raises:
        FileNotFoundError: there is no checkpoint there.
        ValueError: the checkpoint is empty, truncated, not a training checkpoint, or one of
            another run (copied in: its run id is not the run directory's).
    """
    path = Path(resume)
    checkpoint = checkpoint_in(path, "last")
    run_dir = path if path.is_dir() else checkpoint.parent.parent
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"no checkpoint to resume from at {checkpoint}; pass a run directory containing "
            f"{LAST_CHECKPOINT} or a .ckpt file"
        )
    loaded = read_checkpoint(checkpoint)  # a clear error now rather than deep inside Lightning
    check_same_run(
        loaded,
        checkpoint,
        run_dir,
        "copied from another run? Resuming it would continue another run's training under "
        "this run's config and logs; resume the run it came from, or put back this run's own "
        "checkpoint",
    )
    stored = loaded.get("hyper_parameters", {}).get("config")
    if config is not None and isinstance(stored, dict):
        # A setting that did not exist when the run started meant its default then.
        started = deep_merge(ExperimentConfig().to_dict(), stored)
        check_resume_config(started, config.to_dict())
    return run_dir, checkpoint


#: Settings a resumed run may change: they say how long to train, on what hardware and
#: what to log, not what trains. Any other change contradicts the checkpoint's state.
RESUMABLE_CHANGES: tuple[str, ...] = (
    "train.epochs",
    "train.devices",
    "train.num_nodes",
    "train.strategy",
    "train.accelerator",
    "train.precision",
    "train.num_workers",
    "train.progress_bar",
    "train.log_every_n_steps",
    "train.checkpoint_every_n_steps",
    "model.compile",
    "monitor.",
    "output.",
)


def check_resume_config(started: dict[str, Any], now: dict[str, Any]) -> None:
    """Say what changed in the config since the run started, and refuse what a resume cannot
    honour: the optimiser's learning rate and momentum come back from the checkpoint (an
    edited ``optim.lr`` would be ignored), and a new batch size, data, clusters, model or
    method would train something the checkpoint never was.

    Raises:
        ValueError: a setting outside :data:`RESUMABLE_CHANGES` changed; the message lists
            each change.

    Examples:
        >>> check_resume_config({"train": {"epochs": 3}}, {"train": {"epochs": 5}})
        resuming with changed settings (applied): train.epochs 3 -> 5
    """
    changes = list(_differences(started, now))
    refused = [c for c in changes if not c[0].startswith(RESUMABLE_CHANGES)]
    if refused:
        listed = "; ".join(f"{key} {before!r} -> {after!r}" for key, before, after in refused)
        raise ValueError(
            f"the config changed since the run started: {listed}; a resumed run continues the "
            "checkpoint exactly (its optimiser keeps its learning rate, its data order its "
            "batch size), which these changes contradict: put the values back, or start a "
            "new run with them"
        )
    if changes:
        listed = "; ".join(f"{key} {before!r} -> {after!r}" for key, before, after in changes)
        print(f"resuming with changed settings (applied): {listed}", flush=True)


def _differences(a: Any, b: Any, key: str = "") -> Iterator[tuple[str, Any, Any]]:
    """``(dotted key, a's value, b's value)`` of every leaf where nested mappings differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for name in dict.fromkeys([*a, *b]):
            yield from _differences(a.get(name), b.get(name), f"{key}.{name}".lstrip("."))
    elif a != b:
        yield key, a, b


def resolve_checkpoint(path: str | Path, which: str = "last") -> Path:
    """The checkpoint of a run directory (``checkpoints/<which>.ckpt``) or a ``.ckpt`` path.

    Examples:
        >>> resolve_checkpoint("runs/fashion-mnist-clinfonce", "best")  # doctest: +SKIP
        PosixPath('runs/fashion-mnist-clinfonce/checkpoints/best.ckpt')
    """
    if which not in CHECKPOINT_NAMES:
        raise ValueError(f"checkpoint must be one of {', '.join(CHECKPOINT_NAMES)}, got {which!r}")
    path = Path(path)
    checkpoint = checkpoint_in(path, which)
    if not checkpoint.is_file():
        if not path.is_dir():
            hint = "pass a run directory or an existing .ckpt file"
        elif which == "best" and checkpoint_in(path, "last").is_file():
            hint = (
                "best.ckpt is only written when the kNN monitor ran during training (labels "
                "and monitor.enabled); use --which last"
            )
        else:
            hint = f"the run directory {path} has no checkpoints/{which}.ckpt (was it trained?)"
        raise FileNotFoundError(f"no checkpoint at {checkpoint}: {hint}")
    return checkpoint


def checkpoint_run_dir(checkpoint: str | Path) -> Path | None:
    """The run directory of a checkpoint (``<run>/checkpoints/x.ckpt`` with
    ``<run>/config.yaml``), or ``None`` when it does not sit in one."""
    checkpoint = Path(checkpoint)
    run_dir = checkpoint.parent.parent
    if checkpoint.parent.name == "checkpoints" and (run_dir / CONFIG_FILE).is_file():
        return run_dir
    return None
