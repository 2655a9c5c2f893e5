"""Config loading: YAML sections, dotted overrides, type checks, unknown-key errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clinfonce.training.config import (
    ExperimentConfig,
    apply_override,
    config_from_dict,
    load_config,
    save_config,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_defaults_follow_the_paper() -> None:
    cfg = config_from_dict({"method": {"name": "simclr"}})
    assert (cfg.optim.name, cfg.optim.momentum, cfg.optim.nesterov) == ("sgd", 0.95, True)
    assert cfg.optim.weight_decay == 1e-4 and cfg.optim.final_lr_ratio == 1e-3
    assert cfg.optim.warmup_fraction == pytest.approx(1 / 3)
    assert cfg.augment.crop_scale == [0.4, 1.0] and cfg.augment.jitter_p == 0.8
    assert cfg.augment.grayscale_p == 0.2


def test_overrides_parse_types(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"method": {"name": "simclr"}, "train": {"epochs": 3}}))
    cfg = load_config(
        path,
        [
            "optim.lr=1e-3",  # YAML 1.1 reads this as a string: coerced to float
            "train.batch_size=64",
            "augment.crop_scale=[0.3, 1.0]",
            "data.options.n_samples=50",
            "data.label_column=null",
            "model.encoder=resnet18",
        ],
    )
    assert cfg.optim.lr == pytest.approx(1e-3) and isinstance(cfg.optim.lr, float)
    assert cfg.train.batch_size == 64 and cfg.train.epochs == 3
    assert cfg.augment.crop_scale == [0.3, 1.0]
    assert cfg.data.options == {"n_samples": 50} and cfg.data.label_column is None
    assert cfg.output.name == "exp"  # the file's stem


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.epoch=3", r"unknown config key 'train.epoch' in 'train'; valid keys: epochs"),
        ("trian.epochs=3", r"unknown config key 'trian' at the top level; valid keys: data"),
        ("train.epochs=three", r"train.epochs must be int, got 'three'"),
        ("train.epochs=2.5", r"train.epochs must be int"),
        ("model.small_stem=1", r"model.small_stem must be bool"),
        ("augment.crop_scale=0.5", r"augment.crop_scale must be a list"),
        ("method.name=moco", r"method.name must be one of simclr, supcon, clinfonce"),
        ("train.epochs", r"must look like section.key=value"),
        ("train=3", r"train must be a mapping"),
        ("train.num_workers=many", r"train.num_workers must be a count >= 0 or auto, got 'many'"),
        ("train.num_workers=-1", r"train.num_workers must be a count >= 0 or auto, got -1"),
    ],
)
def test_bad_overrides_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_dict({"method": {"name": "simclr"}}, [override])


def test_cross_field_checks() -> None:
    with pytest.raises(ValueError, match="clinfonce needs clusters"):
        config_from_dict({"method": {"name": "clinfonce"}})
    with pytest.raises(ValueError, match="supcon needs labels"):
        config_from_dict({"method": {"name": "supcon"}, "data": {"label_column": None}})
    with pytest.raises(ValueError, match=r"optim\.lr must be a finite number > 0"):
        config_from_dict({"method": {"name": "simclr"}, "optim": {"lr": 0}})


def test_nested_override_into_scalar_is_an_error() -> None:
    values: dict[str, object] = {"train": 3}
    with pytest.raises(ValueError, match="train is not a section"):
        apply_override(values, "train.epochs=2")


def test_save_and_reload_roundtrip(tmp_path: Path) -> None:
    cfg = config_from_dict(
        {"clusters": {"builder": "attributes", "params": {"columns": ["a", "b"]}}},
        ["optim.lr=0.3", "augment.jitter=[0.1, 0.2, 0.3, 0.05]"],
    )
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg
    assert isinstance(again, ExperimentConfig)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.output.name == path.stem
