"""Table reading (formats, official layout) and assignment files (atomic, sidecar)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clinfonce.clusters import read_assignment, read_table, write_assignment
from clinfonce.clusters.io import file_sha256, is_assignment_file, read_sidecar
from clinfonce.clusters.tables import sample_ids

FRAME = pd.DataFrame({"id": ["a", "b", "c"], "attr": [0, 1, 1], "label": ["x", "y", "x"]})


@pytest.mark.parametrize("name", ["t.csv", "t.tsv", "t.parquet", "t.jsonl", "t.csv.gz"])
def test_formats_by_suffix(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    if name.endswith(".parquet"):
        FRAME.to_parquet(path)
    elif name.endswith(".jsonl"):
        FRAME.to_json(path, orient="records", lines=True)
    else:
        FRAME.to_csv(path, index=False, sep="\t" if name.endswith(".tsv") else ",")
    table = read_table(path)
    assert table.columns.tolist() == ["id", "attr", "label"]
    assert table["attr"].tolist() == [0, 1, 1]
    assert table["id"].astype(str).tolist() == ["a", "b", "c"]


def test_official_layout_cleaned(tmp_path: Path) -> None:
    path = tmp_path / "meta_data_train.csv"
    path.write_text(
        ",path,class,label_gran_1\n"
        "12,a/1.jpg,0,1\n5,a/2.jpg,1,0\n9,b/3.jpg,1,1\n"
        "-1,num_per_label_gran,2,2\n"
    )
    table = read_table(path)
    assert table.columns.tolist() == ["source_index", "path", "class", "label_gran_1"]
    assert table["source_index"].tolist() == [12, 5, 9]
    assert table["class"].dtype == np.int64
    assert len(table) == 3


def test_official_count_row_mismatch_warns(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(",path,class\n0,a,0\n1,b,1\n2,c,2\n-1,3,2\n")
    with pytest.warns(UserWarning, match="count row says column 'class' has 2"):
        read_table(path)


def test_bad_tables(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_table(tmp_path / "absent.csv")
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(ValueError, match=r"suffix '\.xlsx'"):
        read_table(tmp_path / "t.xlsx")
    (tmp_path / "empty.csv").write_text("id,label\n")
    with pytest.raises(ValueError, match="has no rows"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "void.csv").write_text("")
    with pytest.raises(ValueError, match="cannot read it as csv"):
        read_table(tmp_path / "void.csv")


def test_sample_ids_checks() -> None:
    assert sample_ids(FRAME).tolist() == ["a", "b", "c"]
    paths = pd.DataFrame({"path": ["p/1", "p/2"]})
    assert sample_ids(paths).tolist() == ["p/1", "p/2"]
    with pytest.raises(ValueError, match=r"2 id\(s\) appear more than once, e.g. a, b"):
        sample_ids(pd.DataFrame({"id": ["a", "b", "a", "b"]}))
    with pytest.raises(ValueError, match="no 'id' or 'path' column"):
        sample_ids(pd.DataFrame({"x": [1]}))
    with pytest.raises(ValueError, match="'key' not found"):
        sample_ids(FRAME, "key")


def test_write_and_read_assignment(tmp_path: Path) -> None:
    path = tmp_path / "out" / "clusters.csv"
    sidecar = {"builder": "label", "metrics": {"i_zt": np.float64(0.5), "nmi": float("nan")}}
    write_assignment(path, ["007", "NA", "c,d"], np.array([2, 0, 1]), sidecar)
    back = read_assignment(path)
    assert back["id"].tolist() == ["007", "NA", "c,d"]  # kept as text, nothing parsed
    assert back["cluster"].tolist() == [2, 0, 1]
    assert back["cluster"].dtype == np.int64
    meta = json.loads(Path(f"{path}.json").read_text())
    assert meta["builder"] == "label"
    assert meta["metrics"] == {"i_zt": 0.5, "nmi": None}
    assert (meta["num_samples"], meta["num_clusters"]) == (3, 3)
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "clusters.csv"
    write_assignment(path, ["a"], [0], {"run": 1})
    before = path.read_text()

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_assignment(path, ["a", "b"], [0, 1], {"run": 2})
    assert path.read_text() == before  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clusters.csv", "clusters.csv.json"]


def test_assignment_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="appear more than once"):
        write_assignment(tmp_path / "c.csv", ["a", "a"], [0, 1], {})
    with pytest.raises(ValueError, match="2 ids but 1 cluster ids"):
        write_assignment(tmp_path / "c.csv", ["a", "b"], [0], {})
    with pytest.raises(ValueError, match="non-negative integers"):
        write_assignment(tmp_path / "c.csv", ["a"], [-1], {})
    (tmp_path / "bad.csv").write_text("sample,cluster\na,0\n")
    with pytest.raises(ValueError, match="header 'id,cluster'"):
        read_assignment(tmp_path / "bad.csv")
    (tmp_path / "bad2.csv").write_text("id,cluster\na,0\nb,x\n")
    with pytest.raises(ValueError, match="bad rows 1"):
        read_assignment(tmp_path / "bad2.csv")


def test_file_sha256(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert file_sha256(tmp_path / "f") == expected


def test_na_is_a_value_and_only_empty_cells_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "meta.csv"
    path.write_text("id,region,note\na,NA,\nb,EU,null\nc,,None\n")
    table = read_table(path)
    assert table["region"].tolist()[:2] == ["NA", "EU"] and pd.isna(table["region"][2])
    assert pd.isna(table["note"][0]) and table["note"].tolist()[1:] == ["null", "None"]


def test_undecodable_bytes_are_located_and_an_encoding_can_be_given(tmp_path: Path) -> None:
    path = tmp_path / "meta.csv"
    path.write_bytes("id,city\na,Paris\nb,Montr\xe9al\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"meta.csv, line 3 column 8: byte 0xe9 is not valid"):
        read_table(path)
    assert read_table(path, "latin-1")["city"].tolist() == ["Paris", "Montréal"]
    with pytest.raises(ValueError, match="unknown text encoding 'nope'"):
        read_table(path, "nope")


def test_written_files_get_the_umask_mode_and_leave_no_temp(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_assignment(tmp_path / "c.csv", ["a", "b"], [0, 1], {})
    finally:
        os.umask(old)
    assert (tmp_path / "c.csv").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "c.csv.json").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "c.csv.json"]
    assert is_assignment_file(tmp_path / "c.csv")
    (tmp_path / "c.csv.json").unlink()
    assert not is_assignment_file(tmp_path / "c.csv")


@pytest.mark.parametrize("key", ["metrics", "metrics_vs_labels"])
def test_sidecars_of_either_layout_read_back_and_are_written_in_one(
    tmp_path: Path, key: str
) -> None:
    old = tmp_path / "old.csv"
    old.write_text("id,cluster\na,0\n")
    metrics = {"i_zt": 0.5, "num_clusters": 1}
    Path(f"{old}.json").write_text(
        json.dumps({"builder": "label", key: metrics, "num_samples": 1, "num_clusters": 1})
    )
    sidecar = read_sidecar(old)
    assert sidecar is not None
    assert sidecar.metrics == metrics and sidecar.provenance == {"builder": "label"}
    assert (sidecar.num_samples, sidecar.num_clusters) == (1, 1)
    new = tmp_path / "new.csv"
    write_assignment(new, ["a"], [0], sidecar)
    written = json.loads(Path(f"{new}.json").read_text())
    assert written == {"builder": "label", "metrics": metrics, "num_samples": 1, "num_clusters": 1}
    assert read_sidecar(tmp_path / "none.csv") is None
