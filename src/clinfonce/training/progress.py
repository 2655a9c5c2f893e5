"""What a run prints: Lightning's output without its noise, and a line per epoch.

Lightning's hardware inventory and tips are dropped from every run's output (the filter is
installed on import), and where no progress bar can draw (a log file) :class:`EpochLines`
reports progress instead.
"""

from __future__ import annotations

import logging
import time

import lightning as L
from lightning.pytorch.callbacks import Callback


class _LightningNotices(logging.Filter):
    """Drops Lightning's hardware inventory ("GPU available: False, used: False") and its
    advertising tips: noise in every run's output that says nothing about the run."""

    DROPPED = ("GPU available: ", "TPU available: ", "HPU available: ", "\N{ELECTRIC LIGHT BULB}")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.DROPPED)


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_LightningNotices())


def metric_text(key: str, value: float) -> str:
    """A logged metric for people: the learning rate in scientific notation (it ends near
    zero, where four decimals print ``0.0000``), others with four decimals, never ``-0.0000``.

    Examples:
        >>> metric_text("lr", 2e-06), metric_text("train/loss", -1e-9)
        ('2.000e-06', '0.0000')
    """
    if key == "lr" or key.endswith("/lr"):
        return f"{value:.3e}"
    text = f"{value:.4f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


class EpochLines(Callback):
    """Progress lines (global rank zero) where no progress bar can draw: one per epoch, or
    every n-th epoch so that a long run prints at most :attr:`MAX_LINES` of them."""

    MAX_LINES = 20

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run resumed from a checkpoint saved at an epoch's end finishes that epoch
        # without starting it: its first epoch line then times from here.
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epochs = trainer.max_epochs or 1
        every = -(-epochs // self.MAX_LINES)
        done = trainer.current_epoch + 1
        if not trainer.is_global_zero or (done % every and done != epochs):
            return
        seconds = time.perf_counter() - self._start  # this epoch's
        metrics = trainer.callback_metrics
        shown = [f"{k} {metric_text(k, float(v))}" for k, v in sorted(metrics.items()) if k != "lr"]
        print(
            f"epoch {done}/{epochs}: {', '.join(shown)} "
            f"({seconds:.0f} s, about {seconds * (epochs - done):.0f} s left)",
            flush=True,
        )
