"""Every option naming a file or a folder is stored absolute, found from annotations; no
other string changes; a run's evaluation and embedding work from another folder."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clinfonce.clusters.builders import BUILDERS
from clinfonce.data.sources import _REGISTRY, available_sources, source_path_options
from clinfonce.paths import path_fields
from clinfonce.runs.embed import embed_run
from clinfonce.runs.eval_settings import EvalSettings
from clinfonce.runs.evaluate import evaluate_run
from clinfonce.runs.load import load_run
from clinfonce.training import train
from clinfonce.training.config import (
    ExperimentConfig,
    config_from_dict,
    load_config,
    with_absolute_paths,
)

#: Words of an option's name that say it is a file or folder: it must be annotated as one.
PATH_WORDS = {"root", "dir", "file", "path", "embeddings", "arrays", "hierarchy", "parents"}
#: Options whose name has such a word but that are not paths.
NOT_PATHS = {"path_column", "root_level", "multiple_parents"}


def _looks_like_path(name: str) -> bool:
    return name not in NOT_PATHS and bool(PATH_WORDS & set(name.split("_")))


def _sections(cls: type, prefix: str = "") -> list[tuple[str, type]]:
    """(dotted name, dataclass) of ``cls`` and every dataclass section below it."""
    found = [(prefix, cls)]
    for item in dataclasses.fields(cls):
        default = item.default_factory() if callable(item.default_factory) else item.default
        if dataclasses.is_dataclass(default):
            found += _sections(type(default), f"{prefix}{item.name}.")
    return found


def _placeholder(parameter: inspect.Parameter) -> Any:
    """A value for a required non-path parameter (the checks only need it present)."""
    return 1 if parameter.annotation in ("int", int) else "label"


def test_path_options_are_read_from_the_annotations() -> None:
    assert source_path_options("table") == ["table", "image_root", "prepare_dir"]
    assert source_path_options("imagenet100") == ["root", "classes", "hierarchy", "prepare_dir"]
    assert BUILDERS["kmeans"].path_parameters() == ["embeddings"]
    assert BUILDERS["hierarchy"].path_parameters() == ["parents"]
    assert BUILDERS["attributes"].path_parameters() == []
    assert "assignment" in path_fields(ExperimentConfig().clusters.__class__)


@pytest.mark.parametrize("name", available_sources())
def test_every_source_path_option_is_made_absolute(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    params = inspect.signature(_REGISTRY[name]).parameters
    paths = source_path_options(name)
    assert set(paths) >= {p for p in params if _looks_like_path(p)}, "unmarked path option"
    options: dict[str, Any] = {p: f"rel/{p}" for p in paths}
    options.update({p: "rel/not-a-path" for p in params if p in NOT_PATHS})
    config = config_from_dict({"data": {"dataset": name, "options": options}})
    resolved = with_absolute_paths(config).data.options
    for key, value in options.items():
        expected = str(tmp_path / value) if key in paths else value
        assert resolved[key] == expected, key


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_builder_path_parameter_is_made_absolute(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    builder = BUILDERS[name]
    paths = builder.path_parameters()
    assert set(paths) >= {p for p in builder.parameters() if _looks_like_path(p)}
    params = {
        p: f"rel/{p}" if p in paths else _placeholder(parameter)
        for p, parameter in builder.parameters().items()
        if p in paths or parameter.default is inspect.Parameter.empty
    }
    spec = {"builder": name, "params": params}
    config = config_from_dict({"clusters": {**spec, "named": {"other": spec}}})
    resolved = with_absolute_paths(config).clusters
    for clustering in (resolved, resolved.named["other"]):
        for key, value in params.items():
            expected = str(tmp_path / value) if key in paths else value
            assert clustering.params[key] == expected, key


def test_every_schema_path_field_is_made_absolute_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sections = _sections(ExperimentConfig)
    marked = {f"{prefix}{name}" for prefix, cls in sections for name in path_fields(cls)}
    named = {
        f"{prefix}{f.name}"
        for prefix, cls in sections
        for f in dataclasses.fields(cls)
        if _looks_like_path(f.name)
    }
    assert marked >= named
    assert marked == {"clusters.assignment", "output.dir"}
    config = config_from_dict(
        {
            "clusters": {"assignment": "a.csv", "named": {"two": {"assignment": "/abs/b.csv"}}},
            "data": {"id_column": "dir", "label_column": "file"},  # strings, not paths
            "output": {"dir": "runs", "name": "x"},
        }
    )
    resolved = with_absolute_paths(config)
    assert resolved.clusters.assignment == str(tmp_path / "a.csv")
    assert resolved.clusters.named["two"].assignment == "/abs/b.csv"
    assert resolved.output.dir == str(tmp_path / "runs")
    assert (resolved.data.id_column, resolved.data.label_column) == ("dir", "file")
    assert dataclasses.replace(resolved, clusters=config.clusters, output=config.output) == config


def test_evaluate_and_embed_work_from_another_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run trained on relative paths (arrays, table, a K-means embedding file) is
    evaluated and embedded from another folder."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    rng = np.random.default_rng(0)
    rows = 48
    np.savez(
        "images.npz",
        images=rng.integers(0, 256, (rows, 1, 12, 12), dtype=np.uint8),
        label=np.arange(rows) % 3,
        split=np.array(["train", "test"] * (rows // 2)),
    )
    np.save("emb.npy", rng.normal(size=(rows // 2, 4)).astype(np.float32))  # training rows
    config = config_from_dict(
        {
            "data": {"dataset": "arrays", "options": {"arrays": "images.npz"}},
            "clusters": {"builder": "kmeans", "params": {"n_clusters": 3, "embeddings": "emb.npy"}},
            "model": {"head_hidden": 16, "head_out": 8},
            "method": {"name": "clinfonce"},
            "train": {"epochs": 1, "batch_size": 12, "progress_bar": False},
            "monitor": {"enabled": False},
            "output": {"dir": "runs", "name": "r"},
        }
    )
    result = train(config)
    saved = load_config(result.run_dir / "config.yaml")
    assert saved.data.options["arrays"] == str(work / "images.npz")
    assert saved.clusters.params["embeddings"] == str(work / "emb.npy")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = load_run(work / "runs" / "r")
    settings = EvalSettings(knn_ks=(5,), cs=(1.0,), nmi=False)
    results = evaluate_run(run, settings, out_dir=elsewhere, log=lambda _: None)
    assert 0.0 <= results["knn"]["5"]["top1"] <= 1.0
    sidecar = embed_run(run, elsewhere / "emb", log=lambda _: None)
    assert np.load(elsewhere / "emb" / "embeddings.npy").shape[0] == rows
    assert json.loads(json.dumps(sidecar))
