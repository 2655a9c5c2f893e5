"""The module's loss sees the right ids for each method; views and preprocessing."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from clinfonce.losses import cl_infonce_loss
from clinfonce.training import ContrastiveModule, ObjectiveTerm, config_from_dict, objective_terms
from clinfonce.training.base import FINITE_CHECK_EVERY
from clinfonce.training.methods.registry import find_method

METHOD_VALUES = {
    "simclr": {"method": {"name": "simclr", "temperature": 0.3}},
    "supcon": {"method": {"name": "supcon", "temperature": 0.3}},
    "clinfonce": {
        "method": {"name": "clinfonce", "temperature": 0.3},
        "clusters": {"builder": "attributes"},
    },
}


def make_module(method: str, terms: list[ObjectiveTerm] | None = None) -> ContrastiveModule:
    torch.manual_seed(0)
    cfg = config_from_dict(METHOD_VALUES[method], ["model.head_hidden=16", "model.head_out=8"])
    terms = objective_terms(cfg) if terms is None else terms
    return ContrastiveModule(cfg, in_channels=1, image_size=8, mean=[0.5], std=[0.25], terms=terms)


def batch() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return {
        "image": torch.randn(6, 2, 1, 8, 8, generator=gen),
        "index": torch.arange(6),
        "label": torch.tensor([0, 1, 0, 1, 2, 2]),
        "cluster": torch.tensor([5, 5, 6, 6, 6, 7]),
    }


def projections(module: ContrastiveModule, views: torch.Tensor) -> torch.Tensor:
    feats = module.encoder(views.flatten(0, 1))
    return module.heads["main"](feats).view(6, 2, -1)


@pytest.mark.parametrize(
    ("method", "ids_key"), [("simclr", None), ("supcon", "label"), ("clinfonce", "cluster")]
)
def test_loss_uses_the_method_ids(method: str, ids_key: str | None) -> None:
    module = make_module(method)  # train mode: BatchNorm uses batch statistics in both
    data = batch()
    module.set_assignment("cluster", data["cluster"])  # clusterings are looked up by index
    loss, parts = module.compute_loss(data)
    ids = None if ids_key is None else data[ids_key]
    expected = cl_infonce_loss(projections(module, data["image"]), ids, temperature=0.3)
    torch.testing.assert_close(loss, expected)
    assert list(parts) == [method]
    other_ids = torch.tensor([0, 0, 0, 1, 1, 1])  # a partition no method uses
    other = cl_infonce_loss(projections(module, data["image"]), other_ids, temperature=0.3)
    assert not torch.allclose(loss, other)


def test_registered_assignment_is_looked_up_by_index() -> None:
    module = make_module("simclr", [ObjectiveTerm("kmeans", "kmeans", temperature=0.3)])
    data = batch()
    data["index"] = torch.tensor([9, 8, 7, 6, 5, 4])
    with pytest.raises(ValueError, match="no assignment 'kmeans'"):
        module.compute_loss(data)
    table = torch.arange(10) // 2  # index i -> cluster i // 2
    module.set_assignment("kmeans", table)
    loss, _ = module.compute_loss(data)
    expected = cl_infonce_loss(
        projections(module, data["image"]), table[data["index"]], temperature=0.3
    )
    torch.testing.assert_close(loss, expected)
    with pytest.raises(ValueError, match="reserved"):
        module.set_assignment("label", table)


def test_supcon_rejects_training_rows_without_a_label() -> None:
    """Checked once, when the module is built (a check per step would wait for the device)."""
    config = config_from_dict({"method": {"name": "supcon"}, "data": {"label_column": "y"}})
    data = SimpleNamespace(train_labels=lambda: np.array([0, -1, 2, -1]))
    with pytest.raises(ValueError, match=r"2 of 4 training rows have none \(y missing\)"):
        find_method("supcon").build(config, data, objective_terms(config))  # type: ignore[arg-type]


def test_embed_normalises_and_resizes() -> None:
    module = make_module("simclr")
    module.eval()
    raw = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    expected = module.encoder((raw.float() / 255 - 0.5) / 0.25)
    torch.testing.assert_close(module.embed(raw), expected)
    assert module.embed(torch.rand(2, 1, 12, 12)).shape == (2, module.encoder.out_dim)


def test_a_non_finite_loss_stops_the_run_with_its_step_and_value() -> None:
    """Recorded on the device at its step, read at the next check (step 0, every
    FINITE_CHECK_EVERY steps, the last batch of an epoch)."""
    module = make_module("simclr")
    module.check_finite(torch.tensor(2.0))  # step 0, no trainer: checked at once
    trainer = SimpleNamespace(global_step=3, is_last_batch=False)
    module._trainer = trainer  # type: ignore[assignment]
    module.check_finite(torch.tensor(math.inf))  # step 3: recorded, not read yet
    trainer.global_step = 4
    module.check_finite(torch.tensor(math.nan))  # a later one does not replace it
    trainer.global_step = FINITE_CHECK_EVERY
    with pytest.raises(FloatingPointError, match=r"non-finite loss inf at step 3; lower optim"):
        module.check_finite(torch.tensor(1.0))
    fresh = make_module("simclr")
    fresh._trainer = SimpleNamespace(global_step=7, is_last_batch=True)  # type: ignore[assignment]
    with pytest.raises(FloatingPointError, match="nan at step 7"):
        fresh.check_finite(torch.tensor(math.nan))
