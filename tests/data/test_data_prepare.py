"""From config to training data: splits, labels, and the join with cluster assignments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clinfonce.clusters import write_assignment
from clinfonce.data import (
    ClustersConfig,
    DataConfig,
    ImageSource,
    join_assignment,
    prepare_data,
    write_clusters,
)


def source(n: int = 12) -> ImageSource:
    table = pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(n)],
            "label": ["cat", "dog", "eel"] * (n // 3),
            "colour": ["red", "blue"] * (n // 2),
            "split": ["train", "train", "test"] * (n // 3),
        }
    )
    images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 1, 4, 4), np.uint8)
    return ImageSource("toy", table, images=images, channels=1)


def test_join_assignment_aligns_ids_and_labels(tmp_path: Path) -> None:
    src = source()
    train_ids = [f"s{i}" for i in range(12) if i % 3 != 2]
    clusters = {key: 100 + int(key[1:]) for key in train_ids}  # cluster id encodes the sample
    order = [*reversed(train_ids), "s2", "extra"]  # shuffled, with ids of other splits
    write_assignment(
        tmp_path / "c.csv", order, [clusters.get(k, 0) for k in order], {"builder": "test"}
    )
    prep = prepare_data(
        DataConfig(), ClustersConfig(assignment=str(tmp_path / "c.csv")), source=src
    )
    rows = prep.train_rows
    assert src.table["split"].iloc[rows].eq("train").all() and len(rows) == 8
    assert prep.clusters is not None
    assert prep.clusters.tolist() == [100 + r for r in rows]
    assert prep.label_names == ["cat", "dog", "eel"]
    assert prep.train_labels() is not None
    assert [prep.label_names[c] for c in prep.train_labels()] == src.table["label"].iloc[
        rows
    ].tolist()  # type: ignore[union-attr]
    assert prep.monitor_rows is not None and prep.monitor_rows.tolist() == [2, 5, 8, 11]
    ds = prep.train_dataset(views=2)
    sample = ds[3]
    assert int(sample["image"][0, 0, 0]) == rows[3]  # image of the same row
    assert prep.clusters is not None and int(prep.clusters[3]) == 100 + rows[3]
    assert int(sample["index"]) == 3
    assert prep.cluster_sidecar is not None
    assert prep.cluster_sidecar.provenance["sidecar"]["builder"] == "test"
    run = tmp_path / "run"
    run.mkdir()
    write_clusters(prep, DataConfig(), run)
    assert (run / "clusters.csv").read_text() == (tmp_path / "c.csv").read_text()
    assert (run / "clusters.csv.json").is_file()


def test_mismatched_ids_name_examples(tmp_path: Path) -> None:
    write_assignment(tmp_path / "c.csv", ["s0", "s1", "s3"], [0, 1, 0], {})
    with pytest.raises(ValueError, match=r"5 of 8 training sample ids have no cluster, e\.g\. s4"):
        prepare_data(
            DataConfig(), ClustersConfig(assignment=str(tmp_path / "c.csv")), source=source()
        )
    write_assignment(tmp_path / "d.csv", ["0", "1", "3"], [0, 1, 0], {})
    with pytest.raises(ValueError, match=r"no id matched at all.*check data\.id_column"):
        prepare_data(
            DataConfig(), ClustersConfig(assignment=str(tmp_path / "d.csv")), source=source()
        )


def test_join_rejects_repeated_ids() -> None:
    frame = pd.DataFrame({"id": ["a", "a", "b"], "cluster": [0, 1, 2]})
    with pytest.raises(ValueError, match=r"appear more than once, e\.g\. a"):
        join_assignment(pd.Series(["a", "b"]), frame, "x.csv")


def test_built_clusters_holdout_and_subset(tmp_path: Path) -> None:
    src = source(30)
    src.table["split"] = "train"  # no test rows: the monitor holds out a fraction
    prep = prepare_data(
        DataConfig(train_subset=10),
        ClustersConfig(builder="attributes", params={"columns": ["colour"]}),
        monitor_split="test",
        holdout_fraction=0.3,
        seed=1,
        source=src,
    )
    assert prep.monitor_rows is not None and len(prep.monitor_rows) > 0
    assert not set(prep.monitor_rows) & set(prep.train_rows) and len(prep.train_rows) == 10
    colours = src.table["colour"].iloc[prep.train_rows].to_numpy()
    assert prep.clusters is not None
    for c in set(colours):  # one cluster per colour
        assert len(set(prep.clusters[colours == c])) == 1
    assert len(set(prep.clusters)) == len(set(colours))
    assert prep.mean == pytest.approx([src.images[prep.train_rows].mean() / 255])  # type: ignore[index]


def test_bad_columns_and_splits() -> None:
    with pytest.raises(ValueError, match=r"column.*species.*set data\.label_column"):
        prepare_data(DataConfig(label_column="species"), ClustersConfig(), source=source())
    with pytest.raises(ValueError, match=r"no rows with split == 'training'.*test, train"):
        prepare_data(DataConfig(train_split="training"), ClustersConfig(), source=source())
    with pytest.raises(ValueError, match="not both"):
        prepare_data(
            DataConfig(), ClustersConfig(assignment="a.csv", builder="label"), source=source()
        )
    with pytest.raises(ValueError, match="need 1 value"):
        prepare_data(DataConfig(mean=[0.5, 0.5]), ClustersConfig(), source=source())
