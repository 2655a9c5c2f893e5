"""The whole training step (augmentation, encoder, heads, objective) is one compiled graph.

``torch.compile(fullgraph=True)`` fails on anything that would split the graph: a transfer
to the host (``.item()``, ``bool(tensor)``), a shape that depends on values
(``torch.unique``, ``nonzero``), a generator argument. Compiling the step whole is therefore
also the proof, on a CPU, that a training step never waits for the device.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from clinfonce.training import config_from_dict, objective_terms
from clinfonce.training.base import EncoderModule
from clinfonce.training.methods.registry import find_method

IMAGE, SAMPLES, VIEWS = 12, 8, 2
IDS = torch.tensor([3, 3, 0, 7, 7, 7, 0, 1])


def _module(method: str, channels: int) -> EncoderModule:
    torch.manual_seed(0)
    values: dict[str, Any] = {
        "method": {"name": method},
        "model": {"head_hidden": 16, "head_out": 8},
        "clusters": {"builder": "attributes", "params": {"columns": ["a"]}},
        "data": {"label_column": "label"},
    }
    config = config_from_dict(values)
    hparams: dict[str, Any] = {
        "in_channels": channels,
        "image_size": IMAGE,
        "mean": [0.5] * channels,
        "std": [0.25] * channels,
    }
    if method == "ce-clusters":
        hparams["num_clusters"] = 8
    spec = find_method(method)
    module = spec.rebuild(config, objective_terms(config), hparams)
    if method == "ce-clusters":
        module.set_cluster_ids(IDS)  # type: ignore[operator]
    else:
        module.set_assignment("cluster", IDS)  # type: ignore[operator]
    return module.train()


def _batch(module: EncoderModule, channels: int, files: bool) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    shape = (SAMPLES, VIEWS, channels, IMAGE, IMAGE) if files else (SAMPLES, channels, 16, 16)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
    rows = SAMPLES * VIEWS
    draws = module.augment.draw(rows, channels, not files, torch.Generator().manual_seed(2))
    return {
        "image": images,
        "draws": draws,
        "index": torch.arange(SAMPLES),
        "label": torch.tensor([0, 1, 0, 1, 2, 2, 1, 0]),
    }


def _loss_and_gradients(step: Any, module: EncoderModule, batch: Any) -> list[torch.Tensor]:
    module.zero_grad()
    loss, _ = step(batch)
    loss.backward()
    return [loss.detach()] + [p.grad.clone() for p in module.parameters() if p.grad is not None]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "channels", "files", "backend"),
    [
        ("clinfonce-plus-simclr", 3, False, "inductor"),
        ("supcon", 1, True, "inductor"),
        # Graph capture only (inductor's C++ build takes a minute a case on 2 cores):
        ("clinfonce", 3, True, "aot_eager"),
        ("ce-clusters", 3, False, "aot_eager"),
    ],
)
def test_the_training_step_compiles_as_one_graph(
    method: str, channels: int, files: bool, backend: str
) -> None:
    module = _module(method, channels)
    batch = _batch(module, channels, files)
    eager = _loss_and_gradients(module.step, module, batch)
    torch._dynamo.reset()
    step = torch.compile(module.step, fullgraph=True, backend=backend)
    compiled = _loss_and_gradients(step, module, batch)
    assert len(compiled) == len(eager) > 1
    for got, want in zip(compiled, eager, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_model_compile_option_compiles_the_step() -> None:
    config = config_from_dict({"method": {"name": "simclr"}, "model": {"compile": True}})
    module = find_method("simclr").rebuild(
        config,
        objective_terms(config),
        {"in_channels": 1, "image_size": IMAGE, "mean": [0.5], "std": [0.25]},
    )
    assert module.compiled_step is not module.step
    assert getattr(module.compiled_step, "_torchdynamo_orig_callable", None) == module.step


def test_views_are_made_without_autocast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lightning runs the step under autocast with ``bf16-mixed``: the augmentation inside it
    still makes float32 views, the same as without autocast."""
    module = _module("simclr", 3)
    batch = _batch(module, 3, files=False)
    seen: list[torch.Tensor] = []
    monkeypatch.setattr(module, "compute_loss", lambda b: (seen.append(b["image"]), ({}))[1])
    module.step(batch)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        module.step(batch)
    assert seen[1].dtype == torch.float32
    torch.testing.assert_close(seen[1], seen[0], rtol=0, atol=0)
