"""Prepared arrays: same pixels as decoding directly, invalidation by file key, resumable
and never-half-read preparation, and a clear way out when the cache cannot be written."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clinfonce.data import ClustersConfig, DataConfig, load_source, prepare_data
from clinfonce.data import prepared as prepared_module
from clinfonce.data.images import decode_resized
from clinfonce.data.prepared import (
    DONE,
    INDEX_FILE,
    PENDING,
    TABLE_FILE,
    PreparedCacheError,
    prepare_array,
    read_index,
)
from clinfonce.data.prepared_sources import entry_folder, prepared_source

SIZE = 8


def write_image(path: Path, seed: int, shape: tuple[int, int] = (30, 22)) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def make_table(tmp_path: Path, count: int = 6) -> Path:
    """``count`` images, JPEG and PNG alternating, of a size that JPEG draft mode reduces."""
    (tmp_path / "img").mkdir(exist_ok=True)
    names = [f"{i}.jpg" if i % 2 == 0 else f"{i}.png" for i in range(count)]
    for i, name in enumerate(names):
        write_image(tmp_path / "img" / name, i, (60, 44) if i % 2 == 0 else (30, 22))
    pd.DataFrame(
        {"path": [f"img/{n}" for n in names], "label": [i % 2 for i in range(count)]}
    ).to_csv(tmp_path / "meta.csv", index=False)
    return tmp_path / "meta.csv"


def table_files(tmp_path: Path, count: int = 6) -> list[Path]:
    table = pd.read_csv(tmp_path / "meta.csv")
    return [tmp_path / name for name in table["path"][:count]]


def test_prepared_and_direct_paths_give_the_same_pixels(tmp_path: Path) -> None:
    meta = make_table(tmp_path)
    files = load_source("table", table=str(meta), prepare=True)
    source = prepared_source(files, SIZE)
    assert isinstance(source.images, np.memmap) and source.images.shape == (6, 3, SIZE, SIZE)
    cached = load_source("table", table=str(meta), cache=True, cache_size=SIZE)
    for row, path in enumerate(table_files(tmp_path)):
        direct = decode_resized(path, 3, SIZE).numpy()
        np.testing.assert_array_equal(source.images[row], direct)
        np.testing.assert_array_equal(cached.images[row], direct)  # type: ignore[index]
    # Training reads those rows lazily (no whole-array copy), as uint8 for the device path.
    data = prepare_data(
        DataConfig(dataset="table", options={"table": str(meta), "prepare": True}, image_size=SIZE),
        ClustersConfig(),
        monitor_split=None,
    )
    sample = data.train_dataset(views=2)[3]["image"]
    np.testing.assert_array_equal(sample.numpy(), decode_resized(table_files(tmp_path)[3], 3, SIZE))
    folder = entry_folder(meta.parent / ".clinfonce-prepared", meta, SIZE, 3)
    assert pd.read_csv(folder / TABLE_FILE)["path"].tolist() == files.table["path"].tolist()


def test_a_changed_file_is_decoded_again_and_the_rest_reused(tmp_path: Path) -> None:
    make_table(tmp_path)
    paths, folder = table_files(tmp_path), tmp_path / "cache"
    first = prepare_array(paths, folder, SIZE, 3, progress=False)
    assert (first.decoded, first.reused) == (6, 0)
    write_image(paths[2], seed=99, shape=(60, 44))
    stat = os.stat(paths[2])
    os.utime(paths[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = prepare_array(paths, folder, SIZE, 3, progress=False)
    assert (second.decoded, second.reused) == (1, 5)
    np.testing.assert_array_equal(second.images[2], decode_resized(paths[2], 3, SIZE))
    # A reordered, extended table reuses every unchanged file wherever its row went.
    write_image(tmp_path / "img" / "new.png", seed=7)
    moved = [tmp_path / "img" / "new.png", *reversed(paths)]
    third = prepare_array(moved, folder, SIZE, 3, progress=False)
    assert (third.decoded, third.reused) == (1, 6)
    for row, path in enumerate(moved):
        np.testing.assert_array_equal(third.images[row], decode_resized(path, 3, SIZE))


def test_an_interrupted_prepare_resumes_and_is_never_read_as_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_table(tmp_path)
    paths, folder = table_files(tmp_path), tmp_path / "cache"
    monkeypatch.setattr(prepared_module, "_CHUNK", 2)
    calls = {"n": 0}

    def interrupted(path: Path, channels: int, size: int, *, row: int | None = None) -> object:
        calls["n"] += 1
        if calls["n"] == 4:  # during the second chunk
            raise KeyboardInterrupt
        return decode_resized(path, channels, size, row=row)

    monkeypatch.setattr(prepared_module, "decode_resized", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_array(paths, folder, SIZE, 3, table=pd.DataFrame({"a": range(6)}), workers=1)
    index = read_index(folder)
    assert index is not None and index["status"].tolist() == [DONE] * 2 + [PENDING] * 4
    assert not (folder / TABLE_FILE).exists()  # the completeness marker
    monkeypatch.setattr(prepared_module, "decode_resized", decode_resized)
    resumed = prepare_array(paths, folder, SIZE, 3, table=pd.DataFrame({"a": range(6)}))
    assert (resumed.decoded, resumed.reused) == (4, 2) and (folder / TABLE_FILE).exists()
    for row, path in enumerate(paths):
        np.testing.assert_array_equal(resumed.images[row], decode_resized(path, 3, SIZE))
    # An array whose index is lost (a crash while a new array was laid out) is rebuilt.
    (folder / INDEX_FILE).unlink()
    assert read_index(folder) is None
    assert prepare_array(paths, folder, SIZE, 3, progress=False).decoded == 6


def test_a_full_disk_is_a_clear_error_and_auto_goes_on_with_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meta = make_table(tmp_path)

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(prepared_module.os, "posix_fallocate", full, raising=False)
    required = load_source("table", table=str(meta), prepare=True)
    with pytest.raises(PreparedCacheError, match=r"No space left on device; give a writable"):
        prepared_source(required, SIZE)
    auto = load_source("table", table=str(meta), prepare="auto")
    with pytest.warns(UserWarning, match="No space left .* goes on reading the image files"):
        data = prepare_data(
            DataConfig(dataset="table", options={"table": str(meta), "prepare": "auto"}),
            ClustersConfig(),
            monitor_split=None,
            source=auto,
        )
    assert not data.source.in_memory and data.source.paths == auto.paths


def test_an_unwritable_cache_folder_is_a_clear_error(tmp_path: Path) -> None:
    meta = make_table(tmp_path)
    (tmp_path / "a-file").write_text("not a folder")
    source = load_source(
        "table", table=str(meta), prepare=True, prepare_dir=str(tmp_path / "a-file" / "cache")
    )
    with pytest.raises(PreparedCacheError, match=r"cannot write the prepared images in .*a-file"):
        prepared_source(source, SIZE)


def test_unreadable_images_follow_missing(tmp_path: Path) -> None:
    meta = make_table(tmp_path)
    (tmp_path / "img" / "1.png").write_bytes(b"not an image")
    with pytest.raises(FileNotFoundError, match=r"1 unreadable image.*row 1: .*1\.png"):
        prepared_source(load_source("table", table=str(meta), prepare=True), SIZE)
    skipping = load_source("table", table=str(meta), prepare=True, missing="skip")
    with pytest.warns(UserWarning, match="skipping 1 unreadable"):
        source = prepared_source(skipping, SIZE)
    assert source.table["path"].tolist() == [
        f"img/{n}" for n in ("0.jpg", "2.jpg", "3.png", "4.jpg", "5.png")
    ]
    np.testing.assert_array_equal(
        source.images[1],  # type: ignore[index]
        decode_resized(tmp_path / "img" / "2.jpg", 3, SIZE),
    )


def test_prepare_option_values_are_checked(tmp_path: Path) -> None:
    meta = make_table(tmp_path, count=2)
    with pytest.raises(ValueError, match=r"data\.options\.prepare must be true, false or auto"):
        load_source("table", table=str(meta), prepare="yes")
    with pytest.raises(ValueError, match=r"prepare or data\.options\.cache, not both"):
        load_source("table", table=str(meta), prepare=True, cache=True, cache_size=4)


def test_concurrent_prepares_take_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two preparers of one entry at once (e.g. the processes of a multi-GPU run): one
    decodes, the other waits and reuses; neither lays out the array under the other."""
    import threading
    import time

    make_table(tmp_path)
    paths, folder = table_files(tmp_path), tmp_path / "cache"

    def slow(path: Path, channels: int, size: int, *, row: int | None = None) -> object:
        time.sleep(0.02)  # widens the window in which an unguarded second prepare would race
        return decode_resized(path, channels, size, row=row)

    monkeypatch.setattr(prepared_module, "decode_resized", slow)
    results: list[prepared_module.PreparedArray] = []

    def prepare() -> None:
        results.append(prepare_array(paths, folder, SIZE, 3, workers=1, progress=False))

    threads = [threading.Thread(target=prepare) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.decoded for r in results) == [0, 6]
    for result in results:
        for row, path in enumerate(paths):
            np.testing.assert_array_equal(result.images[row], decode_resized(path, 3, SIZE))
