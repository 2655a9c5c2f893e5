"""Golden numbers: a few steps of every method, pinned before any refactor.

Each method trains two tiny epochs on one thread with a fixed seed; the per-step training
losses and the checkpoint's keys must equal the recorded ones. A refactor that changes what a
method computes, or what its checkpoint holds (old checkpoints would stop loading), fails here.

The runs are in float64 (``train.precision: 64-true``; the augmentation follows the model's
dtype), so the numbers do not depend on the CPU: float32 runs differed by up to 2e-3 between
two EPYCs (with and without AVX512-BF16; K-means assignments flip). Measured spread of these
float64 losses on one machine: 8e-15 between 1 and 2 threads, 2e-16 between ATen's AVX2 and
AVX-512 kernels (``ATEN_CPU_CAPABILITY``), 0 with oneDNN limited to AVX2
(``ONEDNN_MAX_CPU_ISA``) or faiss's generic/AVX2 builds (``FAISS_OPT_LEVEL``). Only a build
without any SIMD (``ATEN_CPU_CAPABILITY=default``, no machine of ours) moves them, by 7e-7:
its scalar ``uniform_`` draws other initial weights. :data:`TOLERANCE` sits five orders of
magnitude above the spread and below what a one-line change does
(:func:`test_golden_catches_a_changed_loss_or_augmentation`).

Regenerate only for an intended change of behaviour, and say so in the commit:
``CLINFONCE_UPDATE_GOLDEN=1 pytest tests/training/test_training_golden.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from clinfonce.data import augment
from clinfonce.losses import cl_infonce
from clinfonce.training import config_from_dict, train

GOLDEN_FILE = Path(__file__).with_name("golden_methods.json")
UPDATE = os.environ.get("CLINFONCE_UPDATE_GOLDEN") == "1"
#: Absolute tolerance on a float64 loss (see the module docstring).
TOLERANCE = 1e-9

BASE: dict[str, Any] = {
    "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 80, "image_size": 12}},
    "model": {"head_hidden": 32, "head_out": 16},
    "baseline": {"attribute_hidden": 8},
    "optim": {"lr": 0.05},
    "train": {
        "epochs": 2,
        "batch_size": 16,
        "progress_bar": False,
        "log_every_n_steps": 1,
        "precision": "64-true",
    },
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


def run_method(method: str, out: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Train ``method``'s golden run (plus ``key=value`` overrides, e.g. another device, as
    ``benchmarks/gpu_check.py`` does) and return its losses and checkpoint keys."""
    sections = METHOD_SECTIONS[method]
    values = {
        **BASE,
        "method": {"name": method},
        **sections,
        "output": {"dir": str(out), "name": method},
    }
    steps = StepLosses()
    result = train(config_from_dict(values, overrides), callbacks=[steps])
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
    assert_losses_match(got["losses"], want["losses"])


def assert_losses_match(got: list[float], want: list[float]) -> None:
    torch.testing.assert_close(
        torch.tensor(got, dtype=torch.float64),
        torch.tensor(want, dtype=torch.float64),
        rtol=0,
        atol=TOLERANCE,
    )


def _slightly_sharper_denominator(monkeypatch: pytest.MonkeyPatch) -> None:
    """The loss's temperature off by one part in a million, in its denominator only."""
    original = cl_infonce.masked_logsumexp

    def changed(anchors: Any, keys: Any, scale: float, *args: Any) -> Any:
        return original(anchors, keys, scale * (1 + 1e-6), *args)

    monkeypatch.setattr(cl_infonce, "masked_logsumexp", changed)


def _other_luma_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """The contrast jitter's grey level with its blue weight 0.114 -> 0.1141."""
    monkeypatch.setattr(augment, "_LUMA", (0.299, 0.587, 0.1141))


@pytest.mark.slow
@pytest.mark.parametrize("change", [_slightly_sharper_denominator, _other_luma_weights])
def test_golden_catches_a_changed_loss_or_augmentation(
    change: Any, tmp_path: Path, one_thread: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tolerance is tight enough: a one-line change of the loss or of the augmentation
    moves SimCLR's losses out of it."""
    change(monkeypatch)
    got = run_method("simclr", tmp_path)
    want = json.loads(GOLDEN_FILE.read_text())["simclr"]
    with pytest.raises(AssertionError, match="not close"):
        assert_losses_match(got["losses"], want["losses"])
