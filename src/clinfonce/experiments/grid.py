"""The grid of an experiment: every (run, seed) cell with its resolved, validated config."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clinfonce.binder import deep_merge
from clinfonce.experiments.config_values import fingerprint, set_dotted
from clinfonce.experiments.spec import ExperimentSpec, RunSpec
from clinfonce.training.config import ExperimentConfig, apply_override, config_from_dict


@dataclass(frozen=True)
class Cell:
    """One training run of the grid: a run at one seed.

    Attributes:
        index: position in the grid (0-based).
        run: the run.
        seed: its training seed.
        values: the resolved config values (without ``output``).
        config: the validated training config (``output`` filled in by the runner).
    """

    index: int
    run: RunSpec
    seed: int
    values: dict[str, Any]
    config: ExperimentConfig

    @property
    def key(self) -> tuple[str, int]:
        """``(run name, seed)``: what identifies a cell in ``results.csv``."""
        return self.run.name, self.seed

    @property
    def dirname(self) -> str:
        """Its run directory's name: ``<name>-seed<seed>``."""
        return f"{self.run.name}-seed{self.seed}"

    def train_hash(self) -> str:
        """Fingerprint of what training depends on (a changed config retrains)."""
        return fingerprint({"values": self.values, "untrained": self.run.untrained})


def expand_grid(
    spec: ExperimentSpec,
    overrides: Sequence[str] = (),
    *,
    seeds: Sequence[int] | None = None,
    only: Sequence[str] | None = None,
) -> list[Cell]:
    """Every (run, seed) cell with its validated config, seeds outer, runs inner (an
    interrupted experiment has whole seeds done: a complete table of fewer seeds).

    Args:
        spec: the experiment.
        overrides: ``key=value`` changes applied to every run last (e.g. ``train.epochs=1``).
        seeds: replace the experiment's seeds.
        only: keep only these run names (in the experiment's order).

    Examples:
        >>> from clinfonce.experiments.spec import experiment_from_dict
        >>> spec = experiment_from_dict({"base": {"method": {"name": "simclr"}},
        ...     "runs": [{"name": "a"}, {"name": "b", "set": {"optim.lr": 0.1}}], "seeds": 2})
        >>> [(c.run.name, c.seed, c.config.optim.lr) for c in expand_grid(spec)]
        [('a', 0, 0.05), ('b', 0, 0.1), ('a', 1, 0.05), ('b', 1, 0.1)]
    """
    where = str(spec.source) if spec.source is not None else "experiment"
    runs = list(spec.runs)
    if only is not None:
        unknown = [n for n in only if n not in {r.name for r in runs}]
        if unknown:
            raise ValueError(
                f"--only: no run named {', '.join(unknown)}; runs: "
                f"{', '.join(r.name for r in runs)}"
            )
        runs = [r for r in runs if r.name in set(only)]
    resolved = []
    for run in runs:
        values = deep_merge(spec.base, run.config)
        for key, value in run.set.items():
            set_dotted(values, key, value, f"{where}: run {run.name}: set")
        for override in overrides:
            apply_override(values, override)
        values.pop("output", None)
        resolved.append((run, values))
    cells: list[Cell] = []
    for seed in seeds if seeds is not None else spec.seeds:
        for run, values in resolved:
            seeded = deep_merge(values, {"train": {"seed": seed}})
            try:
                config = config_from_dict(seeded)
            except ValueError as exc:
                raise ValueError(f"{where}: run {run.name} (seed {seed}): {exc}") from None
            if (config.train.devices, config.train.num_nodes) != (1, 1):
                raise ValueError(
                    f"{where}: run {run.name}: an experiment trains its runs one after another "
                    f"in one process, so train.devices and train.num_nodes must be 1 (got "
                    f"{config.train.devices}, {config.train.num_nodes}); for several devices "
                    "run `clinfonce train` per run (docs/distributed.md)"
                )
            cells.append(Cell(len(cells), run, seed, seeded, config))
    return cells
