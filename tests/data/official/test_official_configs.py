"""Every config under configs/ loads; the official ones follow docs/method.md §4 and fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import clinfonce.data.official.sources  # noqa: F401  (registers the official sources)
from clinfonce.clusters.builders import run_builder
from clinfonce.data import load_source, prepare_data
from clinfonce.data.official import read_official
from clinfonce.training.config import ExperimentConfig, load_config

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
# Training configs; configs/experiments/ holds experiment grids, checked by tests/experiments.
ALL_CONFIGS = sorted(p for p in CONFIGS.rglob("*.yaml") if "experiments" not in p.parts)
OFFICIAL = CONFIGS / "official"
DATASETS = ("cub-200-2011", "imagenet100", "ut-zappos50k", "wider-attribute")
#: the methods the official code ran on every dataset.
METHODS = ("clinfonce", "simclr", "supcon")
Tree = tuple[str, Path, dict[str, Any], str]


def test_configs_are_found() -> None:
    # Both the top-level configs and the official ones are collected.
    assert {p.parent for p in ALL_CONFIGS} >= {CONFIGS, OFFICIAL}


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_config_loads(path: Path) -> None:
    # The loader checks every key and value type, and the cross-field rules.
    assert isinstance(load_config(path), ExperimentConfig)


def official(dataset: str, method: str, *overrides: str) -> ExperimentConfig:
    return load_config(OFFICIAL / f"{dataset}-{method}.yaml", list(overrides))


def test_one_official_config_per_dataset_and_method() -> None:
    expected = {f"{d}-{m}.yaml" for d in DATASETS for m in METHODS}
    assert {p.name for p in OFFICIAL.glob("*.yaml")} == expected


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("method", METHODS)
def test_official_settings(dataset: str, method: str, tmp_path: Path) -> None:
    config = official(dataset, method)
    assert config.data.dataset == dataset and config.method.name == method
    # The options are the loader's (an unknown one would be a ValueError); root comes from
    # the command line.
    assert "root" not in config.data.options
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load_source(dataset, root=str(tmp_path / "absent"), **config.data.options)
    # docs/method.md §1 and §4, shared by every dataset.
    assert (config.model.encoder, config.model.head_hidden, config.model.head_out) == (
        "resnet50",
        2048,
        128,
    )
    assert config.method.temperature == 0.1 and config.method.base_temperature is None
    optim = config.optim
    assert (optim.name, optim.momentum, optim.nesterov, optim.weight_decay) == (
        "sgd",
        0.95,
        True,
        1e-4,
    )
    assert optim.warmup_fraction == pytest.approx(1 / 3, abs=0.01)
    assert optim.final_lr_ratio == 1e-3
    assert config.augment.crop_scale == [0.4, 1.0]
    assert config.augment.jitter == [0.4, 0.4, 0.4, 0.1]
    assert (config.augment.jitter_p, config.augment.grayscale_p) == (0.8, 0.2)
    assert (config.train.epochs, config.train.batch_size, config.optim.lr) == (300, 128, 0.01)
    small = dataset == "ut-zappos50k"
    assert config.data.image_size == (32 if small else 224)
    assert config.model.small_stem is small
    heldout = "val" if dataset in ("ut-zappos50k", "imagenet100") else "test"
    assert config.monitor.split == heldout
    assert config.clusters.defined is (method == "clinfonce")


def test_official_granularities() -> None:
    # docs/method.md §2-§4: ImageNet-100 at WordNet level 12; attribute k with known official K.
    imagenet = official("imagenet100", "clinfonce").clusters
    assert (imagenet.builder, imagenet.params) == ("column", {"column": "level_12"})
    for dataset, k in (("ut-zappos50k", 10), ("cub-200-2011", 10), ("wider-attribute", 7)):
        clusters = official(dataset, "clinfonce").clusters
        assert clusters.builder == "attributes" and clusters.params["k"] == k


def test_official_clinfonce_configs_fit_the_readers_tables(official_tree: Tree) -> None:
    # The config's data options and cluster parameters work on the reader's columns: only
    # attribute columns are ranked (the UT-Zappos50K label attributes are dropped), and the
    # ImageNet-100 clusters are the level-12 ancestors.
    name, root, options, heldout = official_tree
    overrides = [f"data.options.root={root}", "data.image_size=16"]
    overrides += [f"data.options.{k}={v}" for k, v in options.items()]
    if name != "imagenet100":
        overrides.append("clusters.params.k=2")  # the tiny trees have few attributes
    config = official(name, "clinfonce", *overrides)
    assert config.monitor.split == heldout
    prepared = prepare_data(config.data, config.clusters, monitor_split=config.monitor.split)
    table = read_official(name, root, **options)
    train = table[table["split"] == "train"].reset_index(drop=True)
    np.testing.assert_array_equal(prepared.train_rows, np.flatnonzero(table["split"] == "train"))
    assert prepared.monitor_rows is not None and len(prepared.monitor_rows) > 0
    assert prepared.clusters is not None and len(prepared.clusters) == len(train)
    if name == "imagenet100":
        expected = run_builder(train, "column", column="level_12").ids
    else:
        label_attributes = ("attr_Category_", "attr_SubCategory_")
        kept = train.drop(columns=[c for c in train if c.startswith(label_attributes)])
        attributes = [c for c in kept.columns if c.startswith("attr_")]
        result = run_builder(kept, "attributes", k=2, columns=attributes)
        used = result.details["attributes"]
        assert len(used) == 2 and not any("Category" in c for c in used)
        expected = result.ids
    np.testing.assert_array_equal(prepared.clusters, expected)
