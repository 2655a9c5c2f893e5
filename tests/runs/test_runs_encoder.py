"""The embedding API of a finished run, ``clinfonce embed --table`` and the exports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import clinfonce
from clinfonce.cli import main
from clinfonce.data.augment import eval_transform
from clinfonce.data.images import decode_resized, open_image
from clinfonce.runs.export import export_encoder
from clinfonce.runs.load import load_run
from clinfonce.training import config_from_dict, train

SIZE = 12
TINY = {
    "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 40, "image_size": SIZE}},
    "method": {"name": "simclr"},
    "model": {"head_hidden": 16, "head_out": 8},
    "train": {"epochs": 1, "batch_size": 16, "progress_bar": False},
    "monitor": {"enabled": False},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    return train(config_from_dict({**TINY, "output": {"dir": str(out), "name": "tiny"}})).run_dir


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A table of five photos of other sizes (one grayscale), in a sub-folder."""
    folder = tmp_path_factory.mktemp("photos")
    (folder / "img").mkdir()
    rng = np.random.default_rng(0)
    names = []
    for i in range(5):
        pixels = rng.integers(0, 256, (20 + i, 16, 3), dtype=np.uint8)
        image = Image.fromarray(pixels).convert("L") if i == 2 else Image.fromarray(pixels)
        names.append(f"img/p{i}.png")
        image.save(folder / names[-1])
    pd.DataFrame({"path": names, "id": [f"p{i}" for i in range(5)]}).to_csv(
        folder / "photos.csv", index=False
    )
    return folder / "photos.csv"


def test_embed_images_files_and_tables_alike(run_dir: Path, photos: Path) -> None:
    encoder = clinfonce.load_encoder(run_dir)
    module = load_run(run_dir).module
    images = torch.randint(0, 256, (4, 3, SIZE, SIZE), dtype=torch.uint8)
    expected = module.embed(images).numpy()
    np.testing.assert_allclose(encoder.embed(images), expected, rtol=1e-5, atol=1e-6)
    channels_last = images.permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(encoder.embed(channels_last), expected, rtol=1e-5, atol=1e-6)
    files = [photos.parent / f"img/p{i}.png" for i in range(5)]
    by_files = encoder.embed(files)
    assert by_files.shape == (5, encoder.dim) and by_files.dtype == np.float32
    decoded = torch.stack([decode_resized(f, 3, SIZE) for f in files])  # the run's decoding
    np.testing.assert_allclose(by_files, module.embed(decoded).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(encoder.embed(photos), by_files, rtol=1e-5, atol=1e-6)
    frame = pd.read_csv(photos)
    by_frame = encoder.embed(frame, image_root=photos.parent)
    np.testing.assert_allclose(by_frame, by_files, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="images have 2 channels, the encoder takes 3"):
        encoder.embed(np.zeros((1, 2, 8, 8), dtype=np.uint8))


def test_cli_embeds_a_new_table(run_dir: Path, photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb"
    args = ["embed", "--checkpoint", str(run_dir), "--table", str(photos), "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    embeddings = np.load(out / "embeddings.npy")
    index = pd.read_csv(out / "index.csv")
    assert list(index["id"]) == [f"p{i}" for i in range(5)]
    expected = clinfonce.load_encoder(run_dir).embed(photos)
    np.testing.assert_allclose(embeddings, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exports_round_trip(run_dir: Path, tmp_path: Path, fmt: str) -> None:
    run = load_run(run_dir)
    result = export_encoder(run, tmp_path / f"encoder.{fmt}", fmt)
    assert result.max_difference <= 1e-5
    images = torch.rand(5, 3, SIZE, SIZE)
    expected = run.module.embed(images)
    if fmt == "torchscript":
        got = torch.jit.load(str(result.path))(images)
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(result.path))
        got = torch.from_numpy(session.run(None, {"images": images.numpy()})[0])
    scale = max(1.0, float(expected.abs().max()))
    assert float((got - expected).abs().max()) <= 1e-5 * scale
    sidecar = json.loads(result.sidecar.read_text())
    assert sidecar["input"]["shape"] == ["batch", 3, SIZE, SIZE]


def test_cli_export_writes_beside_the_run_and_keeps_foreign_files(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(run_dir)]) == 0
    assert (run_dir / "export" / "encoder.pt").is_file()
    assert "differs from the run by at most" in capsys.readouterr().out
    foreign = tmp_path / "mine.pt"
    foreign.write_text("not ours")
    assert main(["export", str(run_dir), "--out", str(foreign)]) == 1
    assert foreign.read_text() == "not ours"
    assert main(["export", str(run_dir), "--out", str(foreign), "--force"]) == 0


def test_a_run_that_read_files_embeds_files_with_its_eval_view(
    photos: Path, tmp_path: Path
) -> None:
    options = {"table": str(photos), "missing": "error"}  # files read while training
    values = {
        **TINY,
        "data": {"dataset": "table", "options": options, "image_size": SIZE},
        "train": {**TINY["train"], "batch_size": 4},
        "output": {"dir": str(tmp_path), "name": "files"},
    }
    run_dir = train(config_from_dict(values)).run_dir
    encoder = clinfonce.load_encoder(run_dir)
    files = [photos.parent / f"img/p{i}.png" for i in range(5)]
    views = torch.stack([eval_transform(SIZE)(open_image(f, 3)) for f in files])
    expected = load_run(run_dir).module.embed(views).numpy()
    np.testing.assert_allclose(encoder.embed(files), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(encoder.embed(photos), expected, rtol=1e-5, atol=1e-6)
