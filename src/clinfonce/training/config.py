"""Experiment configs: YAML files loaded into typed dataclasses, with ``key=value`` overrides.

A config has the sections ``data``, ``clusters``, ``augment``, ``model``, ``method``,
``objective``, ``optim``, ``train``, ``monitor``, ``output``, ``kmeans`` and ``baseline``
(settings of ``kmeans-clinfonce`` and of the baselines,
:mod:`clinfonce.training.method_options`); anything left out keeps its default. Unknown
keys are errors that name the key and list the valid ones, and values are checked against the
field types, so a typo never silently trains the wrong thing.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from clinfonce.data.augment import AugmentParams
from clinfonce.data.config import ClustersConfig, DataConfig, expand_clusters_shorthand
from clinfonce.data.sources import check_source_options
from clinfonce.outputs import atomic_write
from clinfonce.training.method_options import (
    METHOD_TEMPERATURES,
    BaselineConfig,
    KMeansConfig,
    validate_method_options,
)
from clinfonce.yaml_files import parse_yaml, read_yaml_file

METHODS: tuple[str, ...] = (
    "simclr",
    "supcon",
    "clinfonce",
    "clinfonce-plus-simclr",
    "clinfonce-two-head",
    "auto",
    "kmeans-clinfonce",
    "ce-clusters",
    "attribute-prediction",
    "cmc-attributes",
)
#: Methods whose objective has Cl-InfoNCE terms on the ``clusters`` section.
CLUSTER_METHODS: tuple[str, ...] = ("clinfonce", "clinfonce-plus-simclr", "clinfonce-two-head")


@dataclass
class ModelConfig:
    """The ``model`` section.

    Attributes:
        encoder: ``small-cnn``, ``resnet18``, ``resnet34`` or ``resnet50``.
        small_stem: CIFAR-style ResNet stem for 28-32 px inputs.
        head_hidden: hidden width of the projection head.
        head_out: output width of the projection head.
        channels_last: use the channels-last memory format (measured 1.35x faster for the
            small CNN on this 2-core CPU).
    """

    encoder: str = "small-cnn"
    small_stem: bool = True
    head_hidden: int = 256
    head_out: int = 128
    channels_last: bool = True


@dataclass
class MethodConfig:
    """The ``method`` section: a named objective (ignored terms-wise when ``objective`` is set).

    Methods (:func:`clinfonce.training.objective.method_terms` gives their terms):

    - ``simclr``: instances are the positives; ``supcon``: downstream labels.
    - ``clinfonce``: Cl-InfoNCE on the stage-1 clusters (one term per clustering of the
      ``clusters`` section). Best when the clusters are informative about the labels.
    - ``clinfonce-plus-simclr``: the same terms plus InfoNCE (SimCLR), weights 1, one shared
      head. Never far below SimCLR, even for clusters much coarser than the labels.
    - ``clinfonce-two-head``: the official two-head recipe: InfoNCE on head ``instance``,
      Cl-InfoNCE on head ``cluster``; InfoNCE alone for the first ``warmup_epochs``.
    - ``auto`` (default): ``clinfonce-plus-simclr`` when clusters are configured, else
      ``simclr``; the safe choice when nobody knows how informative the clusters are.
    - ``kmeans-clinfonce``: no auxiliary information: SimCLR for ``warmup_epochs`` (default
      a tenth of the epochs, at least 1), then Cl-InfoNCE on K-means clusters of the model's
      own embedding, recomputed during training (the ``kmeans`` section), one term per K,
      averaged. Its temperature defaults to 0.2 (paper). With an ``objective`` list, the
      terms name the clusterings ``kmeans-<K>`` and set their own weights; re-clustering
      starts with the first such term.
    - Baselines with the same auxiliary information (:mod:`clinfonce.training.baselines`):
      ``ce-clusters`` (predict the cluster id), ``attribute-prediction`` (predict the
      attribute columns), ``cmc-attributes`` (contrast image views with attribute vectors).

    Attributes:
        name: one of the methods above.
        temperature: loss temperature (paper: 0.1 for attribute/hierarchy clusters).
        base_temperature: the official code's hidden ``tau / base`` loss factor (off: null).
        warmup_epochs: epochs of InfoNCE alone before the cluster terms start (``clinfonce``:
            SimCLR then Cl-InfoNCE alone). ``null``: 0, except ``clinfonce-two-head``:
            a tenth of ``train.epochs`` (at least 1).
    """

    name: str = "auto"
    temperature: float = 0.1
    base_temperature: float | None = None
    warmup_epochs: int | None = None


@dataclass
class TermConfig:
    """One entry of the ``objective`` list: a weighted contrastive term.

    A non-empty ``objective`` replaces the method's terms (leave ``method.name`` at ``auto``,
    or ``kmeans-clinfonce`` to weight its K-means clusterings ``kmeans-<K>``).
    The total loss is ``sum(weight * term)`` over the terms active in the epoch.

    Attributes:
        loss: ``clinfonce`` (positives: same cluster), ``simclr`` (InfoNCE: a sample's own
            views) or ``supcon`` (same label; needs ``data.label_column``).
        clusters: ``clinfonce`` only: a clustering named in ``clusters`` (``null``: the
            section's unnamed clustering, or its only named one).
        weight: the term's weight (>= 0).
        head: the projection head it reads; terms naming the same head share it.
        temperature: its temperature (``null``: ``method.temperature``).
        start_epoch: first (0-based) epoch it trains; before, the other terms train alone.
        end_epoch: the epoch it stops at (``null``: trains to the end).
        name: log name, ``train/<name>`` (``null``: the loss, plus ``-<clusters>`` when a
            clustering is named).

    Examples:
        >>> cfg = config_from_dict({
        ...     "clusters": {"level1": {"builder": "attributes"}},
        ...     "objective": [{"loss": "simclr"}, {"clusters": "level1", "weight": 0.5}]})
        >>> [(t.loss, t.clusters, t.weight) for t in cfg.objective]
        [('simclr', None, 1.0), ('clinfonce', 'level1', 0.5)]
    """

    loss: str = "clinfonce"
    clusters: str | None = None
    weight: float = 1.0
    head: str = "main"
    temperature: float | None = None
    start_epoch: int = 0
    end_epoch: int | None = None
    name: str | None = None


@dataclass
class OptimConfig:
    """The ``optim`` section (docs/method.md §4 defaults).

    Attributes:
        name: ``sgd`` (Nesterov) or ``adamw``.
        lr: peak learning rate.
        momentum: SGD momentum.
        nesterov: Nesterov momentum for SGD.
        weight_decay: weight decay (all parameters, as the official code).
        warmup_fraction: fraction of the steps with a linear warm-up.
        final_lr_ratio: the cosine decay ends at ``lr * final_lr_ratio``.
    """

    name: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.95
    nesterov: bool = True
    weight_decay: float = 1e-4
    warmup_fraction: float = 1 / 3
    final_lr_ratio: float = 1e-3


@dataclass
class TrainConfig:
    """The ``train`` section.

    Attributes:
        epochs: training epochs.
        batch_size: samples per step (each gives ``views`` views to the loss); the *global*
            batch, split across DDP processes, so more devices train the same thing.
        views: augmented views per sample.
        seed: seeds initialisation, data order and augmentation (exactly resumable).
        accelerator: Lightning accelerator (``auto``, ``cpu``, ``gpu``).
        devices: Lightning devices per node (a count, ``auto``, or ``-1`` for all).
        num_nodes: machines (DDP over ``num_nodes * devices`` processes).
        strategy: Lightning strategy (``auto``: DDP when there are several devices; ``ddp``
            for launches by ``torchrun`` or SLURM).
        sync_batchnorm: BatchNorm statistics over the global batch (SyncBatchNorm) instead
            of each process's share; with it, DDP matches the single-process run.
        precision: Lightning precision (``32-true``, ``bf16-mixed``, ...) or ``auto``:
            ``bf16-mixed`` where the device computes bfloat16 natively (CPUs with
            AVX512-BF16/AMX, recent GPUs), else ``32-true``. On this 2-core CPU bf16 made the
            small CNN 1.7x faster with the same Fashion-MNIST accuracy.
        num_workers: loader processes, or ``auto``: none for images held in memory or
            prepared (they are augmented on the device), the usable cores (shared by the
            processes of this machine) for image files read while training.
        log_every_n_steps: logging interval.
        checkpoint_every_n_steps: besides the end of every epoch, save ``last.ckpt`` every
            this many steps (0: epoch ends only); for epochs too long to lose.
        progress_bar: show progress: Lightning's bar on a terminal, a line per epoch when
            the output goes to a file.
    """

    epochs: int = 100
    batch_size: int = 256
    views: int = 2
    seed: int = 0
    accelerator: str = "auto"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    sync_batchnorm: bool = False
    precision: str = "32-true"
    num_workers: int | str = "auto"
    log_every_n_steps: int = 10
    checkpoint_every_n_steps: int = 0
    progress_bar: bool = True


@dataclass
class MonitorConfig:
    """The ``monitor`` section: online kNN top-1 on held-out labelled data.

    Attributes:
        enabled: run the monitor when labels exist.
        split: the held-out split (rows of ``data.split_column``).
        holdout_fraction: without that split, hold out this fraction of training rows.
        every_n_epochs: monitor interval.
        k: neighbours.
        temperature: vote weights ``exp(sim / temperature)``.
        max_bank: training samples (seeded subset) that vote.
        max_queries: held-out samples (seeded subset) evaluated.
        batch_size: feature-extraction batch size.
    """

    enabled: bool = True
    split: str = "test"
    holdout_fraction: float = 0.1
    every_n_epochs: int = 1
    k: int = 20
    temperature: float = 0.07
    max_bank: int = 10000
    max_queries: int = 5000
    batch_size: int = 512


@dataclass
class OutputConfig:
    """The ``output`` section: the run directory is ``dir/name``.

    Attributes:
        dir: parent directory of runs.
        name: run name (default: the config file's stem, or ``run``); a plain name, not
            a path.
        overwrite: start a new run in a non-empty run directory by deleting its contents
            first, checkpoints included (otherwise an error; use ``--resume`` to continue
            a run).
    """

    dir: str = "runs"
    name: str | None = None
    overwrite: bool = False


@dataclass
class ExperimentConfig:
    """A whole training run. Load with :func:`load_config`.

    Examples:
        >>> cfg = config_from_dict({"train": {"epochs": 2}}, overrides=["method.name=simclr"])
        >>> cfg.train.epochs, cfg.method.name
        (2, 'simclr')
    """

    data: DataConfig = field(default_factory=DataConfig)
    clusters: ClustersConfig = field(default_factory=ClustersConfig)
    augment: AugmentParams = field(default_factory=AugmentParams)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    objective: list[TermConfig] = field(default_factory=list)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    kmeans: KMeansConfig = field(default_factory=KMeansConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (what the run directory's ``config.yaml`` holds)."""
        return dataclasses.asdict(self)


def validate(cfg: ExperimentConfig) -> None:
    """Cross-field checks that a single field's type cannot express."""
    if cfg.method.name not in METHODS:
        raise ValueError(
            f"method.name must be one of {', '.join(METHODS)}, got {cfg.method.name!r}"
        )
    if cfg.method.name in CLUSTER_METHODS and not cfg.objective and not cfg.clusters.defined:
        raise ValueError(
            f"method.name={cfg.method.name} needs clusters: set clusters.assignment (a stage-1 "
            "file), clusters.builder (+ clusters.params), or named clusterings"
        )
    if cfg.method.name == "supcon" and cfg.data.label_column is None:
        raise ValueError("method.name=supcon needs labels: set data.label_column")
    workers = cfg.train.num_workers
    if workers != "auto" and (not isinstance(workers, int) or workers < 0):
        raise ValueError(f"train.num_workers must be a count >= 0 or auto, got {workers!r}")
    check_source_options(cfg.data.dataset, cfg.data.options)
    if cfg.optim.name not in ("sgd", "adamw"):
        raise ValueError(f"optim.name must be sgd or adamw, got {cfg.optim.name!r}")
    positive = {
        "train.epochs": cfg.train.epochs,
        "train.batch_size": cfg.train.batch_size,
        "train.num_nodes": cfg.train.num_nodes,
        "optim.lr": cfg.optim.lr,
        "method.temperature": cfg.method.temperature,
        "monitor.every_n_epochs": cfg.monitor.every_n_epochs,
        "monitor.k": cfg.monitor.k,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ValueError(f"{key} must be > 0, got {value}")
    if cfg.train.checkpoint_every_n_steps < 0:
        raise ValueError(
            "train.checkpoint_every_n_steps must be >= 0 (0: at epoch ends only), got "
            f"{cfg.train.checkpoint_every_n_steps}"
        )
    if cfg.train.views < 1:
        raise ValueError(f"train.views must be >= 1, got {cfg.train.views}")
    if not 0 <= cfg.optim.warmup_fraction < 1:
        raise ValueError(
            f"optim.warmup_fraction must be in [0, 1), got {cfg.optim.warmup_fraction}"
        )
    # Resolving the objective checks its terms, so a config that loads can train. (Imported
    # here: the objective module builds on this one.)
    from clinfonce.training.objective import objective_terms

    validate_method_options(cfg)
    objective_terms(cfg)


T = TypeVar("T")


def _from_value(value: Any, annotation: Any, key: str) -> Any:
    """Check (and lightly coerce) ``value`` against a field annotation."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _from_value(value, option, key)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0])
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        if not isinstance(value, dict):
            raise ValueError(f"{key} must be a mapping of settings, got {value!r}")
        return _build(annotation, value, key)
    if origin is list:
        (item,) = typing.get_args(annotation)
        if not isinstance(value, list | tuple):
            raise ValueError(f"{key} must be a list, got {value!r}")
        return [_from_value(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{key} must be a mapping, got {value!r}")
        _, item = typing.get_args(annotation)
        return {k: _from_value(v, item, f"{key}.{k}") for k, v in value.items()}
    if annotation is float and isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            return float(value)  # YAML reads "1e-3" as a string
        except ValueError:
            pass
    elif annotation in (int, bool) and type(value) is annotation:
        return value
    elif annotation is str and isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    elif annotation is Any:
        return value
    name = getattr(annotation, "__name__", str(annotation))
    raise ValueError(f"{key} must be {name}, got {value!r}")


def _build(cls: type[T], values: dict[str, Any], prefix: str) -> T:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = [k for k in values if k not in names]
    if unknown:
        where = f"in '{prefix}'" if prefix else "at the top level"
        raise ValueError(
            f"unknown config key '{_join(prefix, unknown[0])}' {where}; valid keys: "
            f"{', '.join(names)}"
        )
    kwargs = {k: _from_value(v, hints[k], _join(prefix, k)) for k, v in values.items()}
    return cls(**kwargs)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def apply_override(values: dict[str, Any], override: str) -> None:
    """Apply one ``dotted.key=value`` override to a nested dict (value parsed as YAML).

    A number indexes a list, e.g. ``objective.1.weight=0.5``.

    Examples:
        >>> d = {"objective": [{"loss": "simclr"}]}
        >>> apply_override(d, "optim.lr=0.1"); apply_override(d, "objective.0.weight=2"); d
        {'objective': [{'loss': 'simclr', 'weight': 2}], 'optim': {'lr': 0.1}}
    """
    if "=" not in override:
        raise ValueError(f"override {override!r} must look like section.key=value")
    key, raw = override.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ValueError(f"override {override!r}: empty key part")
    node: dict[str, Any] | list[Any] = values
    for depth, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            child = node[_list_index(node, part, ".".join(parts[:depth]), override)]
        else:
            child = node.setdefault(part, {})
        if not isinstance(child, dict | list):
            raise ValueError(f"override {override!r}: {part} is not a section")
        node = child
    value = parse_yaml(raw, f"override {override!r}") if raw.strip() else None
    if isinstance(node, list):
        node[_list_index(node, parts[-1], ".".join(parts[:-1]), override)] = value
    else:
        node[parts[-1]] = value


def _list_index(items: list[Any], part: str, where: str, override: str) -> int:
    if not part.isdigit() or int(part) >= len(items):
        raise ValueError(
            f"override {override!r}: {where} is a list of {len(items)}; index it with "
            f"0..{len(items) - 1}, not {part!r}"
        )
    return int(part)


def config_from_dict(
    values: dict[str, Any] | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> ExperimentConfig:
    """Build a config from nested ``values`` plus ``key=value`` overrides."""
    merged = _deep_copy(values or {})
    for override in overrides:
        apply_override(merged, override)
    if isinstance(merged.get("clusters"), dict):
        merged["clusters"] = expand_clusters_shorthand(merged["clusters"])
    method = merged.get("method")
    name = method.get("name") if isinstance(method, dict) else None
    if isinstance(method, dict) and "temperature" not in method and name in METHOD_TEMPERATURES:
        method["temperature"] = METHOD_TEMPERATURES[name]  # the method's own default
    return _build(ExperimentConfig, merged, "")


def _deep_copy(values: Any) -> Any:
    if isinstance(values, dict):
        return {k: _deep_copy(v) for k, v in values.items()}
    if isinstance(values, list):
        return [_deep_copy(v) for v in values]
    return values


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> ExperimentConfig:
    """Load a YAML config file (optional) and apply overrides.

    ``output.name`` defaults to the file's stem.

    Examples:
        >>> cfg = load_config("configs/fashion-mnist-clinfonce.yaml", ["train.epochs=1"])
        ... # doctest: +SKIP
    """
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} not found")
        loaded = read_yaml_file(path) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a config must be a mapping of sections")
        values = loaded
        values.setdefault("output", {}).setdefault("name", path.stem)
    try:
        return config_from_dict(values, overrides)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}" if path is not None else str(exc)) from None


#: ``data.options`` keys of the built-in sources that name files or folders.
PATH_OPTIONS: tuple[str, ...] = (
    "table",
    "image_root",
    "arrays",
    "root",
    "images_dir",
    "prepare_dir",
)


def with_absolute_paths(config: ExperimentConfig) -> ExperimentConfig:
    """The config with its relative file paths made absolute (against the working folder).

    A run directory's ``config.yaml`` must work from anywhere: ``clinfonce embed`` and
    ``evaluate`` are often run from another folder than the training. Covers the path
    options of ``data.options`` (:data:`PATH_OPTIONS`), the clusterings' ``assignment``
    files and a hierarchy builder's ``parents`` file.

    Examples:
        >>> cfg = config_from_dict({"data": {"dataset": "table",
        ...                                  "options": {"table": "meta.csv"}}})
        >>> Path(with_absolute_paths(cfg).data.options["table"]).is_absolute()
        True
    """

    def absolute(value: Any) -> Any:
        if isinstance(value, str) and value and not Path(value).is_absolute():
            return str(Path(value).absolute())
        return value

    values = config.to_dict()
    options = values["data"]["options"]
    for key in PATH_OPTIONS:
        if key in options:
            options[key] = absolute(options[key])
    clusters = values["clusters"]
    for spec in [clusters, *clusters["named"].values()]:
        spec["assignment"] = absolute(spec["assignment"])
        if spec["builder"] == "hierarchy" and "parents" in spec["params"]:
            spec["params"]["parents"] = absolute(spec["params"]["parents"])
    return config_from_dict(values)


def save_config(config: ExperimentConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (loadable with :func:`load_config`)."""
    text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    atomic_write(path, lambda temp: temp.write_text(text))
