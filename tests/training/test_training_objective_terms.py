"""Combined objectives in the module: the total is the weighted sum of its terms, each head
learns only from its own terms, warm-up terms wait, and tiny two-term and three-level fits."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import pytest
import torch

from clinfonce.clusters import read_assignment
from clinfonce.losses import cl_infonce_loss
from clinfonce.runs.load import load_module
from clinfonce.training import ContrastiveModule, config_from_dict, objective_terms, train
from clinfonce.training.objective import Objective, ObjectiveTerm

B, V = 8, 2
LEVEL1 = torch.tensor([0, 0, 0, 1, 1, 1, 1, 1])  # flipped, a different partition
CLUSTER = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
LABEL = torch.tensor([0, 1, 0, 1, 2, 2, 3, 4])


def module_for(objective: list[dict[str, Any]]) -> ContrastiveModule:
    torch.manual_seed(0)
    cfg = config_from_dict(
        {
            "clusters": {"builder": "attributes", "level1": {"builder": "attributes"}},
            "objective": objective,
            "model": {"head_hidden": 16, "head_out": 8},
        }
    )
    module = ContrastiveModule(
        cfg, in_channels=1, image_size=8, mean=[0.5], std=[0.25], terms=objective_terms(cfg)
    ).double()
    # Clusterings are looked up by sample index; the batch's indices are reversed.
    module.set_assignment("cluster", CLUSTER.flip(0))
    module.set_assignment("level1", LEVEL1.flip(0))
    return module


def batch() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return {
        "image": torch.randn(B, V, 1, 8, 8, generator=gen, dtype=torch.float64),
        "index": torch.arange(B).flip(0),  # so that the lookup must use the index
        "label": LABEL,
        "cluster": CLUSTER,
    }


FOUR_TERMS = [
    {"loss": "simclr", "weight": 0.5, "head": "inst", "temperature": 0.2},
    {"loss": "clinfonce", "clusters": "cluster", "weight": 2.0, "head": "clu"},
    {"clusters": "level1", "weight": 0.75, "head": "clu", "temperature": 0.3},
    {"loss": "supcon", "weight": 0.3, "head": "inst", "temperature": 0.5},
]
# Per term: head, ids of the batch above, temperature (method.temperature defaults to 0.1).
EXPECTED = {
    "simclr": ("inst", None, 0.2, 0.5),
    "clinfonce": ("clu", CLUSTER, 0.1, 2.0),
    "clinfonce-level1": ("clu", LEVEL1, 0.3, 0.75),
    "supcon": ("inst", LABEL, 0.5, 0.3),
}


def separate_terms(module: ContrastiveModule, data: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Each term's loss from its own forward pass and a direct ``cl_infonce_loss`` call."""
    values = {}
    for name, (head, ids, tau, _) in EXPECTED.items():
        features = module.encoder(data["image"].flatten(0, 1))
        z = module.heads[head](features).view(B, V, -1)
        values[name] = cl_infonce_loss(z, ids, temperature=tau)
    return values


def test_total_is_the_weighted_sum_of_separate_terms() -> None:
    module = module_for(FOUR_TERMS)
    data = batch()
    total, parts = module.compute_loss(data)
    separate = separate_terms(module, data)
    assert list(parts) == list(EXPECTED)
    for name, value in separate.items():
        torch.testing.assert_close(parts[name], value.detach())
    expected = sum(EXPECTED[n][3] * v for n, v in separate.items())
    torch.testing.assert_close(total, expected)
    # The terms differ: a wrong ids source or head would be caught.
    assert len({round(float(v.detach()), 6) for v in separate.values()}) == len(separate)


def test_each_head_learns_only_from_its_own_terms() -> None:
    module = module_for(FOUR_TERMS)
    data = batch()
    params = dict(module.named_parameters())
    total, _ = module.compute_loss(data)
    total_grads = dict(zip(params, torch.autograd.grad(total, list(params.values())), strict=True))
    summed = {name: torch.zeros_like(p) for name, p in params.items()}
    for term, value in separate_terms(module, data).items():
        head, _, _, weight = EXPECTED[term]
        grads = torch.autograd.grad(weight * value, list(params.values()), allow_unused=True)
        for name, grad in zip(params, grads, strict=True):
            if name.startswith("heads."):
                # A term reaches its own head and no other.
                assert (grad is not None) == name.startswith(f"heads.{head}."), (term, name)
            if grad is not None:
                summed[name] += grad
    for name, grad in total_grads.items():
        torch.testing.assert_close(grad, summed[name], msg=name)
        assert grad.abs().sum() > 0, name  # every head and the encoder learn here


def test_zero_weight_head_gets_no_gradient() -> None:
    terms = [
        {"loss": "simclr", "head": "inst"},
        {"loss": "clinfonce", "clusters": "cluster", "head": "clu", "weight": 0.0},
    ]
    module = module_for(terms)
    module.compute_loss(batch())[0].backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, name
        assert (float(p.grad.abs().sum()) == 0.0) == name.startswith("heads.clu."), name


