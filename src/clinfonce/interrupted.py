"""The exception a training run stopped by a signal ends with.

Kept apart from :mod:`clinfonce.training` (which loads torch and Lightning) so that the
command line can catch it without that import cost for commands that never train.
"""

from __future__ import annotations

import signal
from pathlib import Path


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving a resumable checkpoint.

    Attributes:
        signum: the signal received.
        run_dir: the run directory to pass to ``--resume``.
    """

    def __init__(
        self, signum: int, run_dir: Path, global_step: int, resume_hint: str | None = None
    ) -> None:
        self.signum, self.run_dir, self.global_step = int(signum), run_dir, global_step
        name = signal.Signals(signum).name
        hint = resume_hint or f"continue with `clinfonce train --resume {run_dir}`"
        super().__init__(f"stopped by {name} at step {global_step}; checkpoint saved, {hint}")
