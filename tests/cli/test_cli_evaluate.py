"""``clinfonce embed`` and ``clinfonce evaluate`` on a tiny run trained here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from clinfonce.cli import main
from clinfonce.evaluation import knn_evaluate, logistic_probe
from clinfonce.runs.load import load_run
from clinfonce.training import config_from_dict, train
from clinfonce.training.run_directory import checkpoint_run_dir, resolve_checkpoint

OPTIONS = {"n_samples": 80, "image_size": 12}
TINY = {
    "data": {"dataset": "synthetic-attributes", "options": OPTIONS},
    "method": {"name": "simclr"},
    "model": {"head_hidden": 16, "head_out": 8},
    "train": {"epochs": 1, "batch_size": 16, "progress_bar": False},
    "monitor": {"max_bank": 20, "max_queries": 10},
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    result = train(config_from_dict({**TINY, "output": {"dir": str(out), "name": "tiny"}}))
    return result.run_dir


def read_embeddings(folder: Path) -> tuple[np.ndarray, pd.DataFrame]:
    return np.load(folder / "embeddings.npy"), pd.read_csv(folder / "index.csv")


def test_embed_exports_every_row_in_table_order(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from clinfonce.data import load_source

    assert main(["embed", "--checkpoint", str(run_dir), "--out", str(tmp_path), "--quiet"]) == 0
    assert "wrote 80 x 128 embeddings" in capsys.readouterr().out
    x, index = read_embeddings(tmp_path)
    source = load_source("synthetic-attributes", **OPTIONS)
    assert x.dtype == np.float32 and x.shape == (80, 128)
    assert index.columns.tolist() == ["row", "id", "label", "split"]
    assert index["row"].tolist() == list(range(80))
    assert index["id"].astype(str).tolist() == source.table["id"].astype(str).tolist()
    assert index["label"].tolist() == source.table["label"].tolist()
    assert index["split"].tolist() == source.table["split"].tolist()
    # the same numbers as the encoder applied to the raw images, in eval mode
    module = load_run(run_dir).module
    direct = module.embed(torch.from_numpy(source.images[:7])).numpy()
    np.testing.assert_allclose(x[:7], direct, rtol=1e-5, atol=1e-5)
    sidecar = json.loads((tmp_path / "embeddings.json").read_text())
    assert sidecar["count"] == 80 and sidecar["dim"] == 128 and sidecar["splits"] == "all"


def test_evaluate_matches_probes_on_exported_embeddings(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--out", str(tmp_path / "emb"), "--quiet", "--split"]
    assert main(["embed", "--checkpoint", str(run_dir), *args, "train", "test"]) == 0
    assert (
        main(["evaluate", "--run", str(run_dir), "--knn-k", "3", "30", "--cs", "1", "--tsne"]) == 0
    )
    captured = capsys.readouterr()
    assert "| tiny | simclr | logistic, C=1 |" in captured.out
    assert "kNN k=30 top-5" in captured.out
    results = json.loads((run_dir / "evaluation-last.json").read_text())
    assert (run_dir / "evaluation-last.md").read_text().endswith(captured.out.split("\n\n")[-1])
    assert Path(results["tsne"]) == run_dir / "tsne-last.png" and Path(results["tsne"]).is_file()
    # recompute from the exported embeddings: the same rows, features and numbers
    x, index = read_embeddings(tmp_path / "emb")
    codes = index["label"].to_numpy()  # synthetic labels are already 0..9
    train, test = (index["split"] == "train").to_numpy(), (index["split"] == "test").to_numpy()
    assert results["train"]["samples"] == train.sum() and results["test"]["samples"] == test.sum()
    assert f"embedding {train.sum()} training images" in captured.err
    knn = knn_evaluate(
        torch.from_numpy(x[train]),
        torch.from_numpy(codes[train]),
        torch.from_numpy(x[test]),
        torch.from_numpy(codes[test]),
        ks=(3, 30),
        num_classes=10,
    )
    for k in (3, 30):
        for t in (1, 5):
            assert results["knn"][str(k)][f"top{t}"] == pytest.approx(knn[k][t])
    probe = logistic_probe(x[train], codes[train], x[test], codes[test], cs=(1.0,))
    assert results["linear"]["top1"] == pytest.approx(probe.accuracy[1], abs=1e-9)
    assert results["linear"]["top5"] == pytest.approx(probe.accuracy[5], abs=1e-9)
    clusters = results["embedding_clusters"]
    assert 0 <= clusters["nmi"] <= 1 and clusters["num_clusters"] == len(set(codes[test]))


def test_checkpoint_outside_run_and_several_runs(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loose = tmp_path / "model.ckpt"
    shutil.copyfile(run_dir / "checkpoints" / "last.ckpt", loose)
    assert checkpoint_run_dir(loose) is None
    assert checkpoint_run_dir(resolve_checkpoint(run_dir, "best")) == run_dir
    # the config stored in the checkpoint says what data to use
    out = tmp_path / "several"
    common = ["--probe", "none", "--no-nmi", "--knn-k", "5", "--quiet", "--out", str(out)]
    best = str(run_dir / "checkpoints" / "best.ckpt")
    assert main(["evaluate", "--checkpoint", str(loose), "--checkpoint", best, *common]) == 0
    table = capsys.readouterr().out
    assert "| model | simclr | - |" in table and "| tiny | simclr | - |" in table
    assert (out / "evaluation.md").read_text().endswith(table.split("\n\n")[-1])
    assert len(json.loads((out / "evaluation.json").read_text())) == 2
    loose_results = json.loads((out / "model" / "evaluation-model.json").read_text())
    assert loose_results["run_dir"] is None and loose_results["linear"] is None
    assert (out / "tiny" / "evaluation-best.json").is_file()


def test_sgd_probe_from_the_command_line(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--probe", "sgd", "--sgd-epochs", "2", "--sgd-batch-size", "32", "--no-nmi"]
    assert main(["evaluate", "--run", str(run_dir), *args, "--out", str(tmp_path)]) == 0
    assert "sgd probe epoch 2/2" in capsys.readouterr().err
    linear = json.loads((tmp_path / "evaluation-last.json").read_text())["linear"]
    assert linear["probe"] == "sgd" and linear["epochs"] == 2
    assert "crop" in linear["augmentation"] and 0 <= linear["top1"] <= linear["top5"] <= 1


def test_load_run_config_sources(run_dir: Path, tmp_path: Path) -> None:
    loaded = load_run(run_dir, overrides=["data.options.n_samples=40"])
    assert loaded.run_dir == run_dir and loaded.checkpoint.name == "last.ckpt"
    assert loaded.config.data.options["n_samples"] == 40 and not loaded.module.training
    with pytest.raises(FileNotFoundError, match=r"no checkpoints/best\.ckpt"):
        resolve_checkpoint(tmp_path, "best")
    with pytest.raises(ValueError, match="last, best"):
        resolve_checkpoint(run_dir, "first")


def test_errors(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate"]) == 1
    assert "give --run RUN_DIR or --checkpoint CKPT" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(tmp_path / "nope")]) == 1
    assert "not a run directory" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(run_dir), "--device", "gpu0"]) == 1
    assert "not a device name" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(tmp_path), "--which", "best"]) == 1
    assert "has no checkpoints/best.ckpt" in capsys.readouterr().err
    bad = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}}, bad)
    assert main(["embed", "--checkpoint", str(bad), "--out", str(tmp_path)]) == 1
    assert "not a clinfonce training checkpoint" in capsys.readouterr().err
    args = ["embed", "--checkpoint", str(run_dir), "--out", str(tmp_path), "--split", "val"]
    assert main(args) == 1
    assert "no rows with split in val (splits present: test, train)" in capsys.readouterr().err
    args = ["evaluate", "--run", str(run_dir), "--test-split", "val", "--quiet"]
    assert main([*args, "monitor.holdout_fraction=0"]) == 1
    assert "no labelled test rows: split 'val'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["embed", "--checkpoint", str(run_dir), "--out", "x", "--device", "cuda"]) == 1
        assert "no CUDA device here" in capsys.readouterr().err
