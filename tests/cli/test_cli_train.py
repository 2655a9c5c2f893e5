"""``clinfonce train`` from the command line on tiny generated data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clinfonce.cli import main

TINY = {
    "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 60, "image_size": 12}},
    "clusters": {"builder": "attributes", "params": {"columns": ["maker", "material"]}},
    "model": {"head_hidden": 16, "head_out": 8},
    "train": {"epochs": 1, "batch_size": 16, "progress_bar": False},
    "monitor": {"max_bank": 20, "max_queries": 10},
}


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "output": {"dir": str(tmp_path / "runs")}}))
    return path


def test_train_cli_smoke_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["train", "--config", str(config), "method.temperature=0.2"]) == 0
    out = capsys.readouterr().out
    run = tmp_path / "runs" / "tiny"
    assert f"run directory: {run}" in out and "train/loss" in out
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["method"]["temperature"] == 0.2 and saved["output"]["name"] == "tiny"
    assert (run / "clusters.csv").is_file() and (run / "clusters.csv.json").is_file()
    # continue the same run for one more epoch, config taken from the run directory
    assert main(["train", "--resume", str(run), "train.epochs=2"]) == 0
    assert "run directory" in capsys.readouterr().out


def test_train_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["train", "--config", str(config), "optim.lrate=1"]) == 1
    err = capsys.readouterr().err
    assert "unknown config key 'optim.lrate'" in err and "valid keys: name, lr" in err
    assert main(["train"]) == 1
    assert "give --config" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "nope.yaml")]) == 1


def test_print_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["train", "--config", str(config), "train.epochs=7", "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["train"]["epochs"] == 7


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data.dataset=table", "data.options.table=meta.csv", "data.options.bogus=1"],
            "unknown option(s) bogus for dataset 'table' (data.options); valid options: table, "
            "image_root, path_column",
        ),
        (
            ["data.dataset=table", "data.options.image_root=img"],
            "dataset 'table' needs data.options.table (e.g. data.options.table=...)",
        ),
        (["data.dataset=tabel"], "unknown dataset 'tabel' (data.dataset); valid datasets:"),
    ],
)
def test_data_options_are_checked_at_print_config(
    tmp_path: Path, overrides: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("train: {epochs: 1}\n")
    assert main(["train", "--config", str(config), *overrides, "--print-config"]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_lightning_hardware_lines_and_tips_are_dropped() -> None:
    import logging

    import clinfonce.training.progress  # noqa: F401  (installs the filter)

    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")

    def shown(message: str) -> bool:
        return logger.filter(logger.makeRecord(logger.name, logging.INFO, "", 0, message, (), None))

    assert not shown("GPU available: False, used: False")
    assert not shown("\N{ELECTRIC LIGHT BULB} Tip: For seamless cloud logging ...")
    assert shown("GPU available but not used. You can set it by doing ...")


def test_overrides_alone_need_no_config_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "train.epochs=3", "method.name=simclr", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert (printed["train"]["epochs"], printed["method"]["name"]) == (3, "simclr")


def test_an_unknown_encoder_is_refused_at_print_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "model.encoder=vit_small_patch16_224", "--print-config"]) == 1
    err = capsys.readouterr().err
    assert (
        "unknown model.encoder 'vit_small_patch16_224'; closest: timm:vit_small_patch16_224" in err
    )
    assert main(["train", "model.encoder=timm:vit_small_patch16_224", "--print-config"]) == 0
