"""Checkpoints that survive interruption, and the identity of the run that wrote them.

* :class:`AtomicCheckpointIO` writes every checkpoint to a temporary file next to its target
  and renames it into place: a kill at any moment leaves the previous checkpoint intact and
  no orphan in the system temp folder (Lightning's own writer stages files there).
* :class:`LastCheckpoint` saves ``checkpoints/last.ckpt`` at the end of every epoch, every
  ``train.checkpoint_every_n_steps`` steps, and when training is stopped by a signal. It
  also records how far into the epoch the save happened, so that a resumed run skips the
  batches already trained on and follows the uninterrupted run's data order exactly.
* :func:`stop_gracefully` turns SIGINT, SIGTERM and SLURM's pre-emption signal into a
  request to stop after the current step (Lightning's own SIGTERM flag), so the checkpoint
  is taken between steps rather than in the middle of an optimiser update.
* Every checkpoint carries the run id of the directory it belongs to (``run.json``), so
  a checkpoint left from an earlier run is recognised as stale.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from clinfonce.interrupted import TrainingInterrupted
from clinfonce.outputs import atomic_write
from clinfonce.training.distributed import DistributedBatchSampler

__all__ = [
    "RUN_FILE",
    "AtomicCheckpointIO",
    "LastCheckpoint",
    "TrainingInterrupted",
    "checkpoint_run_id",
    "new_run_id",
    "read_checkpoint",
    "read_run_id",
    "stop_gracefully",
    "write_run_id",
]

RUN_FILE = "run.json"
#: Key of the run id inside a checkpoint.
RUN_ID_KEY = "clinfonce_run_id"
#: The signal SLURM sends before pre-empting a job (``#SBATCH --signal=USR1@90``).
SLURM_SIGNAL = signal.SIGUSR1


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` through a temporary file beside the target, then an atomic rename."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` to ``path``; readers see the old file or the whole new one."""
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")

        def save(temp: Path) -> None:
            try:
                torch.save(checkpoint, temp)
            except RuntimeError as exc:  # torch's writer reports a full disk this way
                raise OSError(str(exc).strip()) from exc

        atomic_write(path, save)


def new_run_id() -> str:
    """A fresh random run id (12 hex digits)."""
    return secrets.token_hex(6)


