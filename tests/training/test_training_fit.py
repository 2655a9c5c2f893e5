"""Two-epoch fits on tiny generated data: finite loss, run directory, exact resume."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import pytest
import torch

from clinfonce.training import config_from_dict, load_run_config, train

TINY = {
    "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 80, "image_size": 12}},
    "clusters": {"builder": "attributes", "params": {"columns": ["maker"]}},
    "model": {"head_hidden": 32, "head_out": 16},
    "optim": {"lr": 0.05},
    "train": {"epochs": 2, "batch_size": 16, "progress_bar": False, "log_every_n_steps": 1},
    "monitor": {"max_bank": 40, "max_queries": 16},
}


def tiny_config(method: str, out: Path, name: str) -> Any:
    values = {**TINY, "method": {"name": method}, "output": {"dir": str(out), "name": name}}
    if method != "clinfonce":
        values.pop("clusters")
    return config_from_dict(values)


class StopAfterFirstEpoch(L.Callback):
    """Interrupt a run after epoch 0 (its last.ckpt is already written)."""

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 0:
            trainer.should_stop = True


def checkpoint(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = torch.load(path, weights_only=False, map_location="cpu")
    return loaded


@pytest.mark.parametrize("method", ["simclr", "supcon", "clinfonce"])
def test_fit_and_exact_resume(tmp_path: Path, method: str) -> None:
    full = train(tiny_config(method, tmp_path, "full"))
    run = full.run_dir
    assert math.isfinite(full.metrics["train/loss"])
    assert 0.0 <= full.metrics["monitor/knn_top1"] <= 1.0
    for name in ("config.yaml", "summary.json", "checkpoints/last.ckpt", "checkpoints/best.ckpt"):
        assert (run / name).is_file(), name
    assert (run / "logs" / "tensorboard").is_dir()
    log = pd.read_csv(next((run / "logs" / "csv").glob("version_*/metrics.csv")))
    assert log["train/loss"].dropna().map(math.isfinite).all()
    assert (run / "clusters.csv").is_file() == (method == "clinfonce")
    assert load_run_config(run) == tiny_config(method, tmp_path, "full")

    steps_per_epoch = 64 // 16  # 80 samples, about 20% in the test split
    interrupted = train(tiny_config(method, tmp_path, "cut"), callbacks=[StopAfterFirstEpoch()])
    first = checkpoint(interrupted.last_checkpoint)
    assert first["epoch"] == 1 and 0 < first["global_step"] <= steps_per_epoch
    resumed = train(tiny_config(method, tmp_path, "cut"), resume=interrupted.run_dir)
    a, b = checkpoint(full.last_checkpoint), checkpoint(resumed.last_checkpoint)
    assert b["global_step"] == a["global_step"] == 2 * first["global_step"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=1e-6, msg=key)
    assert len(list((resumed.run_dir / "logs" / "csv").glob("version_*"))) == 2


def test_existing_run_needs_resume_or_overwrite(tmp_path: Path) -> None:
    cfg = tiny_config("simclr", tmp_path, "once")
    cfg.train.epochs = 1
    train(cfg)
    with pytest.raises(ValueError, match="--resume"):
        train(cfg)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(cfg, resume=tmp_path / "missing")


def test_batch_larger_than_data_is_an_error(tmp_path: Path) -> None:
    cfg = tiny_config("simclr", tmp_path, "big")
    cfg.train.batch_size = 1000
    with pytest.raises(ValueError, match=r"train\.batch_size=1000 exceeds"):
        train(cfg)


@pytest.mark.parametrize("prepare", [False, "auto"])
def test_fit_from_image_files(tmp_path: Path, prepare: bool | str) -> None:
    """The file path: per-sample torchvision views in the loader (streamed) or a prepared
    array augmented on the device, eval views for the monitor, clusters joined from a
    stage-1 assignment file."""
    import numpy as np
    from PIL import Image

    from clinfonce.clusters import write_assignment

    rng = np.random.default_rng(0)
    (tmp_path / "img").mkdir()
    rows = []
    for i in range(24):
        name = f"{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (20, 16, 3), dtype=np.uint8)).save(
            tmp_path / "img" / name
        )
        rows.append({"path": name, "label": i % 2, "split": "test" if i >= 20 else "train"})
    pd.DataFrame(rows).to_csv(tmp_path / "meta.csv", index=False)
    write_assignment(
        tmp_path / "clusters.csv",
        [f"{i:02d}.png" for i in range(20)],
        [i % 4 for i in range(20)],
        {},
    )
    cfg = config_from_dict(
        {
            "data": {
                "dataset": "table",
                "options": {
                    "table": str(tmp_path / "meta.csv"),
                    "image_root": str(tmp_path / "img"),
                    "prepare": prepare,
                },
                "image_size": 12,
            },
            "clusters": {"assignment": str(tmp_path / "clusters.csv")},
            "model": {"head_hidden": 16, "head_out": 8},
            "train": {"epochs": 1, "batch_size": 8, "progress_bar": False},
            "output": {"dir": str(tmp_path / "runs"), "name": "files"},
        }
    )
    result = train(cfg)
    assert math.isfinite(result.metrics["train/loss"]) and "monitor/knn_top1" in result.metrics
    assert (result.run_dir / "clusters.csv").read_text() == (tmp_path / "clusters.csv").read_text()
    assert result.module.embed(torch.zeros(2, 3, 20, 16, dtype=torch.uint8)).shape == (2, 128)
    assert result.data.source.in_memory == bool(prepare)
    assert (tmp_path / ".clinfonce-prepared" / "meta-12px-rgb").is_dir() == bool(prepare)


def test_progress_is_a_line_per_epoch_without_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_config("simclr", tmp_path, "lines")
    config.train.progress_bar = True  # pytest captures stderr: not a terminal
    train(config)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "train/loss" in lines[0] and "monitor/knn_top1" in lines[0] and "s left)" in lines[0]


def test_loader_workers_auto_decodes_files_on_every_usable_core(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from clinfonce.training import loaders
    from clinfonce.training.config import TrainConfig

    monkeypatch.setattr(loaders, "usable_cores", lambda: 8)
    assert loaders.loader_workers(TrainConfig(), in_memory=False) == 8
    assert loaders.loader_workers(TrainConfig(devices=4), in_memory=False) == 2
    assert loaders.loader_workers(TrainConfig(), in_memory=True) == 0
    assert loaders.loader_workers(TrainConfig(num_workers=0), in_memory=False) == 0
