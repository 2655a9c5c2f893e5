"""The backbone ``clinfonce run`` picks from the image size and the device, and says why."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from clinfonce.experiments.table_backbone import choose_backbone
from clinfonce.experiments.table_plan import TableRunOptions, plan_table_run


@pytest.mark.parametrize(
    ("side", "gpu", "encoder", "weights"),
    [
        (28, False, "small-cnn", "none"),
        (64, False, "small-cnn", "none"),
        (96, False, "resnet18", "imagenet"),
        (28, True, "resnet50", "imagenet"),
        (224, True, "resnet50", "imagenet"),
    ],
)
def test_chosen_from_the_image_side_and_the_device(
    side: int, gpu: bool, encoder: str, weights: str
) -> None:
    choice = choose_backbone(side, gpu=gpu)
    assert (choice.encoder, choice.weights) == (encoder, weights)
    assert choice.reason.startswith(f"{side} px images on a {'GPU' if gpu else 'CPU'}: ")
    scale = choice.model_values().get("backbone_lr_scale", 1.0)
    assert scale == (0.1 if weights == "imagenet" else 1.0)


def test_given_choices_win_and_say_so() -> None:
    assert choose_backbone(96, gpu=False, encoder="small-cnn").weights == "none"
    assert choose_backbone(96, gpu=False, encoder="convnext_tiny").weights == "imagenet"
    assert choose_backbone(28, gpu=False, encoder="resnet18").weights == "none"
    pretrained = choose_backbone(28, gpu=False, weights="imagenet")
    assert (pretrained.encoder, pretrained.weights) == ("resnet18", "imagenet")
    assert pretrained.reason.endswith("(as given (--weights))")
    overridden = choose_backbone(96, gpu=False, overrides=["model.encoder=small-cnn"])
    assert (overridden.encoder, overridden.weights) == ("small-cnn", "none")


def test_the_start_summary_names_the_backbone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(20):
        Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
        rows.append({"path": f"{i}.png", "group": f"g{i % 2}"})
    table = tmp_path / "meta.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    lines: list[str] = []
    plan = plan_table_run(TableRunOptions(str(table), aux=["group"]), log=lines.append)
    assert (
        "backbone: small-cnn, weights none: 20 px images on a CPU: the small CNN trains fast "
        "from scratch (--encoder/--weights to choose)"
    ) in lines
    given = TableRunOptions(str(table), aux=["group"], encoder="resnet18")
    plan = plan_table_run(given, log=lines.append)
    assert (plan.config.model.encoder, plan.config.model.weights) == ("resnet18", "none")


def test_offline_without_cached_weights_falls_back_to_the_small_cnn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import clinfonce.experiments.table_backbone as table_backbone

    def offline(name: str) -> None:
        raise OSError(f"could not get the pretrained weights of {name}; download X as Y")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(table_backbone, "fetch_pretrained", offline)
    choice = table_backbone.backbone_for_table(96, None, None, [])
    assert (choice.encoder, choice.weights) == ("small-cnn", "none")
    assert "download X as Y; the small CNN from scratch meanwhile" in choice.reason
    given = table_backbone.backbone_for_table(96, "resnet18", None, [])
    assert (given.encoder, given.weights) == ("resnet18", "imagenet")  # the run will say why


def test_weights_of_a_run_bring_its_encoder(tmp_path: Path) -> None:
    from clinfonce.models import build_encoder

    checkpoint = tmp_path / "simclr.ckpt"
    state = {f"encoder.{k}": v for k, v in build_encoder("small-cnn").state_dict().items()}
    config = {"model": {"encoder": "small-cnn"}}
    torch.save({"state_dict": state, "hyper_parameters": {"config": config}}, checkpoint)
    run = choose_backbone(96, gpu=False, weights=str(checkpoint))
    assert (run.encoder, run.weights) == ("small-cnn", str(checkpoint))
    assert run.reason.startswith(f"96 px images on a CPU: the encoder of {checkpoint}")