def read_run_id(run_dir: str | Path) -> str | None:
    """The run id recorded in ``run_dir/run.json``, or ``None`` (a run from before run ids)."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("run_id")
    except (ValueError, AttributeError):
        return None
    return str(value) if value else None


def write_run_id(run_dir: Path, run_id: str) -> None:
    """Record ``run_id`` as the owner of ``run_dir`` (atomically)."""
    text = json.dumps({"run_id": run_id}, indent=2) + "\n"
    atomic_write(run_dir / RUN_FILE, lambda temp: temp.write_text(text, encoding="utf-8"))


class LastCheckpoint(Checkpoint):
    """Keeps ``last.ckpt`` current: every epoch, every ``every_n_steps`` steps, on a signal.

    A :class:`~lightning.pytorch.callbacks.Checkpoint` subclass, so Lightning runs it after
    the other callbacks (the kNN monitor has logged by then).

    Args:
        path: the ``last.ckpt`` file (``<run dir>/checkpoints/last.ckpt``).
        every_n_steps: also save every this many optimiser steps inside an epoch (0: only
            at epoch ends and on signals).
        batches: the training loader's batch sampler; a resumed run tells it how many
            batches of the interrupted epoch to skip.
        run_id: written into every checkpoint of the run (see :func:`checkpoint_run_id`).
        training_rows: what the run trains on (:func:`rows_fingerprint`); a resume whose
            rows differ is refused.
    """

    def __init__(
        self,
        path: Path,
        every_n_steps: int,
        batches: DistributedBatchSampler,
        run_id: str,
        training_rows: str = "",
    ) -> None:
        self.path, self.every_n_steps, self.batches, self.run_id = (
            path,
            every_n_steps,
            batches,
            run_id,
        )
        self.training_rows = training_rows
        self._epoch_batches = 0  # batches of the current epoch trained when last saved

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Record the run id in ``run.json``; remove temporary files of saves that a hard
        kill (``kill -9``) cut short. Global rank zero only (it writes the checkpoints)."""
        if not trainer.is_global_zero:
            return
        write_run_id(self.path.parent.parent, self.run_id)
        if self.path.parent.is_dir():
            for stale in self.path.parent.glob(".*.ckpt.*.tmp"):
                stale.unlink(missing_ok=True)

    def save(self, trainer: L.Trainer, epoch_batches: int) -> None:
        """Save the trainer's state, noting ``epoch_batches`` trained in the current epoch."""
        self._epoch_batches = epoch_batches
        trainer.save_checkpoint(self.path, weights_only=False)  # full state, said outright

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Save every ``every_n_steps`` steps, except on an epoch's last batch (the epoch-end
        save follows)."""
        done = batch_idx + 1
        if (
            self.every_n_steps > 0
            and trainer.global_step % self.every_n_steps == 0
            and done < trainer.num_training_batches
        ):
            self.save(trainer, done)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Save at the end of every epoch."""
        self.save(trainer, 0)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Save the finished state (the epoch counter past the last epoch), as Lightning's
        own ``last.ckpt`` did."""
        self.save(trainer, 0)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        """Save when a signal stopped training between two steps (see :func:`stop_gracefully`)."""
        if isinstance(exception, SIGTERMException):
            done = trainer.fit_loop.epoch_loop.batch_progress.current.completed
            self.save(trainer, done if done < trainer.num_training_batches else 0)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Stamp every checkpoint of the run (``best.ckpt`` too) with the run id."""
        checkpoint[RUN_ID_KEY] = self.run_id

    def state_dict(self) -> dict[str, Any]:
        """How many batches of the epoch in progress the checkpoint has trained on."""
        return {"epoch_batches": self._epoch_batches, "training_rows": self.training_rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """On resume, skip the batches of the interrupted epoch that were trained already.

        Raises:
            ValueError: the training rows are not those the run started with (rows of the
                table, or their images, went missing): the data order would not continue.
        """
        then = str(state_dict.get("training_rows", ""))
        if then and self.training_rows and then != self.training_rows:
            raise ValueError(
                f"the training data changed since the run started ({then} then, "
                f"{self.training_rows} now): a resumed run must see the same rows to continue "
                "exactly; restore the table and its images, or start a new run"
            )
        self.batches.skip_next(int(state_dict.get("epoch_batches", 0)))


def rows_fingerprint(ids: Sequence[str]) -> str:
    """A short description of the training rows: their count and a digest of their ids.

    Examples:
        >>> rows_fingerprint(["a", "b"])
        '2 rows, ids 59b271ae1bbc'
    """
    digest = hashlib.sha256("\0".join(ids).encode("utf-8")).hexdigest()[:12]
    return f"{len(ids)} rows, ids {digest}"


def checkpoint_run_id(checkpoint: dict[str, Any]) -> str | None:
    """The run id a loaded checkpoint was written by (``None`` before run ids)."""
    value = checkpoint.get(RUN_ID_KEY)
    return str(value) if value else None


def check_same_run(loaded: dict[str, Any], checkpoint: Path, run_dir: Path, why: str) -> None:
    """Refuse a loaded checkpoint written by another run than the one ``run_dir`` holds
    (runs from before run ids pass); ``why`` says what that means and what to do.

    Raises:
        ValueError: the run ids differ.
    """
    found, owner = checkpoint_run_id(loaded), read_run_id(run_dir)
    if found is not None and owner is not None and found != owner:
        raise ValueError(
            f"{checkpoint} was written by run {found}, but {run_dir} holds run {owner}: {why}"
        )


@contextmanager
def stop_gracefully(trainer: L.Trainer) -> Iterator[list[int]]:
    """While fitting, SIGINT, SIGTERM and SLURM's pre-emption signal stop after the step.

    Lightning checks its SIGTERM flag after every training step and then raises
    ``SIGTERMException``, on which :class:`LastCheckpoint` saves. Here SIGINT (Ctrl-C) and,
    inside a SLURM job, ``SIGUSR1`` raise that flag as well; a SIGINT once a stop is already
    requested (a second Ctrl-C) interrupts at once. Under SLURM the job is requeued
    (``scontrol requeue``) after the save. Yields the list of signals received (empty if
    none), for the caller's message and exit code.
    """
    received: list[int] = []
    slurm_job = os.environ.get("SLURM_JOB_ID")
    previous: dict[int, Any] = {}

    def request_stop(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and received:
            raise KeyboardInterrupt
        received.append(signum)
        trainer._signal_connector.received_sigterm = True

    signals = [signal.SIGINT, signal.SIGTERM] + ([SLURM_SIGNAL] if slurm_job else [])
    for stop_signal in signals:
        previous[stop_signal] = signal.signal(stop_signal, request_stop)
    try:
        yield received
    finally:
        for restored, handler in previous.items():
            signal.signal(restored, handler)
        if slurm_job and SLURM_SIGNAL in received and trainer.is_global_zero:
            subprocess.run(["scontrol", "requeue", slurm_job], check=False)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a training checkpoint on the CPU, or say in one line why it cannot be used.

    Raises:
        ValueError: the file is empty, truncated, or not a training checkpoint.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise ValueError(
            f"{path}: the checkpoint file is empty (0 bytes, left by an interrupted save); "
            "delete it and resume from another checkpoint or train again"
        )
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch reports a bad file with many exception types
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise ValueError(
            f"{path}: not a readable checkpoint, truncated or not written by torch ({reason}); "
            "use an intact .ckpt file or train again"
        ) from exc
    if not isinstance(loaded, dict) or "state_dict" not in loaded:
        raise ValueError(
            f"{path}: not a clinfonce training checkpoint (no model weights in it); "
            "pass a .ckpt file written by `clinfonce train`"
        )
    return loaded