def test_warmup_terms_wait_for_their_epoch() -> None:
    torch.manual_seed(0)
    z = {"a": torch.randn(6, 2, 5, dtype=torch.float64), "b": torch.randn(6, 2, 5).double()}
    ids = {"instance": None, "cluster": torch.tensor([0, 0, 1, 1, 2, 2])}
    objective = Objective(
        [
            ObjectiveTerm("simclr", "instance", 0.5, head="a", end_epoch=3),
            ObjectiveTerm("clinfonce", "cluster", 2.0, head="b", start_epoch=1),
        ]
    )
    simclr = cl_infonce_loss(z["a"], None, temperature=0.1)
    clinfonce = cl_infonce_loss(z["b"], ids["cluster"], temperature=0.1)
    expected = {0: 0.5 * simclr, 1: 0.5 * simclr + 2 * clinfonce, 3: 2 * clinfonce}
    for epoch, value in expected.items():
        total, parts = objective(z, ids, epoch)
        torch.testing.assert_close(total, value)
        assert sorted(parts) == sorted(t.name for t in objective.active_terms(epoch))
    # A warming-up head is not even computed: only the active heads are needed.
    total, parts = objective({"a": z["a"]}, {"instance": None}, 0)
    assert list(parts) == ["simclr"]


TINY = {
    "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 80, "image_size": 12}},
    "model": {"head_hidden": 32, "head_out": 16},
    "optim": {"lr": 0.05},
    "train": {"epochs": 2, "batch_size": 16, "progress_bar": False, "log_every_n_steps": 1},
    "monitor": {"max_bank": 40, "max_queries": 16},
}


class HeadSnapshots(L.Callback):
    """The ``cluster`` head's weights at the start and after each epoch."""

    def __init__(self) -> None:
        self.snapshots: list[torch.Tensor] = []

    def _take(self, module: L.LightningModule) -> None:
        head = module.heads["cluster"]  # type: ignore[index]
        self.snapshots.append(torch.cat([p.detach().flatten().clone() for p in head.parameters()]))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take(pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take(pl_module)


def metrics_log(run: Path) -> pd.DataFrame:
    return pd.read_csv(next((run / "logs" / "csv").glob("version_*/metrics.csv")))


def test_two_head_fit_warms_up_then_trains_both(tmp_path: Path) -> None:
    cfg = config_from_dict(
        {
            **TINY,
            "clusters": {"builder": "attributes", "params": {"columns": ["maker"]}},
            "method": {"name": "clinfonce-two-head", "warmup_epochs": 1},
            "output": {"dir": str(tmp_path), "name": "two-head"},
        }
    )
    snapshots = HeadSnapshots()
    result = train(cfg, callbacks=[snapshots])
    start, after_warmup, end = snapshots.snapshots
    assert torch.equal(start, after_warmup)  # InfoNCE alone in epoch 0: the head waited
    assert not torch.allclose(after_warmup, end)
    log = metrics_log(result.run_dir)
    steps = log.dropna(subset=["train/loss"])
    first = steps[steps["epoch"] == 0]
    second = steps[steps["epoch"] == 1]
    assert first["train/clinfonce"].isna().all()
    assert second[["train/simclr", "train/clinfonce"]].notna().all().all()
    both = second["train/simclr"] + second["train/clinfonce"]
    assert (second["train/loss"] - both).abs().max() < 1e-4  # weights 1 and 1
    assert math.isfinite(result.metrics["train/loss"])
    reloaded = load_module(result.last_checkpoint)
    assert sorted(reloaded.heads) == ["cluster", "instance"]  # type: ignore[arg-type]


def test_three_level_fit(tmp_path: Path) -> None:
    levels = (["maker"], ["maker", "material"], ["maker", "material", "region"])
    clusters = {
        f"level{i + 1}": {"builder": "attributes", "params": {"columns": cols}}
        for i, cols in enumerate(levels)
    }
    cfg = config_from_dict(
        {
            **TINY,
            "clusters": clusters,
            "objective": [
                {"loss": "simclr"},
                {"clusters": "level1", "weight": 0.25},
                {"clusters": "level2", "weight": 0.5},
                {"clusters": "level3", "weight": 1.0},
            ],
            "output": {"dir": str(tmp_path), "name": "levels"},
        }
    )
    result = train(cfg)
    run = result.run_dir
    assert not (run / "clusters.csv").exists()
    tables = {name: read_assignment(run / f"clusters-{name}.csv") for name in clusters}
    for name, table in tables.items():
        assert (run / f"clusters-{name}.csv.json").is_file()
        assert torch.equal(
            result.module.assignments[name], torch.tensor(table["cluster"].to_numpy())
        )  # type: ignore[index]
    # Nested: every finer cluster sits inside one coarser cluster, and the counts grow.
    for coarse, fine in (("level1", "level2"), ("level2", "level3")):
        pairs = pd.DataFrame({"coarse": tables[coarse]["cluster"], "fine": tables[fine]["cluster"]})
        assert (pairs.groupby("fine")["coarse"].nunique() == 1).all()
        assert pairs["fine"].nunique() > pairs["coarse"].nunique()
    log = metrics_log(run).dropna(subset=["train/loss"])
    names = ["simclr", "clinfonce-level1", "clinfonce-level2", "clinfonce-level3"]
    parts = log[[f"train/{n}" for n in names]]
    assert parts.notna().all().all() and parts.map(math.isfinite).all().all()
    weighted = parts.to_numpy() @ [1.0, 0.25, 0.5, 1.0]
    assert abs(weighted - log["train/loss"].to_numpy()).max() < 1e-4


@pytest.mark.parametrize("method", ["auto", "clinfonce-plus-simclr"])
def test_combined_preset_module_terms(method: str) -> None:
    cfg = config_from_dict(
        {"clusters": {"builder": "attributes"}, "method": {"name": method}},
        ["model.head_hidden=16", "model.head_out=8"],
    )
    module = ContrastiveModule(
        cfg, in_channels=1, image_size=8, mean=[0.5], std=[0.25], terms=objective_terms(cfg)
    )
    assert [t.name for t in module.objective.terms] == ["simclr", "clinfonce"]
    assert list(module.heads) == ["main"]  # one shared head
