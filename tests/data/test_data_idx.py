"""IDX reader and the Fashion-MNIST loader on small files written by the tests."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from clinfonce.data.fashion_mnist import (
    LEVEL1,
    LEVEL2,
    SYSTEM_DIR,
    find_fashion_mnist,
    load_fashion_mnist,
    read_fashion_mnist,
)
from clinfonce.data.idx import read_idx


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX, written independently of the reader."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_roundtrip(tmp_path: Path, compress: bool) -> None:
    images = np.random.default_rng(0).integers(0, 256, (3, 4, 5), dtype=np.uint8)
    path = tmp_path / ("x.gz" if compress else "x")
    write_idx(path, images, compress)
    np.testing.assert_array_equal(read_idx(path), images)


def test_read_idx_big_endian_int32(tmp_path: Path) -> None:
    values = np.array([1, -2, 70000], dtype=">i4")
    path = tmp_path / "ints"
    path.write_bytes(bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3) + values.tobytes())
    np.testing.assert_array_equal(read_idx(path), [1, -2, 70000])


def test_read_idx_rejects_garbage_and_truncation(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(idx_bytes(np.zeros((2, 3, 3), np.uint8))[:-4])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(short)


def make_fashion_dir(directory: Path, compress: bool, n_train: int = 6, n_test: int = 4) -> None:
    rng = np.random.default_rng(1)
    suffix = ".gz" if compress else ""
    for stem, n in (("train", n_train), ("t10k", n_test)):
        write_idx(
            directory / f"{stem}-images-idx3-ubyte{suffix}",
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            compress,
        )
        write_idx(directory / f"{stem}-labels-idx1-ubyte{suffix}", np.arange(n) % 10, compress)


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_reader(tmp_path: Path, compress: bool) -> None:
    make_fashion_dir(tmp_path, compress)
    images, table = read_fashion_mnist(tmp_path)
    assert images.shape == (10, 1, 28, 28) and images.dtype == np.uint8
    assert table.columns.tolist() == ["id", "label", "level1", "level2", "split"]
    assert table["split"].tolist() == ["train"] * 6 + ["test"] * 4
    assert table["id"].iloc[6] == "test-00000"
    # docs/method.md §7, written out here independently of the module's tables.
    level2 = {0: "tops", 2: "tops", 6: "tops", 1: "bottoms", 3: "dresses", 4: "outers"}
    level2 |= {5: "shoes", 7: "shoes", 9: "shoes", 8: "accessories"}
    for label, group in level2.items():
        assert LEVEL2[label] == group
        assert LEVEL1[label] == ("goods" if label in (5, 7, 8, 9) else "clothes")
    for _, row in table.iterrows():
        assert row["level2"] == level2[row["label"]]


def test_fashion_mnist_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINFONCE_DATA", str(tmp_path))
    nested = tmp_path / "fashion-mnist"
    nested.mkdir()
    make_fashion_dir(nested, compress=False)
    assert find_fashion_mnist() == nested
    source = load_fashion_mnist()
    assert source.channels == 1 and len(source.table) == 10


def test_fashion_mnist_missing_names_the_search(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_fashion_mnist(root=str(tmp_path))


@pytest.mark.skipif(not SYSTEM_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_system_fashion_mnist() -> None:
    source = load_fashion_mnist(root=str(SYSTEM_DIR))
    assert source.images is not None and source.images.shape == (70000, 1, 28, 28)
    assert (source.table["split"] == "train").sum() == 60000
    assert source.table["label"].value_counts().tolist() == [7000] * 10
