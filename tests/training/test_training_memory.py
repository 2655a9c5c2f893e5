"""The memory of past projections in training: keys and ids the loss sees, exact resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from clinfonce.losses.memory import ProjectionMemory
from clinfonce.losses.positives import Positives
from clinfonce.training import config_from_dict, train
from clinfonce.training.methods.contrastive import ContrastiveModule
from clinfonce.training.objective import ObjectiveTerm

TINY: dict[str, Any] = {
    "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 80, "image_size": 12}},
    "clusters": {"builder": "attributes", "params": {"columns": ["maker"]}},
    "model": {"head_hidden": 16, "head_out": 8},
    "train": {"epochs": 2, "batch_size": 8, "progress_bar": False},
    "monitor": {"enabled": False},
}


class StopAfterFirstEpoch(L.Callback):
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.should_stop = trainer.current_epoch == 0


def checkpoint(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = torch.load(path, weights_only=False, map_location="cpu")
    return loaded


def memory_config(out: Path, name: str, method: str, **memory: Any) -> Any:
    values = {
        **TINY,
        "method": {"name": method, "memory": {"size": 24, **memory}},
        "output": {"dir": str(out), "name": name},
    }
    return config_from_dict(values)


def test_ring_buffer_keeps_the_newest_entries_and_its_state() -> None:
    memory = ProjectionMemory(size=4, dim=2)
    assert memory.entries()[0].shape == (0, 2)
    memory.push(torch.ones(3, 2), torch.tensor([1, 2, 3]), torch.tensor([5, 6, 7]))
    memory.push(torch.zeros(3, 2), torch.tensor([4, 5, 6]))
    keys, index, labels = memory.entries()
    assert index.tolist() == [5, 6, 3, 4] and labels.tolist() == [-1, -1, 7, -1]
    assert keys.sum().item() == 2.0
    memory.push(torch.zeros(9, 2), torch.arange(9))  # more than fits: the newest 4
    assert sorted(memory.entries()[1].tolist()) == [5, 6, 7, 8]
    copy = ProjectionMemory(size=4, dim=2)
    copy.load_state_dict(memory.state_dict())
    assert (copy.filled, copy.position) == (memory.filled, memory.position)
    assert torch.equal(copy.entries()[1], memory.entries()[1])


INSTANCE, CLUSTER = ObjectiveTerm("simclr", "instance"), ObjectiveTerm("clinfonce", "cluster")


def _module(size: int = 6) -> ContrastiveModule:
    cfg = config_from_dict(
        {"model": {"head_hidden": 8, "head_out": 4}, "method": {"memory": {"size": size}}}
    )
    terms = [INSTANCE, CLUSTER]
    module = ContrastiveModule(
        cfg, in_channels=1, image_size=8, mean=[0.5], std=[0.25], terms=terms
    )
    module.set_assignment("cluster", torch.tensor([0, 0, 1, 1, 2, 2, 0, 1]))
    return module


def test_memory_ids_follow_the_current_assignment_and_instances() -> None:
    module = _module()
    module.memories["main"].push(torch.eye(4)[:3], torch.tensor([1, 2, 7]))  # type: ignore[operator]
    assert module.memory_keys(CLUSTER).positives.values.tolist() == [0, 1, 1]
    assert module.memory_keys(INSTANCE).positives.values.tolist() == [1, 2, 7]
    module.set_assignment("cluster", torch.tensor([5, 4, 3, 2, 1, 0, 9, 8]))  # re-clustered
    assert module.memory_keys(CLUSTER).positives.values.tolist() == [4, 3, 8]


def test_training_step_uses_then_fills_the_memory() -> None:
    module = _module(size=6)
    torch.manual_seed(0)
    views = torch.randn(4, 2, 1, 8, 8)
    first = {"image": views, "index": torch.tensor([0, 2, 4, 6])}
    without, _ = module.compute_loss(dict(first))  # empty memory: the batch alone
    batch_only, _ = module.objective(
        {"main": module.heads["main"](module(views.flatten(0, 1))).view(4, 2, -1)},
        {"instance": None, "cluster": torch.tensor([0, 1, 2, 0])},
    )
    torch.testing.assert_close(without, batch_only)
    assert module._memory("main").entries()[1].tolist() == [0, 2, 4, 6]
    second = {"image": torch.randn(4, 2, 1, 8, 8), "index": torch.tensor([1, 3, 5, 7])}
    with_memory, parts = module.compute_loss(dict(second))
    assert module._memory("main").filled == 6
    assert with_memory.item() != pytest.approx(without.item())
    assert set(parts) == {"simclr", "clinfonce"}


@pytest.mark.parametrize(("method", "momentum"), [("clinfonce", 0.9), ("simclr", 0.0)])
def test_fit_with_memory_resumes_exactly(tmp_path: Path, method: str, momentum: float) -> None:
    full = train(memory_config(tmp_path, "full", method, momentum=momentum))
    cut = train(
        memory_config(tmp_path, "cut", method, momentum=momentum),
        callbacks=[StopAfterFirstEpoch()],
    )
    resumed = train(memory_config(tmp_path, "cut", method, momentum=momentum), resume=cut.run_dir)
    a, b = checkpoint(full.last_checkpoint), checkpoint(resumed.last_checkpoint)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert any(k.startswith("memories.main.") for k in a["state_dict"])
    assert any(k.startswith("momentum_model.") for k in a["state_dict"]) == (momentum > 0)
    for key, value in a["state_dict"].items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=1e-6, msg=key)
        else:
            assert b["state_dict"][key] == value, key
    assert a["state_dict"]["memories.main._extra_state"]["filled"] == 24


@pytest.mark.parametrize(
    ("memory", "message"),
    [({"size": -1}, "memory.size"), ({"size": 8, "momentum": 1.0}, "momentum")],
)
def test_bad_memory_settings(memory: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_dict({"method": {"name": "simclr", "memory": memory}})


def test_memory_needs_a_contrastive_method() -> None:
    with pytest.raises(ValueError, match="contrastive method"):
        config_from_dict(
            {
                **TINY,
                "method": {"name": "ce-clusters", "memory": {"size": 8}},
            }
        )


def test_overlap_term_weights_positives_by_shared_tags() -> None:
    from clinfonce.losses.positives import Overlap
    from clinfonce.losses.weighted import weighted_cl_infonce_loss
    from clinfonce.training.config import TermConfig
    from clinfonce.training.objective import term_from_config

    cfg = config_from_dict({"model": {"head_hidden": 8, "head_out": 4}})
    entry = TermConfig(loss="overlap", tags="tags", overlap="jaccard")
    term = term_from_config(entry, cfg, [])
    assert (term.ids, term.name, term.overlap) == ("tags:tags", "overlap-tags", Overlap("jaccard"))
    module = ContrastiveModule(
        cfg, in_channels=1, image_size=8, mean=[0.5], std=[0.25], terms=[term]
    )
    presence = torch.tensor([[1, 0, 1], [1, 1, 0], [0, 0, 1], [0, 1, 0]], dtype=torch.bool)
    module.set_tags("tags:tags", presence)
    views = torch.randn(3, 2, 1, 8, 8)
    loss, _ = module.compute_loss({"image": views, "index": torch.tensor([3, 0, 2])})
    projections = module.heads["main"](module(views.flatten(0, 1))).view(3, 2, -1)
    expected, _ = weighted_cl_infonce_loss(
        projections, Positives(tags=presence[[3, 0, 2]], overlap=Overlap("jaccard"))
    )
    torch.testing.assert_close(loss, expected)
    with pytest.raises(ValueError, match="needs tags"):
        term_from_config(TermConfig(loss="overlap"), cfg, [])
    with pytest.raises(ValueError, match="overlap kind"):
        term_from_config(TermConfig(loss="overlap", tags="t", overlap="most"), cfg, [])
