"""The official datasets as training sources: registry, tables, paths, splits, options."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import clinfonce.data.official.sources as official_sources
from clinfonce.data import ClustersConfig, DataConfig, available_sources, load_source, prepare_data
from clinfonce.data.official import OFFICIAL_READERS, read_official
from clinfonce.data.official.sources import drop_matching, resolve_root

Tree = tuple[str, Path, dict[str, Any], str]
LOADERS = {
    "ut-zappos50k": official_sources.load_ut_zappos50k,
    "cub-200-2011": official_sources.load_cub200,
    "wider-attribute": official_sources.load_wider_attribute,
    "imagenet100": official_sources.load_imagenet100,
}


def test_every_reader_is_a_registered_source() -> None:
    assert set(LOADERS) == set(OFFICIAL_READERS)
    assert set(LOADERS) <= set(available_sources())


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_loader_options_are_the_readers_options(name: str) -> None:
    # data.options are checked against the loader's signature: it must offer every reader
    # option with the reader's default, plus root, drop_columns and the prepared-array
    # options, and nothing else.
    loader = inspect.signature(LOADERS[name]).parameters
    reader = inspect.signature(OFFICIAL_READERS[name]).parameters
    assert set(loader) == set(reader) | {"drop_columns", "prepare", "prepare_dir"}
    for option, parameter in reader.items():
        if option != "root":
            assert loader[option].default == parameter.default, option
    assert loader["root"].default is None
    assert loader["drop_columns"].default is None


def test_source_is_the_readers_table_with_absolute_paths(official_tree: Tree) -> None:
    name, root, options, _ = official_tree
    source = load_source(name, root=str(root), **options)
    expected = read_official(name, root, **options)
    pd.testing.assert_frame_equal(source.table, expected)
    assert source.name == name and source.channels == 3 and not source.in_memory
    assert source.paths is not None
    assert source.paths == [root.resolve() / p for p in expected["path"]]
    assert all(p.is_absolute() and p.is_file() for p in source.paths)
    assert f"{len(expected)} {name} images" in source.description


def test_official_images_can_be_prepared(official_tree: Tree, tmp_path: Path) -> None:
    from clinfonce.data.prepared_sources import prepared_source

    name, root, options, _ = official_tree
    files = load_source(name, root=str(root), prepare=True, prepare_dir=str(tmp_path), **options)
    source = prepared_source(files, 8)
    assert isinstance(source.images, np.memmap)
    assert source.images.shape == (len(files.table), 3, 8, 8)
    assert len(pd.read_csv(tmp_path / f"{name}-8px-rgb" / "table.csv")) == len(files.table)


def test_prepare_data_trains_on_train_and_monitors_the_heldout_split(official_tree: Tree) -> None:
    name, root, options, heldout = official_tree
    data = DataConfig(dataset=name, options={"root": str(root), **options}, image_size=16)
    prepared = prepare_data(
        data,
        ClustersConfig(builder="label", params={"label_column": "label"}),
        monitor_split=heldout,
    )
    table = read_official(name, root, **options)
    split = table["split"].to_numpy()
    np.testing.assert_array_equal(prepared.train_rows, np.flatnonzero(split == "train"))
    assert prepared.monitor_rows is not None
    np.testing.assert_array_equal(prepared.monitor_rows, np.flatnonzero(split == heldout))
    # Labels are the reader's 0..C-1 labels (codes of the sorted values present).
    assert prepared.labels is not None
    codes = np.searchsorted(np.unique(table["label"]), table["label"])
    np.testing.assert_array_equal(prepared.labels, codes)
    # Label clusters: one cluster per training label.
    assert prepared.clusters is not None
    assert len(np.unique(prepared.clusters)) == table.loc[split == "train", "label"].nunique()
    sample = prepared.eval_dataset(prepared.monitor_rows)[0]
    assert sample["image"].shape == (3, 16, 16) and sample["image"].dtype == torch.uint8


def test_drop_columns_removes_matching_columns(official_tree: Tree) -> None:
    name, root, options, _ = official_tree
    table = read_official(name, root, **options)
    extra = [c for c in table.columns if c not in ("id", "path", "label", "label_name", "split")]
    source = load_source(name, root=str(root), drop_columns=[extra[0]], **options)
    assert source.table.columns.tolist() == [c for c in table.columns if c != extra[0]]


def test_drop_matching_patterns() -> None:
    table = pd.DataFrame(
        columns=["id", "split", "attr_Category_Shoes", "attr_SubCategory_Heels", "attr_Closure"]
    )
    kept = drop_matching(table, ["attr_Category_*", "attr_SubCategory_*"], "x")
    assert kept.columns.tolist() == ["id", "split", "attr_Closure"]
    assert drop_matching(table, "attr_C*", "x").columns.tolist() == [
        "id",
        "split",
        "attr_SubCategory_Heels",
    ]
    with pytest.raises(ValueError, match=r"'attr_Gender_\*' matches no column"):
        drop_matching(table, ["attr_Category_*", "attr_Gender_*"], "x")
    with pytest.raises(ValueError, match=r"core column.*split"):
        drop_matching(table, ["s*"], "x")


def test_root_from_clinfonce_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINFONCE_DATA", str(tmp_path))
    with pytest.raises(ValueError, match=r"data.options.root=/path/to/CUB_200_2011.*does not"):
        resolve_root("cub-200-2011", None)
    (tmp_path / "CUB_200_2011").mkdir()
    assert resolve_root("cub-200-2011", None) == tmp_path / "CUB_200_2011"
    assert resolve_root("cub-200-2011", tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("CLINFONCE_DATA")
    with pytest.raises(ValueError, match=r"set data\.options\.root"):
        load_source("wider-attribute")


def test_reader_errors_pass_through(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load_source("ut-zappos50k", root=str(tmp_path / "absent"))
    with pytest.raises(ValueError, match=r"unknown option.*valid options: root"):
        load_source("cub-200-2011", roots=str(tmp_path))
