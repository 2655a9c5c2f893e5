"""The runner's bookkeeping with training and evaluation replaced by fakes: what is skipped,
resumed, re-evaluated or retrained after an interruption or a change, and the progress lines."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import clinfonce.runs.evaluate as evaluate
import clinfonce.runs.load as load
import clinfonce.training as training
from clinfonce.clusters.io import ClusterSidecar
from clinfonce.experiments import (
    CELL_FILE,
    experiment_from_dict,
    plan_experiment,
    read_results,
    run_experiment,
)
from clinfonce.experiments.grid import expand_grid

BASE = {
    "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 40, "image_size": 12}},
    "method": {"name": "simclr"},
    "train": {"epochs": 1},
}
RUNS = [
    {"name": "simclr"},
    {
        "name": "cl",
        "set": {
            "method.name": "clinfonce",
            "clusters": {"builder": "attributes", "params": {"columns": ["maker"]}},
        },
    },
]


@dataclass
class Fakes:
    """Records training and evaluation calls; training can be made to stop mid-way."""

    trained: list[tuple[str, bool]] = field(default_factory=list)
    evaluated: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    interrupt_at: int | None = None

    def train(self, config: Any, *, resume: Any = None, source: Any = None, keep: Any = ()) -> Any:
        run_dir = Path(config.output.dir) / str(config.output.name)
        checkpoint = run_dir / "checkpoints" / "last.ckpt"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_text("weights")
        self.trained.append((run_dir.name, resume is not None))
        if self.interrupt_at is not None and len(self.trained) == self.interrupt_at:
            raise KeyboardInterrupt
        metrics = {"num_clusters": 4, "h_z_given_t": 1.0, "i_zt": 0.5, "h_t": 3.3}
        clinfonce = config.method.name == "clinfonce"
        sidecar = ClusterSidecar(metrics=metrics) if clinfonce else None
        data = type("Data", (), {"cluster_sidecar": sidecar, "named_sidecars": {}})()
        return type("Result", (), {"module": f"module:{run_dir.name}", "data": data})()

    def load_run(self, path: Any, **_: Any) -> Any:
        self.loaded.append(Path(path).name)
        return type("Run", (), {"module": "loaded"})()

    def evaluate(self, run: Any, settings: Any, **_: Any) -> dict[str, Any]:
        self.evaluated.append(str(run.module))
        k = str(settings.knn_ks[0])
        return {
            "knn": {k: {"top1": 0.5, "top5": 0.9}},
            "linear": {"top1": 0.625, "top5": 0.95},
            "train": {"samples": 30},
            "test": {"samples": 10},
        }


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> Fakes:
    fake = Fakes()
    monkeypatch.setattr(training, "train", fake.train)
    monkeypatch.setattr(load, "load_run", fake.load_run)
    monkeypatch.setattr(evaluate, "evaluate_run", fake.evaluate)
    return fake


def spec(**extra: Any) -> Any:
    return experiment_from_dict({"base": BASE, "runs": RUNS, "seeds": [0, 1], **extra})


def test_interrupted_experiment_resumes_where_it_stopped(fakes: Fakes, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    fakes.interrupt_at = 3  # stops while training the third cell (simclr, seed 1)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec(), out, log=lambda _: None)
    rows = read_results(out / "results.csv")
    assert sorted(zip(rows["name"], rows["seed"], strict=True)) == [("cl", 0), ("simclr", 0)]
    marker = json.loads((out / "runs" / "simclr-seed1" / CELL_FILE).read_text())
    assert marker["stage"] == "training"
    cells = expand_grid(spec())
    assert [s for _, s in plan_experiment(cells, out, spec())] == [
        "done",
        "done",
        "resume",
        "train",
    ]

    fakes.interrupt_at, fakes.trained, fakes.evaluated = None, [], []
    lines: list[str] = []
    result = run_experiment(spec(), out, log=lines.append)
    assert fakes.trained == [("simclr-seed1", True), ("cl-seed1", False)]
    assert fakes.evaluated == ["module:simclr-seed1", "module:cl-seed1"]
    assert lines[0] == "run 1/4: simclr seed 0 — done, skipped"
    assert lines[1] == "run 2/4: cl seed 0 — done, skipped"
    assert lines[2] == "run 3/4: simclr seed 1 — ETA --:-- (resuming from last.ckpt)"
    assert lines[4].startswith("run 4/4: cl seed 1 — ETA 00:0")
    assert result.trained == 2 and len(result.rows) == 4
    row = result.rows.set_index(["name", "seed"]).loc[("cl", 1)]
    assert row["linear_top1"] == 62.5 and row["knn_top1"] == 50.0
    assert row["num_clusters"] == 4 and row["i_zt"] == 0.5
    assert bool(result.rows.set_index(["name", "seed"]).loc[("simclr", 1), "resumed"])
    summary = result.summary.set_index("name")
    assert summary.loc["cl", "linear_top1_mean"] == 62.5
    assert summary.loc["cl", "linear_top1_std"] == 0.0

    fakes.trained, fakes.evaluated = [], []
    again = run_experiment(spec(), out, log=lambda _: None)
    assert fakes.trained == [] and fakes.evaluated == [] and again.trained == 0
    assert (out / "results.md").is_file() and (out / "accuracy.png").is_file()


def test_trained_but_not_evaluated_cell_is_only_evaluated(fakes: Fakes, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    run_experiment(spec(), out, only=["simclr"], seeds=[0], log=lambda _: None)
    marker_path = out / "runs" / "simclr-seed0" / CELL_FILE
    marker = json.loads(marker_path.read_text())
    marker_path.write_text(json.dumps({**marker, "stage": "trained", "row": None}))
    (out / "results.csv").unlink()
    fakes.trained, fakes.evaluated = [], []
    run_experiment(spec(), out, only=["simclr"], seeds=[0], log=lambda _: None)
    assert fakes.trained == [] and fakes.loaded == ["simclr-seed0"]
    assert fakes.evaluated == ["loaded"]


def test_changed_settings_re_evaluate_changed_config_retrains(fakes: Fakes, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    run_experiment(spec(), out, log=lambda _: None)
    assert len(fakes.trained) == 4
    fakes.trained, fakes.evaluated = [], []
    run_experiment(spec(evaluation={"knn_k": 5}), out, log=lambda _: None)
    assert fakes.trained == [] and len(fakes.evaluated) == 4  # evaluation only
    fakes.trained, fakes.evaluated = [], []
    run_experiment(
        spec(evaluation={"knn_k": 5}), out, overrides=["train.epochs=2"], log=lambda _: None
    )
    assert [resumed for _, resumed in fakes.trained] == [False] * 4  # retrained from scratch


def test_rows_come_back_from_markers_and_other_rows_are_kept(fakes: Fakes, tmp_path: Path) -> None:
    out = tmp_path / "exp"
    run_experiment(spec(), out, log=lambda _: None)
    (out / "results.csv").unlink()
    fakes.trained = []
    result = run_experiment(spec(), out, seeds=[0], log=lambda _: None)
    assert fakes.trained == [] and len(result.rows) == 2  # the table covers this grid
    assert len(read_results(out / "results.csv")) == 2
    result = run_experiment(spec(), out, log=lambda _: None)
    assert fakes.trained == [] and len(result.rows) == 4
    assert len(read_results(out / "results.csv")) == 4
    run_experiment(spec(), out, seeds=[0], log=lambda _: None)
    assert len(read_results(out / "results.csv")) == 4  # seed 1 rows are not dropped
    (out / "results.csv").write_text("")
    assert read_results(out / "results.csv").empty
