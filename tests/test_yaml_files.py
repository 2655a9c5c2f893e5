"""YAML errors as one line (clinfonce.yaml_files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinfonce.yaml_files import parse_yaml, read_yaml_file


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2", "x.yaml, line 1 column 9: invalid YAML (expected ',' or ']'"),
        ("a: b: c", "x.yaml, line 1 column 5: invalid YAML (mapping values are not allowed"),
        (
            "a: !!python/object/apply:os.system [ls]",
            "x.yaml, line 1 column 4: the YAML tag !!python/object/apply:os.system is not "
            "allowed (only plain values: numbers, strings, lists, mappings); remove the tag",
        ),
        (
            "a: !!python/name:os.system",
            "x.yaml, line 1 column 4: the YAML tag !!python/name:os.system is not allowed",
        ),
    ],
)
def test_errors_are_one_line(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_yaml(text, "x.yaml")
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train: {epochs: 2}\n")
    assert read_yaml_file(path) == {"train": {"epochs": 2}}
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ValueError, match=r"c.yaml: not UTF-8 text \(byte 9 cannot be decoded\)"):
        read_yaml_file(path)
