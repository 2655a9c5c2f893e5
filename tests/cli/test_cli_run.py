"""``clinfonce run`` end to end on an image folder and CSV the test writes itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from clinfonce.cli import main

ROWS = 48
TRAIN = 36


@pytest.fixture()
def image_table(tmp_path: Path) -> Path:
    """48 rows of 16 px images: PNG and JPEG, one grayscale file among RGB ones, one file
    listed but missing; an informative ``group`` and a label-independent ``collector``."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "data"
    (folder / "img").mkdir(parents=True)
    rows = []
    for i in range(ROWS):
        label = i % 4
        pixels = rng.integers(0, 60, (16, 16, 3), dtype=np.uint8)
        pixels[:, :, label % 3] += 150  # the label shows as the dominant colour
        name = f"img/{i:02d}.{'jpg' if i % 5 == 0 else 'png'}"
        image = Image.fromarray(pixels)
        if i == 7:
            image = image.convert("L")
        if i != 11:  # row 11's file is missing
            image.save(folder / name)
        rows.append(
            {
                "path": name,
                "label": f"class{label}",
                "split": "train" if i < TRAIN else "test",
                "group": "warm" if label < 2 else "cold",
                "collector": ["ann", "bob", "cy"][int(rng.integers(0, 3))],
            }
        )
    path = folder / "meta.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_run_trains_embeds_evaluates_and_reports(
    image_table: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "runs" / "mine"
    args = ["run", str(image_table), "--aux", "group", "--epochs", "1", "--batch-size", "16"]
    assert main([*args, "--compare", "simclr", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "rows: 47 kept, 1 dropped (1 missing file(s))" in printed.out
    assert "median side 16 px" in printed.out
    assert "colour, 3 channels; in memory: 47 decoded images of 16 px" in printed.out
    assert "clusters: joint value of group; K = 2, I(Z;T)/H(T) = 0.4" in printed.out
    assert "labelled training rows, bias-corrected" in printed.out
    assert "GPU available" not in printed.out + printed.err
    assert "\r" not in printed.err  # no progress-bar redraws outside a terminal
    embeddings = np.load(out / "embeddings.npy")
    index = pd.read_csv(out / "index.csv")
    assert embeddings.shape[0] == len(index) == ROWS - 1
    assert "img/11.png" not in set(index["id"])
    assert index["id"].iloc[0] == "img/00.jpg"
    report = (out / "report.md").read_text()
    pieces = ("untrained encoder", "| simclr |", "accuracy.png", "training-curves.png")
    for piece in (*pieces, "Chance level of every term: ln(2 x 16 - 1) = 3.43"):
        assert piece in report
    for plot in ("accuracy.png", "training-curves.png", "cluster-sizes.png", "tsne-last.png"):
        assert (out / plot).stat().st_size > 1000
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["data"]["options"]["table"] == str(image_table)
    assert config["method"]["name"] == "clinfonce-plus-simclr"
    # The saved config works from any folder.
    monkeypatch.chdir(tmp_path / "runs")
    assert main(["train", "--config", str(out / "config.yaml"), "--print-config"]) == 0
    assert json.loads((out / "embeddings.json").read_text())["count"] == ROWS - 1


def test_run_aux_auto_picks_the_informative_column(
    image_table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Also: images over the memory budget are prepared once into an array on disk."""
    out = tmp_path / "auto"
    args = ["run", str(image_table), "--aux", "auto", "--epochs", "1", "--batch-size", "16"]
    budget = ["--memory-budget", "0.001"]
    assert main([*args, *budget, "--out", str(out), "monitor.enabled=false"]) == 0
    printed = capsys.readouterr().out
    assert "prepared on disk: 47 decoded images of 16 px" in printed
    assert list((image_table.parent / ".clinfonce-prepared").glob("meta-16px-rgb/images.npy"))
    assert "clusters: group, --aux auto's pick of 3 candidates; K = 2" in printed
    assert "why: group: I(Z;T)/H(T) = " in printed
    report = (out / "report.md").read_text()
    assert report.index("| group |") < report.index("| collector |")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "no auxiliary information given: pass --aux COL[,COL...] (or --aux auto)"),
        (
            ["--aux", "group", "--kmeans", "5"],
            "give one source of clusters, not --aux and --kmeans",
        ),
        (["--hierarchy", "tree.csv"], "--hierarchy needs --level L"),
        (["--aux", "group", "--label-column", "nope"], "--label-column nope: no such column"),
        (["--aux", "group", "--compare", "byol"], "--compare byol: not a method to compare"),
        (["--aux", "group", "data.options.bogus=1"], "unknown option(s) bogus for dataset"),
    ],
)
def test_run_bad_input_messages(
    image_table: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(image_table), *extra]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert err.startswith("clinfonce run: error: ")


def test_run_without_image_paths_says_which_column_to_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "meta.csv"
    pd.DataFrame({"file": ["a.png", "b.png"], "group": [0, 1]}).to_csv(table, index=False)
    assert main(["run", str(table), "--aux", "group"]) == 1
    assert f"no column holds paths of existing files under {tmp_path}" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "absent.csv"), "--aux", "group"]) == 1
    assert "table " in capsys.readouterr().err
