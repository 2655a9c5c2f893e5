"""The one error style of every command: one line, --debug for the traceback, one-line
warnings, 128 + signal after a graceful stop (bad inputs case by case: tests/faults)."""

from __future__ import annotations

import argparse
import signal
import warnings
from pathlib import Path

import pytest

from clinfonce.cli import describe_error, main, one_line_warnings
from clinfonce.training.checkpointing import TrainingInterrupted


def test_an_error_is_one_line_and_debug_shows_the_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1\n")
    assert main(["train", "--config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"clinfonce train: error: {bad}, line 2 column 1: invalid YAML")
    assert err.count("\n") == 1
    for argv in (
        ["--debug", "train", "--config", str(bad)],
        ["train", "--config", str(bad), "--debug"],
    ):
        with pytest.raises(ValueError, match="invalid YAML"):
            main(argv)
    with pytest.raises(ValueError, match="invalid YAML"):  # after a sub-sub-command too
        main(["clusters", "build", "--config", str(bad), "--debug"])


def test_os_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "a-folder.yaml"
    folder.mkdir()
    assert main(["experiment", "--config", str(folder)]) == 1
    assert capsys.readouterr().err.count("\n") == 1
    error = PermissionError(13, "Permission denied", "out.csv")
    assert describe_error(error) == "out.csv: permission denied"
    assert describe_error(KeyError("x")) == "'x'"
    assert describe_error(ValueError("")) == "ValueError"


def test_warnings_print_as_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with one_line_warnings("clinfonce train"), warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("batch of one", UserWarning, stacklevel=1)
    assert capsys.readouterr().err == "clinfonce train: warning: batch of one\n"


def test_a_graceful_stop_exits_with_128_plus_the_signal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from clinfonce.cli import train as train_cli

    def stopped(args: argparse.Namespace) -> int:
        raise TrainingInterrupted(signal.SIGTERM, tmp_path, 3)

    monkeypatch.setattr(train_cli, "run", stopped)
    assert main(["train", "--config", "x.yaml"]) == 143
    assert capsys.readouterr().err == (
        f"clinfonce train: stopped by SIGTERM at step 3; checkpoint saved, continue with "
        f"`clinfonce train --resume {tmp_path}`\n"
    )
