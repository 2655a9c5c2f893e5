"""The method registry: every method is listed, helped, checked and buildable from it."""

from __future__ import annotations

from typing import Any

import pytest

from clinfonce.cli import main
from clinfonce.data import prepare_data
from clinfonce.training import EncoderModule, ExperimentConfig, config_from_dict
from clinfonce.training.methods.registry import (
    REGISTRY,
    find_method,
    method_names,
    objective_terms,
)
from clinfonce.training.methods.spec import NEEDS

TINY: dict[str, Any] = {
    "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 40, "image_size": 12}},
    "model": {"head_hidden": 8, "head_out": 4},
    "train": {"epochs": 2},
}
#: What each need adds to TINY so that a method needing it can train.
NEED_SECTIONS: dict[str, dict[str, Any]] = {
    "clusters": {"clusters": {"builder": "attributes", "params": {"columns": ["maker"]}}},
    "labels": {},  # the synthetic data has labels
    "attributes": {"clusters": {"params": {"columns": ["maker", "tier"]}}},
}


def tiny_config(name: str) -> Any:
    values: dict[str, Any] = {**TINY, "method": {"name": name}}
    for need in REGISTRY[name].needs:
        values.update(NEED_SECTIONS[need])
    if name == "kmeans-clinfonce":
        values["kmeans"] = {"n_clusters": [3]}
    return config_from_dict(values)


def test_every_method_has_a_name_help_and_known_needs() -> None:
    assert method_names() == list(REGISTRY)
    for name, method in REGISTRY.items():
        assert method.name == name and method.help.strip() and "\n" not in method.help
        assert set(method.needs) <= set(NEEDS)
        assert issubclass(method.module, EncoderModule)
        assert method.settings is None or method.settings in ExperimentConfig.__dataclass_fields__


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_method_builds_its_module_on_tiny_data(name: str) -> None:
    config = tiny_config(name)
    data = prepare_data(config.data, config.clusters, monitor_split=None)
    method = find_method(name)
    module = method.build(config, data, objective_terms(config))
    assert isinstance(module, method.module)
    assert module.cfg is config  # the typed config itself, not a re-parsed copy


def test_train_help_lists_every_registered_method(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for name, method in REGISTRY.items():
        assert f"  {name:<24}{method.help}" in out


def test_an_unknown_method_error_lists_the_registry() -> None:
    with pytest.raises(ValueError, match=r"method\.name must be one of") as error:
        config_from_dict({"method": {"name": "simclear"}})
    assert all(name in str(error.value) for name in REGISTRY)
