"""Sources: synthetic-attributes, arrays, image tables (incl. missing/unreadable files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from clinfonce.data import available_sources, load_source
from clinfonce.data.datasets import ContrastiveDataset, EpochShuffleSampler, ImageFiles
from clinfonce.data.synthetic import ATTRIBUTES, attribute_maps, make_synthetic_attributes


def entropy_bits(*columns: np.ndarray) -> float:
    _, counts = np.unique(np.stack(columns, 1), axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def test_registry_lists_builtins_and_rejects_unknown() -> None:
    assert {"fashion-mnist", "synthetic-attributes", "table", "arrays"} <= set(available_sources())
    with pytest.raises(ValueError, match="valid datasets"):
        load_source("imagenet-9000")
    with pytest.raises(ValueError, match=r"n_sample.*valid options: n_samples"):
        load_source("synthetic-attributes", n_sample=10)


def test_synthetic_attributes_information_is_partial_and_tunable() -> None:
    def info(noise: float) -> float:
        table = make_synthetic_attributes(4000, image_size=12, noise=noise, seed=3).table
        t = table["label"].to_numpy()
        z = pd.factorize(table[list(ATTRIBUTES)].astype(str).agg("|".join, axis=1))[0]
        return entropy_bits(z) + entropy_bits(t) - entropy_bits(z, t)

    h_t = np.log2(10)
    clean, noisy, random = info(0.0), info(0.3), info(1.0)
    assert clean == pytest.approx(h_t, abs=0.05)  # noiseless attributes identify the label
    assert 0.5 < noisy < clean - 0.3
    assert random < 0.3 < noisy  # pure noise: only finite-sample bias left


def test_synthetic_attributes_follow_the_label_maps() -> None:
    source = make_synthetic_attributes(500, image_size=16, noise=0.0, seed=7)
    maps = attribute_maps(10, 7)
    labels = source.table["label"].to_numpy()
    for name, values in ATTRIBUTES.items():
        expected = np.asarray(values)[maps[name][labels]]
        assert (source.table[name].to_numpy() == expected).all()
    assert source.images is not None and source.images.shape == (500, 3, 16, 16)
    assert set(source.table["split"]) == {"train", "test"}


def test_arrays_source_layouts(tmp_path: Path) -> None:
    nhwc = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "x.npz", images=nhwc, label=np.arange(5), id=np.array(list("abcde")))
    source = load_source("arrays", arrays=str(tmp_path / "x.npz"))
    assert source.images is not None and source.images.shape == (5, 3, 8, 8)
    np.testing.assert_array_equal(source.images[2], nhwc[2].transpose(2, 0, 1))
    assert source.table["id"].tolist() == list("abcde")
    np.save(tmp_path / "g.npy", np.full((4, 6, 6), 0.5))
    gray = load_source("arrays", arrays=str(tmp_path / "g.npy"))
    assert gray.channels == 1 and gray.table["id"].tolist() == ["0", "1", "2", "3"]
    assert int(gray.images[0, 0, 0, 0]) == 128  # type: ignore[index]
    np.save(tmp_path / "bad.npy", np.zeros((4, 6, 6), dtype=np.int32))
    with pytest.raises(ValueError, match="uint8 or float"):
        load_source("arrays", arrays=str(tmp_path / "bad.npy"))


def write_png(path: Path, value: int, size: int = 10) -> None:
    from PIL import Image

    Image.fromarray(np.full((size, size, 3), value, dtype=np.uint8)).save(path)


def image_table(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    for i in range(4):
        write_png(tmp_path / "img" / f"{i}.png", 60 * i)
    frame = pd.DataFrame({"path": [f"{i}.png" for i in range(4)], "label": [0, 1, 0, 1]})
    frame.to_csv(tmp_path / "meta.csv", index=False)
    return tmp_path / "meta.csv"


def test_table_source_files_and_cache(tmp_path: Path) -> None:
    meta = image_table(tmp_path)
    files = load_source("table", table=str(meta), image_root=str(tmp_path / "img"))
    assert not files.in_memory and files.table["id"].tolist() == [
        "0.png",
        "1.png",
        "2.png",
        "3.png",
    ]
    cached = load_source(
        "table", table=str(meta), image_root=str(tmp_path / "img"), cache=True, cache_size=6
    )
    assert cached.images is not None and cached.images.shape == (4, 3, 6, 6)
    assert int(cached.images[3].min()) == int(cached.images[3].max()) == 180


def test_missing_and_unreadable_images(tmp_path: Path) -> None:
    meta = image_table(tmp_path)
    (tmp_path / "img" / "1.png").unlink()
    (tmp_path / "img" / "2.png").write_bytes(b"not an image")
    root = str(tmp_path / "img")
    with pytest.raises(FileNotFoundError, match=r"1 missing image.*row 1: .*1\.png"):
        load_source("table", table=str(meta), image_root=root)
    with pytest.warns(UserWarning, match="skipping 1 missing"):
        files = load_source("table", table=str(meta), image_root=root, missing="skip")
    assert files.table["path"].tolist() == ["0.png", "2.png", "3.png"]
    reader = ImageFiles(files.paths or [], [0, 2, 3], channels=3)
    with pytest.raises(ValueError, match=r"2\.png \(metadata row 2\)"):
        reader[1]
    with pytest.warns(UserWarning, match="skipping 1 unreadable"):
        cached = load_source(
            "table", table=str(meta), image_root=root, missing="skip", cache=True, cache_size=4
        )
    assert cached.table["path"].tolist() == ["0.png", "3.png"]


def test_dataset_fields_and_sampler() -> None:
    images = torch.arange(4 * 4, dtype=torch.uint8).view(4, 1, 2, 2)
    ds = ContrastiveDataset(images, labels=torch.tensor([3, 2, 1, 0]))
    sample = ds[2]
    assert int(sample["index"]) == 2 and int(sample["label"]) == 1
    assert "cluster" not in sample  # cluster ids reach a step by index, from the module
    assert torch.equal(sample["image"], images[2])
    with pytest.raises(ValueError, match="3 labels for 4 images"):
        ContrastiveDataset(images, labels=torch.tensor([0, 1, 2]))
    sampler = EpochShuffleSampler(10, seed=1)
    first = list(sampler)
    assert sorted(first) == list(range(10)) and list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
