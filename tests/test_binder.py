"""The generic binder: YAML mappings, deep merges, overrides, typed dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from clinfonce.binder import apply_overrides, bind, deep_merge, read_mapping


@dataclass
class Inner:
    width: int = 2
    names: list[str] = field(default_factory=list)


@dataclass
class Outer:
    rate: float = 0.1
    inner: Inner = field(default_factory=Inner)
    label: str | None = None


def test_bind_checks_types_and_fills_defaults() -> None:
    bound = bind(Outer, {"rate": 1, "inner": {"names": ["a", 2]}})
    assert bound == Outer(rate=1.0, inner=Inner(width=2, names=["a", "2"]))
    with pytest.raises(ValueError, match=r"inner\.width must be int, got 'wide'"):
        bind(Outer, {"inner": {"width": "wide"}})
    with pytest.raises(ValueError, match=r"unknown config key 'inner\.size' in 'inner'; valid"):
        bind(Outer, {"inner": {"size": 3}})


def test_merge_and_overrides_leave_their_inputs_alone() -> None:
    base = {"inner": {"width": 2, "names": ["a"]}, "rate": 0.1}
    merged = deep_merge(base, {"inner": {"width": 3}})
    changed = apply_overrides(merged, ["inner.names.0=b", "label=x"])
    assert merged == {"inner": {"width": 3, "names": ["a"]}, "rate": 0.1}
    assert base["inner"] == {"width": 2, "names": ["a"]}
    assert bind(Outer, changed) == Outer(0.1, Inner(3, ["b"]), "x")


def test_read_mapping_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match=r"c\.yaml: an experiment must be a mapping"):
        read_mapping(path, "an experiment")
    path.write_text("a: [1, 2\n")
    with pytest.raises(ValueError, match=r"c\.yaml, line \d+ column \d+: invalid YAML"):
        read_mapping(path)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_mapping(tmp_path / "missing.yaml")
    path.write_text("")
    assert read_mapping(path) == {}
