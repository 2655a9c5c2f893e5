"""A config is bound and checked once; one training run resolves its objective once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clinfonce.training import build, config_from_dict, run, train
from clinfonce.training.config import checks, files
from clinfonce.training.methods.registry import objective_terms

TINY: dict[str, Any] = {
    "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 32, "image_size": 12}},
    "clusters": {"builder": "attributes", "params": {"columns": ["maker"]}},
    "method": {"name": "clinfonce-plus-simclr"},
    "model": {"head_hidden": 8, "head_out": 4},
    "train": {"epochs": 1, "batch_size": 16, "progress_bar": False},
    "monitor": {"enabled": False},
}


def counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    """Count the calls of ``module.name`` made through the module's own global."""
    calls: list[int] = []
    original = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_binding_checks_once(monkeypatch: pytest.MonkeyPatch) -> None:
    checked = counting(monkeypatch, files, "check_config")
    config_from_dict(TINY)
    assert checked == [1]


def test_a_run_neither_reparses_its_config_nor_resolves_its_terms_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_from_dict({**TINY, "output": {"dir": str(tmp_path), "name": "once"}})
    checked = counting(monkeypatch, checks, "check_config")
    bound = counting(monkeypatch, files, "bind")
    resolved = [  # every module that resolves terms
        counting(monkeypatch, module, "objective_terms") for module in (run, checks, build)
    ]
    result = train(config)
    assert (checked, bound) == ([], [])  # the typed config travels; nothing parses it again
    assert resolved == [[1], [], []]
    assert result.module.cfg.method == config.method
    assert [t.name for t in result.module.objective.terms] == [  # type: ignore[union-attr]
        t.name for t in objective_terms(config)
    ]
