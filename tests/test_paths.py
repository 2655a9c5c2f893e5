"""Which annotations name a file or a folder, and how values become absolute."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import pytest

from clinfonce.paths import (
    PathOption,
    absolute_options,
    absolute_path,
    names_path,
    path_parameters,
)


def test_annotations_that_name_paths() -> None:
    assert names_path(PathOption) and names_path(PathOption | list[str] | None)
    assert names_path(Path) and names_path(os.PathLike[str]) and names_path(str | Path | None)
    assert not names_path(str) and not names_path(list[str] | None) and not names_path(None)
    assert not names_path(Annotated[str, "something else"])


def test_path_parameters_in_signature_order() -> None:
    def loader(
        table: PathOption, path_column: str = "path", root: str | os.PathLike[str] | None = None
    ) -> None: ...

    assert path_parameters(loader) == ["table", "root"]


def test_only_relative_path_strings_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert absolute_path("a/b.csv") == str(tmp_path / "a" / "b.csv")
    assert absolute_path(Path("c")) == str(tmp_path / "c")
    for unchanged in ("/x/y", "", None, ["a"], {"a": "b"}, 3):
        assert absolute_path(unchanged) == unchanged
    options = {"table": "m.csv", "path_column": "path"}
    assert absolute_options(options, ["table"]) == {
        "table": str(tmp_path / "m.csv"),
        "path_column": "path",
    }
