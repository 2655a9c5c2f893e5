"""Experiment files: parsing, grid expansion, config precedence and clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from clinfonce.experiments import expand_grid, experiment_from_dict, load_experiment
from clinfonce.experiments.config_values import fingerprint
from clinfonce.experiments.spec import eval_hash

BASE: dict[str, Any] = {
    "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 60}},
    "method": {"name": "simclr", "temperature": 0.2},
    "optim": {"lr": 0.01},
    "train": {"epochs": 3},
    "output": {"dir": "elsewhere"},
}


def spec_of(**extra: Any) -> Any:
    values: dict[str, Any] = {"base": BASE, "runs": [{"name": "a"}], **extra}
    return experiment_from_dict(values)


def test_grid_is_seeds_times_runs_with_sweeps_expanded() -> None:
    spec = spec_of(
        seeds=[3, 7],
        runs=[
            {"name": "simclr"},
            {
                "name": "topk",
                "sweep": {"key": "clusters.params.k", "values": [1, 2, None]},
                "set": {
                    "method.name": "clinfonce",
                    "clusters.builder": "attributes",
                    "clusters.params.columns": ["maker", "region"],
                },
            },
        ],
    )
    names = ["simclr", "topk-k1", "topk-k2", "topk-kall"]
    assert [r.name for r in spec.runs] == names
    cells = expand_grid(spec)
    assert [(c.run.name, c.seed) for c in cells] == [(n, 3) for n in names] + [
        (n, 7) for n in names
    ]
    assert [c.index for c in cells] == list(range(8))
    ks = [c.config.clusters.params.get("k", "-") for c in cells[:4]]
    assert ks == ["-", 1, 2, None]
    assert {c.run.group for c in cells[1:4]} == {"topk"}
    assert [c.run.x for c in cells[1:4]] == [1, 2, None]
    assert cells[1].run.x_label == "clusters.params.k"
    assert [c.config.train.seed for c in cells] == [3] * 4 + [7] * 4
    assert cells[5].dirname == "topk-k1-seed7"


def test_precedence_base_set_config_runset_overrides() -> None:
    spec = spec_of(
        set={"optim.lr": 0.02, "train.epochs": 4},
        runs=[
            {
                "name": "r",
                "config": {"optim": {"weight_decay": 0.5}, "train": {"epochs": 5}},
                "set": {"train.epochs": 6, "train.batch_size": 32},
            }
        ],
    )
    (cell,) = expand_grid(spec, ["train.batch_size=16"])
    config = cell.config
    assert config.optim.lr == 0.02  # experiment set over base
    assert config.optim.weight_decay == 0.5  # run config merged, base keys kept
    assert config.method.temperature == 0.2
    assert config.train.epochs == 6  # run set over run config
    assert config.train.batch_size == 16  # command-line override last
    assert "output" not in cell.values  # the runner owns it


def test_set_replaces_a_section_config_merges_it() -> None:
    base = {**BASE, "clusters": {"builder": "attributes", "params": {"columns": ["maker"]}}}
    spec = experiment_from_dict(
        {
            "base": base,
            "runs": [
                {"name": "none", "set": {"clusters": {}}},
                {"name": "merged", "config": {"clusters": {"params": {"k": 1}}}},
            ],
        }
    )
    none, merged = expand_grid(spec)
    assert not none.config.clusters.defined
    assert merged.values["clusters"] == {
        "builder": "attributes",
        "params": {"columns": ["maker"], "k": 1},
    }


def test_seeds_only_and_count() -> None:
    spec = spec_of(seeds=3, runs=[{"name": "a"}, {"name": "b"}])
    assert spec.seeds == (0, 1, 2)
    cells = expand_grid(spec, seeds=[5], only=["b"])
    assert [(c.run.name, c.seed) for c in cells] == [("b", 5)]
    with pytest.raises(ValueError, match="--only: no run named c"):
        expand_grid(spec, only=["c"])


def test_base_path_is_relative_to_the_experiment_file(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "base.yaml").write_text(yaml.safe_dump(BASE))
    folder = tmp_path / "configs" / "experiments"
    folder.mkdir()
    path = folder / "grid.yaml"
    path.write_text(yaml.safe_dump({"base": "../base.yaml", "runs": [{"name": "a"}]}))
    spec = load_experiment(path)
    assert spec.name == "grid" and spec.source == path
    assert expand_grid(spec)[0].config.optim.lr == 0.01
    path.write_text(yaml.safe_dump({"base": "missing.yaml", "runs": [{"name": "a"}]}))
    with pytest.raises(FileNotFoundError, match=r"missing\.yaml not found"):
        load_experiment(path)


def test_evaluation_settings() -> None:
    spec = spec_of(evaluation={"knn_k": 5, "cs": [0.5, 2], "max_test": 100})
    assert spec.knn_k == 5
    assert spec.evaluation.knn_ks == (5,)
    assert spec.evaluation.cs == (0.5, 2)
    assert spec.evaluation.max_test == 100
    assert spec.evaluation.nmi is False  # experiment default: the table has no NMI
    assert eval_hash(spec.evaluation) != eval_hash(spec_of().evaluation)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"runs": []}, "'runs' must be a non-empty list"),
        ({"runs": [{"name": "a"}], "sedes": 2}, "unknown key 'sedes'; valid keys"),
        ({"runs": [{"name": "a"}, {"name": "a"}]}, "repeated: a"),
        ({"runs": [{"name": "a b"}]}, "name 'a b' must be"),
        ({"runs": [{"name": "a", "swep": {}}]}, r"runs\[0\]: unknown key 'swep'"),
        ({"runs": [{"name": "a", "sweep": {"key": "x"}}]}, "sweep needs key"),
        ({"runs": [{"name": "a"}], "seeds": [1, 1]}, "repeat a seed"),
        ({"runs": [{"name": "a"}], "seeds": "all"}, "seeds must be a list"),
        ({"runs": [{"name": "a"}], "evaluation": {"knn_ks": [5]}}, "unknown key 'knn_ks'"),
        ({"runs": [{"name": "a"}], "evaluation": {"probe": "svm"}}, "probe must be one of"),
        ({"runs": [{"name": "a"}], "gap": {"low": "a", "high": "b"}}, "gap run 'b'"),
        ({"runs": [{"name": "a", "untrained": "yes"}]}, "untrained must be true or false"),
        ({"runs": [{"name": "a", "plot_with": "b"}]}, "plot_with 'b' is not another series"),
    ],
)
def test_bad_experiment_files_name_the_problem(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        experiment_from_dict({"base": BASE, **values})


def test_bad_run_config_names_run_and_seed() -> None:
    spec = spec_of(runs=[{"name": "typo", "set": {"optim.lrr": 1}}])
    with pytest.raises(ValueError, match=r"run typo \(seed 0\): unknown config key 'optim.lrr'"):
        expand_grid(spec)
    with pytest.raises(ValueError, match=r"train\.devices and train\.num_nodes must be 1"):
        expand_grid(spec_of(runs=[{"name": "a"}]), ["train.devices=2"])


def test_train_hash_tracks_config_and_seed() -> None:
    spec = spec_of(seeds=[0, 1])
    a0, a1 = expand_grid(spec)
    assert a0.train_hash() != a1.train_hash()
    assert a0.train_hash() == expand_grid(spec)[0].train_hash()
    assert expand_grid(spec, ["train.epochs=9"])[0].train_hash() != a0.train_hash()
    assert fingerprint({"a": 1}) == fingerprint({"a": 1}) != fingerprint({"a": 2})
