"""Output paths against input paths (clinfonce.outputs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinfonce.outputs import (
    atomic_write_all,
    check_output_file,
    check_output_folder,
    existing_paths,
    is_inside,
    same_file,
)


def test_paths(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "t.csv").write_text("x")
    (tmp_path / "link.csv").symlink_to(tmp_path / "a" / "t.csv")
    assert same_file(tmp_path / "link.csv", tmp_path / "a" / ".." / "a" / "t.csv")
    assert is_inside(tmp_path / "a" / "t.csv", tmp_path / "a")
    assert not is_inside(tmp_path / "ab", tmp_path / "a")
    found = existing_paths({"x": [str(tmp_path / "a" / "t.csv"), "nope", 3], "y": None})
    assert list(found) == [tmp_path / "a" / "t.csv"]


def test_check_output_file(tmp_path: Path) -> None:
    table, mine = tmp_path / "meta.csv", tmp_path / "mine.csv"
    table.write_text("id\n1\n")
    mine.write_text("a\n")
    never = lambda _: False  # noqa: E731
    with pytest.raises(ValueError, match=r"--out .*meta.csv is also an input of this command"):
        check_output_file(tmp_path / "." / "meta.csv", [table], force=True, ours=never)
    with pytest.raises(ValueError, match=r"was not written by clinfonce; .* pass --force"):
        check_output_file(mine, [table], force=False, ours=never)
    with pytest.raises(ValueError, match="is a folder"):
        check_output_file(tmp_path, [table], force=True, ours=never)
    check_output_file(mine, [table], force=True, ours=never)
    check_output_file(mine, [table], force=False, ours=lambda _: True)
    check_output_file(tmp_path / "new.csv", [table], force=False, ours=never)


def test_check_output_folder(tmp_path: Path) -> None:
    spec = tmp_path / "experiment.yaml"
    spec.write_text("runs: []\n")
    with pytest.raises(ValueError, match=r"--out .*experiment\.yaml is also an input"):
        check_output_folder(tmp_path, ["results.csv", "experiment.yaml"], [spec], "--out")
    with pytest.raises(ValueError, match="is a file; give a folder"):
        check_output_folder(spec, ["results.csv"], [], "--out")
    check_output_folder(tmp_path / "new", ["experiment.yaml"], [spec], "--out")


def test_a_write_out_of_memory_keeps_the_old_files_and_says_so(tmp_path: Path) -> None:
    first, second = tmp_path / "a.npy", tmp_path / "b.csv"
    first.write_text("old a")
    second.write_text("old b")

    def runs_out(path: Path) -> None:
        path.write_text("partial")
        raise MemoryError

    with pytest.raises(OSError, match=r"could not write .*b\.csv \(MemoryError\): out of memory"):
        atomic_write_all([(first, lambda p: p.write_text("new a")), (second, runs_out)])
    assert (first.read_text(), second.read_text()) == ("old a", "old b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npy", "b.csv"]
