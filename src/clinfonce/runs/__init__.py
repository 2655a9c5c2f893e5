"""A finished run: loading it, evaluating it, embedding data with its encoder.

Everything that opens a run directory (or a checkpoint) after training lives here, apart
from the experiment grids and ``clinfonce run``'s planning (:mod:`clinfonce.experiments`):
:func:`load_run` gives the trained module and the run's config, :func:`evaluate_run` the
kNN and linear-probe accuracies, :func:`embed_run` the encoder features of a dataset.

Examples:
    >>> from clinfonce.runs import load_run, evaluate_run
    >>> run = load_run("runs/fashion-mnist-clinfonce")  # doctest: +SKIP
"""

from clinfonce.runs.embed import embed_run
from clinfonce.runs.eval_settings import EvalSettings
from clinfonce.runs.evaluate import evaluate_run
from clinfonce.runs.load import LoadedRun, load_module, load_run

__all__ = ["EvalSettings", "LoadedRun", "embed_run", "evaluate_run", "load_module", "load_run"]
