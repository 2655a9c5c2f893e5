"""Experiment files: a shared training config, a list of runs, seeds, and evaluation settings.

An experiment YAML file looks like::

    name: fashion-mnist-hierarchy           # optional (default: the file's stem)
    description: One line for the report.   # optional
    base: ../fashion-mnist-simclr.yaml      # a training config file (relative to this
                                            # file) or a mapping of config sections
    set: {train.epochs: 8}                  # optional dotted overrides for every run
    seeds: [0, 1, 2]                        # or a count: 3 -> 0, 1, 2
    evaluation: {knn_k: 20, cs: [1.0]}      # EvalSettings fields (knn_k: one k)
    gap: {low: simclr, high: supcon}        # optional reference runs of "gap closed"
    runs:
      - name: simclr
        set: {method.name: simclr}
      - name: clinfonce-level2
        config:                             # nested sections, merged into the base
          method: {name: clinfonce}
          clusters: {builder: attributes, params: {columns: [level2]}}
      - name: topk
        sweep: {key: clusters.params.k, values: [1, 2, 3], label: k}  # -> topk-k1, ...
        config: {...}
      - name: random-init
        untrained: true                     # evaluate the initial encoder, no training

Every run's config is resolved as: base, then the experiment's ``set``, then the run's
``config`` (deep merge) and ``set``, then the sweep value, then command-line overrides. A
``set`` key replaces its value outright (a mapping value replaces a whole section: ``clusters:
{}`` removes the base's clusters), ``config`` merges mappings key by key. The runner owns
``train.seed`` (from ``seeds``) and the ``output`` section. Each resolved config is
validated when the grid is expanded, so a typo fails before any training starts.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinfonce.binder import read_mapping
from clinfonce.experiments.config_values import fingerprint, set_dotted
from clinfonce.runs.eval_settings import EvalSettings

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]*$")
_TOP_KEYS = ("name", "description", "base", "set", "seeds", "evaluation", "gap", "runs")
_RUN_KEYS = ("name", "config", "set", "sweep", "untrained", "group", "x", "plot_with")
_SWEEP_KEYS = ("key", "values", "label")
#: Evaluation defaults of an experiment (cheaper than ``EvalSettings``' own: one kNN k, no
#: K-means NMI of the embedding, which the results table does not show).
EVAL_DEFAULTS: dict[str, Any] = {"knn_k": 20, "nmi": False}


@dataclass(frozen=True)
class RunSpec:
    """One entry of ``runs`` (a sweep entry expands into several).

    Attributes:
        name: run name (letters, digits, ``._=+-``); unique in the experiment.
        config: nested config sections merged into the base.
        set: dotted ``section.key`` -> value overrides.
        untrained: evaluate the freshly initialised encoder instead of training.
        group: plot series this run belongs to (sweeps: the entry's name).
        x: its position on that series' x axis (sweeps: the swept value).
        x_label: the name of that axis (sweeps: the swept key).
        plot_with: another series whose sweep plot also draws this series' accuracies (e.g.
            the combined objective on the pure objective's plot).
    """

    name: str
    config: dict[str, Any] = field(default_factory=dict)
    set: dict[str, Any] = field(default_factory=dict)
    untrained: bool = False
    group: str | None = None
    x: Any = None
    x_label: str | None = None
    plot_with: str | None = None


@dataclass(frozen=True)
class ExperimentSpec:
    """A parsed experiment file. Load with :func:`load_experiment`.

    Attributes:
        name: experiment name (default output folder ``runs/experiments/<name>``).
        description: free text for the report.
        base: the shared training config values.
        runs: the runs, sweeps expanded.
        seeds: training seeds; every run is trained once per seed.
        evaluation: :class:`EvalSettings` of every run.
        knn_k: the k whose kNN accuracies the results report.
        gap: ``(low, high)`` run names of the "gap closed" column, or ``None`` to use the
            runs of method ``simclr`` and ``supcon`` when each is unique.
        source: the file it came from.
    """

    name: str
    base: dict[str, Any]
    runs: tuple[RunSpec, ...]
    seeds: tuple[int, ...]
    evaluation: EvalSettings
    knn_k: int
    description: str = ""
    gap: tuple[str, str] | None = None
    source: Path | None = None


def eval_hash(settings: EvalSettings) -> str:
    """Fingerprint of the evaluation settings (changed settings re-evaluate)."""
    return fingerprint(dataclasses.asdict(settings))


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a mapping, got {value!r}")
    return dict(value)


def _check_keys(values: Mapping[str, Any], allowed: Sequence[str], where: str) -> None:
    unknown = [k for k in values if k not in allowed]
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(allowed)}")


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{where}: name {name!r} must be text of letters, digits and ._=+- (it names the "
            "run's folder)"
        )
    return name


def _value_label(value: Any) -> str:
    return "all" if value is None else str(value)


def _parse_runs(entries: Any, where: str) -> tuple[RunSpec, ...]:
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{where}: 'runs' must be a non-empty list of runs")
    runs: list[RunSpec] = []
    for i, entry in enumerate(entries):
        at = f"{where}: runs[{i}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{at} must be a mapping with at least a name, got {entry!r}")
        _check_keys(entry, _RUN_KEYS, at)
        name = _check_name(entry.get("name"), at)
        untrained = entry.get("untrained", False)
        if not isinstance(untrained, bool):
            raise ValueError(f"{at} ({name}): untrained must be true or false")
        base = RunSpec(
            name,
            _mapping(entry.get("config"), f"{at}.config"),
            _mapping(entry.get("set"), f"{at}.set"),
            untrained,
            entry.get("group"),
            entry.get("x"),
            plot_with=entry.get("plot_with"),
        )
        if entry.get("sweep") is None:
            runs.append(base)
            continue
        sweep = _mapping(entry["sweep"], f"{at}.sweep")
        _check_keys(sweep, _SWEEP_KEYS, f"{at}.sweep")
        key, values = sweep.get("key"), sweep.get("values")
        if not isinstance(key, str) or not isinstance(values, list) or not values:
            raise ValueError(
                f"{at}.sweep needs key (a dotted config key, e.g. clusters.params.k) and "
                "values (a non-empty list)"
            )
        label = str(sweep.get("label", key.split(".")[-1]))
        for value in values:
            runs.append(
                dataclasses.replace(
                    base,
                    name=_check_name(f"{name}-{label}{_value_label(value)}", at),
                    set={**base.set, key: value},
                    group=base.group or name,
                    x=value,
                    x_label=key,
                )
            )
    names = [r.name for r in runs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{where}: run names must be unique, repeated: {', '.join(repeated)}")
    groups = {r.group for r in runs if r.group}
    for run in runs:
        if run.plot_with is not None and run.plot_with not in groups - {run.group}:
            raise ValueError(
                f"{where}: run {run.name}: plot_with {run.plot_with!r} is not another series "
                f"(sweep or group); series: {', '.join(sorted(groups)) or 'none'}"
            )
    return tuple(runs)


def _parse_seeds(value: Any, where: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError(f"{where}: seeds: a count must be >= 1, got {value}")
        return tuple(range(value))
    if (
        isinstance(value, list)
        and value
        and all(isinstance(s, int) and not isinstance(s, bool) for s in value)
    ):
        if len(set(value)) != len(value):
            raise ValueError(f"{where}: seeds {value} repeat a seed")
        return tuple(value)
    raise ValueError(f"{where}: seeds must be a list of integers or a count, got {value!r}")


def parse_evaluation(values: Mapping[str, Any], where: str) -> tuple[EvalSettings, int]:
    """:class:`EvalSettings` and the reported kNN k from an ``evaluation`` mapping.

    Examples:
        >>> settings, k = parse_evaluation({"knn_k": 10, "cs": [1.0]}, "x.yaml")
        >>> settings.knn_ks, settings.cs, k
        ((10,), (1.0,), 10)
    """
    merged = {**EVAL_DEFAULTS, **values}
    defaults = {f.name: f.default for f in dataclasses.fields(EvalSettings)}
    allowed = ["knn_k", *[n for n in defaults if n != "knn_ks"]]
    _check_keys(merged, allowed, f"{where}: evaluation")
    knn_k = merged.pop("knn_k")
    if isinstance(knn_k, bool) or not isinstance(knn_k, int) or knn_k < 1:
        raise ValueError(f"{where}: evaluation.knn_k must be an integer >= 1, got {knn_k!r}")
    kwargs: dict[str, Any] = {"knn_ks": (knn_k,)}
    for key, value in merged.items():
        default = defaults[key]
        if isinstance(default, tuple):
            if not isinstance(value, list | tuple):
                raise ValueError(f"{where}: evaluation.{key} must be a list, got {value!r}")
            value = tuple(value)
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise ValueError(f"{where}: evaluation.{key} must be true or false, got {value!r}")
        kwargs[key] = value
    try:
        return EvalSettings(**kwargs), knn_k
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: evaluation: {exc}") from None


def _load_base(value: Any, source: Path | None, where: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return copy.deepcopy(dict(value))
    if isinstance(value, str):
        path = Path(value)
        if not path.is_absolute() and source is not None:
            path = source.parent / path
        if not path.is_file():
            raise FileNotFoundError(
                f"{where}: base config {path} not found (a relative base path is read from "
                "the experiment file's folder)"
            )
        return read_mapping(path, "a training config")
    if value is None:
        return {}
    raise ValueError(f"{where}: base must be a config file path or a mapping, got {value!r}")


def experiment_from_dict(
    values: Mapping[str, Any], *, name: str = "experiment", source: Path | None = None
) -> ExperimentSpec:
    """Parse an experiment mapping (the content of an experiment file).

    Examples:
        >>> spec = experiment_from_dict({"runs": [{"name": "a", "sweep": {
        ...     "key": "clusters.params.k", "values": [1, 2]}}], "seeds": 2})
        >>> [r.name for r in spec.runs], spec.seeds
        (['a-k1', 'a-k2'], (0, 1))
    """
    where = str(source) if source is not None else "experiment"
    if not isinstance(values, Mapping):
        raise ValueError(f"{where}: an experiment must be a mapping with base, runs, seeds")
    _check_keys(values, _TOP_KEYS, where)
    base = _load_base(values.get("base"), source, where)
    for key, value in _mapping(values.get("set"), f"{where}: set").items():
        set_dotted(base, key, value, f"{where}: set")
    evaluation, knn_k = parse_evaluation(_mapping(values.get("evaluation"), where), where)
    gap = None
    if values.get("gap") is not None:
        spec = _mapping(values["gap"], f"{where}: gap")
        _check_keys(spec, ("low", "high"), f"{where}: gap")
        if not {"low", "high"} <= set(spec):
            raise ValueError(f"{where}: gap needs low (e.g. simclr) and high (e.g. supcon)")
        gap = (str(spec["low"]), str(spec["high"]))
    runs = _parse_runs(values.get("runs"), where)
    names = {r.name for r in runs}
    for ref in gap or ():
        if ref not in names:
            raise ValueError(f"{where}: gap run {ref!r} is not a run name ({', '.join(names)})")
    return ExperimentSpec(
        name=_check_name(values.get("name", name), where),
        base=base,
        runs=runs,
        seeds=_parse_seeds(values.get("seeds", 1), where),
        evaluation=evaluation,
        knn_k=knn_k,
        description=str(values.get("description", "")).strip(),
        gap=gap,
        source=source,
    )


def load_experiment(path: str | Path) -> ExperimentSpec:
    """Read an experiment YAML file (see the module docstring for its format).

    Examples:
        >>> spec = load_experiment("configs/experiments/smoke.yaml")  # doctest: +SKIP
        >>> [r.name for r in spec.runs]  # doctest: +SKIP
        ['simclr', 'clinfonce', 'supcon']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"experiment file {path} not found")
    values = read_mapping(path, "an experiment file")
    return experiment_from_dict(values, name=path.stem, source=path)
