"""``clinfonce prepare``: decode once, reuse on the next call, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clinfonce.cli import main


def write_table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (20, 14), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    pd.DataFrame({"path": [f"{i}.png" for i in range(5)]}).to_csv(tmp_path / "t.csv", index=False)
    return tmp_path / "t.csv"


def test_prepare_then_reuse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = write_table(tmp_path)
    args = ["prepare", str(table), "--size", "6", "--channels", "1", "--out", str(tmp_path / "p")]
    assert main(args) == 0
    folder = tmp_path / "p" / "t-6px-gray"
    assert capsys.readouterr().out == (
        f"prepared 5 images at 6 px in {folder}: 5 decoded, 0 reused, 0 unreadable\n"
    )
    assert np.load(folder / "images.npy").shape == (5, 1, 6, 6)
    assert main(args) == 0
    assert "0 decoded, 5 reused" in capsys.readouterr().out


def test_prepare_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = write_table(tmp_path)
    (tmp_path / "f").write_text("a file")
    assert main(["prepare", str(table), "--size", "6", "--out", str(tmp_path / "f" / "x")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("clinfonce prepare: error: cannot write the prepared images in ")
    assert err.count("\n") == 1
    assert main(["prepare", str(table), "--size", "0"]) == 1
    assert "--size must be a positive number of pixels, got 0" in capsys.readouterr().err
    assert main(["prepare", str(table), "--size", "6", "--workers", "0"]) == 1
    assert "--workers must be at least 1" in capsys.readouterr().err
