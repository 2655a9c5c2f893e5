"""Golden numbers: a few steps of every method, pinned before any refactor.

Each method trains two tiny epochs on one thread with a fixed seed; the per-step training
losses and the checkpoint's keys must equal the recorded ones. A refactor that changes what a
method computes, or what its checkpoint holds (old checkpoints would stop loading), fails here.

Regenerate only for an intended change of behaviour, and say so in the commit:
``CLINFONCE_UPDATE_GOLDEN=1 pytest tests/training/test_training_golden.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from clinfonce.training import config_from_dict, train

GOLDEN_FILE = Path(__file__).with_name("golden_methods.json")
UPDATE = os.environ.get("CLINFONCE_UPDATE_GOLDEN") == "1"

BASE: dict[str, Any] = {
    "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 80, "image_size": 12}},
    "model": {"head_hidden": 32, "head_out": 16},
    "baseline": {"attribute_hidden": 8},
    "optim": {"lr": 0.05},
    "train": {"epochs": 2, "batch_size": 16, "progress_bar": False, "log_every_n_steps": 1},
    "monitor": {"enabled": False},
}
ATTRIBUTES = {"builder": "attributes", "params": {"columns": ["maker", "tier"]}}

#: Every method with the sections it needs on top of BASE.
METHOD_SECTIONS: dict[str, dict[str, Any]] = {
    "simclr": {},
    "supcon": {},
    "clinfonce": {"clusters": ATTRIBUTES},
    "clinfonce-plus-simclr": {"clusters": ATTRIBUTES},
    "clinfonce-two-head": {"clusters": ATTRIBUTES},
    "auto": {"clusters": ATTRIBUTES},
    "kmeans-clinfonce": {
        "method": {"name": "kmeans-clinfonce", "warmup_epochs": 1},
        "kmeans": {"n_clusters": [3, 5], "restarts": 2},
    },
    "ce-clusters": {"clusters": ATTRIBUTES},
    "attribute-prediction": {"clusters": ATTRIBUTES},
    "cmc-attributes": {"clusters": ATTRIBUTES},
}


class StepLosses(L.Callback):
    """Collects the training loss of every optimisation step."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss.detach()))


@pytest.fixture
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_method(method: str, out: Path) -> dict[str, Any]:
    sections = METHOD_SECTIONS[method]
    values = {
        **BASE,
        "method": {"name": method},
        **sections,
        "output": {"dir": str(out), "name": method},
    }
    steps = StepLosses()
    result = train(config_from_dict(values), callbacks=[steps])
    saved = torch.load(result.last_checkpoint, weights_only=False, map_location="cpu")
    return {
        "losses": steps.losses,
        "checkpoint_keys": sorted(saved),
        "state_dict_keys": sorted(saved["state_dict"]),
    }


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(METHOD_SECTIONS))
def test_method_matches_golden(method: str, tmp_path: Path, one_thread: None) -> None:
    got = run_method(method, tmp_path)
    golden: dict[str, Any] = json.loads(GOLDEN_FILE.read_text()) if GOLDEN_FILE.exists() else {}
    if UPDATE:
        golden[method] = got
        GOLDEN_FILE.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        return
    assert method in golden, f"no golden entry for {method}; see the module docstring"
    want = golden[method]
    assert got["checkpoint_keys"] == want["checkpoint_keys"]
    assert got["state_dict_keys"] == want["state_dict_keys"]
    assert len(got["losses"]) == len(want["losses"]) == 6  # 2 epochs x 3 steps
    torch.testing.assert_close(
        torch.tensor(got["losses"], dtype=torch.float64),
        torch.tensor(want["losses"], dtype=torch.float64),
        rtol=0,
        atol=1e-6,
    )
