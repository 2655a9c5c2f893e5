"""Experiment grids: several methods x cluster settings x seeds with one shared budget.

An experiment file (see :mod:`clinfonce.experiments.spec`) names a base training config, the
runs (each a set of config overrides, or a sweep over one key) and the seeds;
:func:`run_experiment` trains and evaluates every cell (resuming after an interruption) and
writes ``results.csv``, a Markdown table of mean ± std over seeds with the "gap closed"
column, and plots. ``clinfonce experiment`` is its command line. Each cell is evaluated
through :mod:`clinfonce.runs`, which opens any finished run.

Examples:
    >>> from clinfonce.experiments import expand_grid, experiment_from_dict
    >>> spec = experiment_from_dict({
    ...     "base": {"data": {"dataset": "synthetic-attributes"}},
    ...     "runs": [{"name": "simclr", "set": {"method.name": "simclr"}},
    ...              {"name": "supcon", "set": {"method.name": "supcon"}}],
    ...     "seeds": [0, 1]})
    >>> [(c.run.name, c.seed) for c in expand_grid(spec)]
    [('simclr', 0), ('supcon', 0), ('simclr', 1), ('supcon', 1)]
"""

from clinfonce.experiments.aggregate import (
    add_gap_closed,
    gap_closed,
    gap_references,
    markdown_table,
    summarize,
)
from clinfonce.experiments.cell_state import CELL_FILE, cell_status
from clinfonce.experiments.cells import run_cell
from clinfonce.experiments.grid import Cell, expand_grid
from clinfonce.experiments.plots import accuracy_plot, sweep_plot
from clinfonce.experiments.report import write_report
from clinfonce.experiments.results_table import RESULT_COLUMNS, read_results
from clinfonce.experiments.runner import (
    ExperimentResult,
    default_out_dir,
    format_eta,
    plan_experiment,
    run_experiment,
)
from clinfonce.experiments.spec import (
    ExperimentSpec,
    RunSpec,
    experiment_from_dict,
    load_experiment,
)

__all__ = [
    "CELL_FILE",
    "RESULT_COLUMNS",
    "Cell",
    "ExperimentResult",
    "ExperimentSpec",
    "RunSpec",
    "accuracy_plot",
    "add_gap_closed",
    "cell_status",
    "default_out_dir",
    "expand_grid",
    "experiment_from_dict",
    "format_eta",
    "gap_closed",
    "gap_references",
    "load_experiment",
    "markdown_table",
    "plan_experiment",
    "read_results",
    "run_cell",
    "run_experiment",
    "summarize",
    "sweep_plot",
    "write_report",
]
