"""Backbones in training: families that train and embed, weights from a run or a file, the
normalisation that follows the weights, and the fine-tuning settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from clinfonce.runs.load import load_module
from clinfonce.training import config_from_dict, train
from clinfonce.training.base import EncoderModule
from clinfonce.training.config import ExperimentConfig
from clinfonce.training.config.schema import ModelConfig
from clinfonce.training.weights import weights_normalisation

OPTIONS = {"n_samples": 48, "image_size": 32}
TINY: dict[str, Any] = {
    "data": {"dataset": "synthetic-attributes", "options": OPTIONS},
    "method": {"name": "simclr"},
    "model": {"head_hidden": 16, "head_out": 8},
    "train": {"epochs": 1, "batch_size": 16, "progress_bar": False},
    "monitor": {"enabled": False},
}


def tiny(tmp_path: Path, name: str, model: dict[str, Any], **train: Any) -> ExperimentConfig:
    return config_from_dict(
        {
            **TINY,
            "model": {**TINY["model"], **model},
            "train": {**TINY["train"], **train},
            "output": {"dir": str(tmp_path), "name": name},
        }
    )


@pytest.mark.parametrize(
    "encoder", ["resnet18", "mobilenet_v3_small", "timm:test_vit", "timm:test_convnext"]
)
def test_a_family_trains_two_steps_and_embeds(tmp_path: Path, encoder: str) -> None:
    result = train(tiny(tmp_path, "run", {"encoder": encoder}))
    assert result.module.global_step == 2
    module = load_module(result.last_checkpoint)
    features = module.embed(torch.randint(0, 256, (3, 3, 40, 40), dtype=torch.uint8))
    assert features.shape == (3, module.encoder.out_dim)
    assert torch.isfinite(features).all()


def encoder_state(module: EncoderModule) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.encoder.state_dict().items()}


def test_a_short_runs_checkpoint_seeds_a_new_run(tmp_path: Path) -> None:
    first = train(tiny(tmp_path, "simclr", {"encoder": "resnet18"}, seed=1))
    seeded: dict[str, Any] = {}

    class Initial(L.Callback):
        def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
            assert isinstance(module, EncoderModule)
            seeded.update(encoder=encoder_state(module), mean=module.mean.flatten().tolist())

    config = tiny(tmp_path, "adapted", {"encoder": "resnet18", "weights": str(first.run_dir)})
    second = train(config, callbacks=[Initial()])
    trained = encoder_state(first.module)
    assert seeded["encoder"].keys() == trained.keys()
    assert all(torch.equal(seeded["encoder"][k], trained[k].cpu()) for k in trained)
    # the run's own normalisation comes with its weights
    assert seeded["mean"] == pytest.approx(first.module.mean.flatten().tolist())
    assert second.module.global_step == 2
    # the new run's checkpoint opens without the first run
    (first.run_dir / "checkpoints" / "last.ckpt").unlink()
    module = load_module(second.last_checkpoint)
    assert module.cfg.model.weights == "none"


def test_imagenet_weights_bring_their_normalisation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchvision.models import resnet18

    from clinfonce.models import pretrained_file

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    target = pretrained_file("resnet18")
    target.parent.mkdir(parents=True)
    torch.manual_seed(5)
    torch.save(resnet18().state_dict(), target)
    result = train(tiny(tmp_path, "pretrained", {"encoder": "resnet18", "weights": "imagenet"}))
    assert result.module.mean.flatten().tolist() == pytest.approx([0.485, 0.456, 0.406])
    assert result.module.encoder.net.conv1.kernel_size == (7, 7)  # the stem the weights fit
    gray = weights_normalisation(ModelConfig(encoder="resnet18", weights="imagenet"), 1)
    assert gray is not None
    assert gray[0] == pytest.approx([(0.485 + 0.456 + 0.406) / 3])
    assert gray[1] == pytest.approx([(0.229 + 0.224 + 0.225) / 3])


def test_a_missing_weights_file_is_named(tmp_path: Path) -> None:
    config = tiny(tmp_path, "run", {"weights": str(tmp_path / "nothing.pt")})
    with pytest.raises(FileNotFoundError, match=r"model.weights: no file at .*nothing\.pt"):
        train(config)


def test_a_state_dict_of_another_encoder_is_refused_by_its_first_key(tmp_path: Path) -> None:
    from torchvision.models import resnet18

    path = tmp_path / "resnet18.pt"
    torch.save(resnet18().state_dict(), path)
    model = {"encoder": "resnet34", "weights": str(path), "small_stem": False}
    config = tiny(tmp_path, "run", model)
    with pytest.raises(ValueError, match=r"resnet18.pt: no weight for net\.layer1\.2\.conv1"):
        train(config)


class EncoderAtEpochEnd(L.Callback):
    """The encoder's and the head's weights at the end of every epoch."""

    def __init__(self) -> None:
        self.states: list[tuple[dict[str, torch.Tensor], torch.Tensor]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        assert isinstance(module, EncoderModule)
        head = next(module.heads.parameters()).detach().clone()  # type: ignore[union-attr]
        self.states.append((encoder_state(module), head))


def test_frozen_backbone_epochs_train_only_the_heads(tmp_path: Path) -> None:
    seen = EncoderAtEpochEnd()
    model = {"encoder": "resnet18", "frozen_backbone_epochs": 1}
    result = train(tiny(tmp_path, "frozen", model, epochs=2), callbacks=[seen])
    first, second = seen.states
    start = _initial_encoder(tmp_path)
    assert all(torch.equal(first[0][k], start[k]) for k in start)  # BN statistics too
    assert not all(torch.equal(second[0][k], start[k]) for k in start)
    assert result.module.encoder.net.conv1.weight.requires_grad


def _initial_encoder(tmp_path: Path) -> dict[str, torch.Tensor]:
    from clinfonce.training.build import untrained_encoder

    return encoder_state(untrained_encoder(tiny(tmp_path, "x", {"encoder": "resnet18"})))


def test_backbone_lr_scale_zero_keeps_the_encoder_weights(tmp_path: Path) -> None:
    model = {"encoder": "resnet18", "backbone_lr_scale": 0.0}
    result = train(tiny(tmp_path, "scaled", model, seed=0))
    start = _initial_encoder(tmp_path)
    after = encoder_state(result.module)
    weights = [k for k in start if k.endswith("weight")]
    assert all(torch.equal(after[k], start[k]) for k in weights)
    groups = result.module.trainer.optimizers[0].param_groups
    assert [g["lr"] > 0 for g in groups] == [True, False]  # heads, then the encoder


def test_a_checkpoint_from_before_backbones_loads_and_resumes(tmp_path: Path) -> None:
    result = train(tiny(tmp_path, "old", {"encoder": "resnet18", "small_stem": True}))
    checkpoint = torch.load(result.last_checkpoint, weights_only=True)
    model = checkpoint["hyper_parameters"]["config"]["model"]
    for key in ("weights", "backbone_lr_scale", "frozen_backbone_epochs"):
        del model[key]  # the model section as runs before model.weights stored it
    torch.save(checkpoint, result.last_checkpoint)
    module = load_module(result.last_checkpoint)
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(module.embed(images), result.module.cpu().eval().embed(images))
    more = tiny(tmp_path, "old", {"encoder": "resnet18", "small_stem": True}, epochs=2)
    assert train(more, resume=result.run_dir).module.global_step == 4
