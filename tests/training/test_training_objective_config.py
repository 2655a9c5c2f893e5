"""The ``objective`` section, named clusterings and the method presets: what they resolve to,
and a clear error for every way to get them wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clinfonce.clusters import read_assignment, write_assignment
from clinfonce.data import ClustersConfig, ClusterSpec, DataConfig, ImageSource, prepare_data
from clinfonce.data.cluster_ids import write_clusters
from clinfonce.training import config_from_dict, load_config, objective_terms, save_config

ONE = {"builder": "attributes", "params": {"columns": ["maker"]}}
TWO = {"builder": "attributes", "params": {"columns": ["maker", "material"]}}


def resolved(values: dict[str, Any], *overrides: str) -> list[tuple[Any, ...]]:
    cfg = config_from_dict(values, list(overrides))
    return [
        (t.name, t.ids, t.weight, t.head, t.start_epoch, t.end_epoch) for t in objective_terms(cfg)
    ]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, [("simclr", "instance", 1.0, "main", 0, None)]),  # auto, no clusters: SimCLR
        (
            {"clusters": ONE},  # auto with clusters: the combined objective
            [
                ("simclr", "instance", 1.0, "main", 0, None),
                ("clinfonce", "cluster", 1.0, "main", 0, None),
            ],
        ),
        (
            {"clusters": ONE, "method": {"name": "clinfonce"}},
            [("clinfonce", "cluster", 1.0, "main", 0, None)],
        ),
        (
            {
                "clusters": {"level1": ONE, "level2": TWO},
                "method": {"name": "clinfonce-plus-simclr"},
            },
            [
                ("simclr", "instance", 1.0, "main", 0, None),
                ("clinfonce-level1", "level1", 1.0, "main", 0, None),
                ("clinfonce-level2", "level2", 1.0, "main", 0, None),
            ],
        ),
        (
            {"clusters": ONE, "method": {"name": "clinfonce-two-head"}, "train": {"epochs": 20}},
            [
                ("simclr", "instance", 1.0, "instance", 0, None),
                ("clinfonce", "cluster", 1.0, "cluster", 2, None),  # a tenth of the epochs
            ],
        ),
        (
            {"clusters": ONE, "method": {"name": "clinfonce-two-head"}, "train": {"epochs": 8}},
            [
                ("simclr", "instance", 1.0, "instance", 0, None),
                ("clinfonce", "cluster", 1.0, "cluster", 1, None),  # at least one epoch
            ],
        ),
        (
            {
                "clusters": ONE,
                "method": {"name": "clinfonce-two-head", "warmup_epochs": 0},
                "train": {"epochs": 8},
            },
            [
                ("simclr", "instance", 1.0, "instance", 0, None),
                ("clinfonce", "cluster", 1.0, "cluster", 0, None),
            ],
        ),
        (
            {"clusters": ONE, "method": {"name": "clinfonce", "warmup_epochs": 3}},
            [  # SimCLR alone, then Cl-InfoNCE alone
                ("simclr", "instance", 1.0, "main", 0, 3),
                ("clinfonce", "cluster", 1.0, "main", 3, None),
            ],
        ),
    ],
)
def test_presets_resolve(values: dict[str, Any], expected: list[tuple[Any, ...]]) -> None:
    assert resolved(values) == expected


def test_two_head_single_epoch_has_no_warmup() -> None:
    values = {"clusters": ONE, "method": {"name": "clinfonce-two-head"}, "train": {"epochs": 1}}
    assert [t[4] for t in resolved(values)] == [0, 0]


def test_objective_list_with_named_clusterings(tmp_path: Path) -> None:
    values = {
        "clusters": {"builder": "attributes", "level1": ONE, "named": {"level2": TWO}},
        "method": {"temperature": 0.3},
        "objective": [
            {"loss": "simclr", "head": "instance"},
            {"clusters": "level1", "weight": 0.5, "start_epoch": 2},
            {"clusters": "level2", "weight": 2, "temperature": 0.1, "name": "fine"},
            {"loss": "clinfonce"},  # null: the unnamed clustering
            {"loss": "supcon", "weight": 0.1, "end_epoch": 4},
        ],
    }
    cfg = config_from_dict(values, ["objective.1.weight=0.25"])
    assert cfg.clusters.sources == ["cluster", "level2", "level1"]  # named, then shorthand
    terms = objective_terms(cfg)
    assert [(t.name, t.ids, t.weight, t.temperature, t.head) for t in terms] == [
        ("simclr", "instance", 1.0, 0.3, "instance"),
        ("clinfonce-level1", "level1", 0.25, 0.3, "main"),
        ("fine", "level2", 2.0, 0.1, "main"),
        ("clinfonce", "cluster", 1.0, 0.3, "main"),
        ("supcon", "label", 0.1, 0.3, "main"),
    ]
    assert [(t.start_epoch, t.end_epoch) for t in terms][1::3] == [(2, None), (0, 4)]
    # Saved in the canonical form (named clusterings under clusters.named), reloaded equal.
    save_config(cfg, tmp_path / "config.yaml")
    assert "named:" in (tmp_path / "config.yaml").read_text()
    assert load_config(tmp_path / "config.yaml") == cfg


def test_single_named_clustering_is_the_default() -> None:
    values = {"clusters": {"level1": ONE}, "objective": [{"loss": "clinfonce"}]}
    assert resolved(values) == [("clinfonce-level1", "level1", 1.0, "main", 0, None)]


LEVELS = {"clusters": {"level1": ONE, "level2": TWO}}


@pytest.mark.parametrize(
    ("values", "overrides", "message"),
    [
        ({"objective": [{"loss": "moco"}]}, [], r"objective\[0\]\.loss must be one of clinfonce"),
        (
            {**LEVELS, "objective": [{"clusters": "level3"}]},
            [],
            r"objective\[0\]\.clusters: no clustering named 'level3'; configured: level1, level2",
        ),
        (
            {**LEVELS, "objective": [{"loss": "clinfonce"}]},
            [],
            r"2 clusterings are configured \(level1, level2\); name the one",
        ),
        (
            {"objective": [{"loss": "clinfonce"}]},
            [],
            r"objective\[0\]: loss clinfonce needs clusters",
        ),
        (
            {**LEVELS, "objective": [{"loss": "simclr", "clusters": "level1"}]},
            [],
            r"only loss clinfonce reads a clustering",
        ),
        (
            {"objective": [{"loss": "supcon"}], "data": {"label_column": None}},
            [],
            r"objective\[0\]: loss supcon needs labels",
        ),
        (
            {**LEVELS, "objective": [{"clusters": "level1"}]},
            ["method.name=clinfonce"],
            r"method\.name=clinfonce and an objective list are both set.*method\.name at auto",
        ),
        (
            {**LEVELS, "objective": [{"clusters": "level1"}]},
            ["method.warmup_epochs=2"],
            r"set the start_epoch of the terms that wait",
        ),
        (
            {"objective": [{"loss": "simclr", "start_epoch": 5}]},
            ["train.epochs=5"],
            r"'simclr' starts at epoch 5 but training has 5 epochs.*never train",
        ),
        (
            {"objective": [{"loss": "simclr", "weight": -1}]},
            [],
            r"'simclr': weight must be finite and >= 0, got -1",
        ),
        (
            {"objective": [{"loss": "simclr", "weight": 0}]},
            [],
            r"no objective term with weight > 0 trains in epoch 0",
        ),
        (
            {
                "objective": [
                    {"loss": "simclr", "end_epoch": 2},
                    {"loss": "supcon", "start_epoch": 3},
                ]
            },
            ["train.epochs=5"],
            r"trains in epoch 2 \(of 5\)",
        ),
        (
            {"objective": [{"loss": "simclr", "start_epoch": 2, "end_epoch": 2}]},
            [],
            r"needs 0 <= start_epoch < end_epoch, got 2 and 2",
        ),
        (
            {"objective": [{"loss": "simclr"}, {"loss": "simclr", "weight": 2}]},
            [],
            r"names must be unique.*set their name",
        ),
        ({"objective": [{"loss": "simclr", "head": "a.b"}]}, [], r"head name 'a\.b'"),
        (
            {"objective": [{"loss": "simclr", "temperature": 0}]},
            [],
            r"temperature must be > 0",
        ),
        ({"clusters": {"label": ONE}}, [], r"bad clustering name 'label'"),
        ({"clusters": {"level1": {"params": {}}}}, [], r"clusters\.named\.level1: set its"),
        ({"clusters": {"level1": ONE, "named": {"level1": TWO}}}, [], r"'level1' is given twice"),
        (
            {"clusters": {"level1": {"biulder": "x"}}},
            [],
            r"unknown config key 'clusters\.named\.level1\.biulder'",
        ),
        (
            {"objective": [{"loss": "simclr"}]},
            ["objective.2.weight=3"],
            r"objective is a list of 1",
        ),
        (
            {},
            ["method.name=simclr", "method.warmup_epochs=2"],
            r"warmup_epochs needs a method with cluster",
        ),
        ({"clusters": ONE}, ["method.name=clinfonce", "method.warmup_epochs=-1"], r"must be >= 0"),
        ({}, ["method.name=clinfonce-two-head"], r"clinfonce-two-head needs clusters"),
    ],
)
def test_bad_objectives_say_what_and_where(
    values: dict[str, Any], overrides: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_dict(values, overrides)


def test_override_does_not_touch_the_callers_values() -> None:
    values = {"objective": [{"loss": "simclr"}]}
    config_from_dict(values, ["objective.0.weight=3"])
    assert values == {"objective": [{"loss": "simclr"}]}


def test_named_clusterings_are_prepared_and_recorded(tmp_path: Path) -> None:
    """A named clustering from an assignment file (joined by id, copied to the run) and one
    built from a column (written with its metrics against the labels)."""
    n = 12
    table = pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(n)],
            "label": [i % 3 for i in range(n)],
            "colour": ["red", "blue"] * (n // 2),
            "split": ["train"] * 9 + ["test"] * 3,
        }
    )
    src = ImageSource("toy", table, images=np.zeros((n, 1, 4, 4), np.uint8), channels=1)
    order = [f"s{i}" for i in reversed(range(n))]
    write_assignment(tmp_path / "fine.csv", order, [100 + int(k[1:]) for k in order], {"k": 1})
    clusters = ClustersConfig(
        named={
            "fine": ClusterSpec(assignment=str(tmp_path / "fine.csv")),
            "colour": ClusterSpec(builder="attributes", params={"columns": ["colour"]}),
        }
    )
    prep = prepare_data(DataConfig(), clusters, source=src)
    assert prep.clusters is None and list(prep.named_clusters) == ["fine", "colour"]
    assert prep.named_clusters["fine"].tolist() == [100 + r for r in prep.train_rows]
    colours = table["colour"].iloc[prep.train_rows].to_numpy()
    colour_ids = prep.named_clusters["colour"]
    assert len(set(zip(colours, colour_ids, strict=True))) == 2  # one id per colour
    metrics = prep.named_sidecars["colour"].metrics
    assert metrics is not None and metrics["num_clusters"] == 2
    run = tmp_path / "run"
    run.mkdir()
    written = write_clusters(prep, DataConfig(), run)
    assert written == [run / "clusters-colour.csv", run / "clusters-fine.csv"]
    assert (run / "clusters-fine.csv").read_text() == (tmp_path / "fine.csv").read_text()
    assert (run / "clusters-fine.csv.json").is_file() and (
        run / "clusters-colour.csv.json"
    ).is_file()
    assert read_assignment(run / "clusters-colour.csv")["cluster"].tolist() == colour_ids.tolist()
