"""The registry of official-layout readers."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from clinfonce.data.official import OFFICIAL_READERS, read_official

WriteImages = Callable[[Path, Iterable[str]], None]


def test_registry_names() -> None:
    assert sorted(OFFICIAL_READERS) == [
        "cub-200-2011",
        "imagenet100",
        "ut-zappos50k",
        "wider-attribute",
    ]


def test_read_official_passes_options(tmp_path: Path, write_images: WriteImages) -> None:
    write_images(tmp_path, ["train/n00000010/a.JPEG", "val/n00000010/b.JPEG"])
    table = read_official("imagenet100", tmp_path, classes=["n00000010"], levels=[])
    assert table["split"].tolist() == ["train", "val"]


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="choose one of cub-200-2011, imagenet100"):
        read_official("mnist", ".")


@pytest.mark.parametrize("name", sorted(OFFICIAL_READERS))
def test_missing_root_is_named(tmp_path: Path, name: str) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere.*is not a directory"):
        read_official(name, tmp_path / "nowhere")


@pytest.mark.parametrize("name", sorted(OFFICIAL_READERS))
def test_empty_root_names_an_expected_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(FileNotFoundError, match="Expected layout"):
        read_official(name, tmp_path)
