"""``clinfonce experiment``: the smoke config end to end, a rerun that skips, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from clinfonce.cli import main

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "experiments" / "smoke.yaml"
CONFIGS = SMOKE.parent
PNG = b"\x89PNG\r\n\x1a\n"


def test_every_shipped_experiment_expands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each config's grid is valid (dry run: configs are checked, nothing runs)."""
    for path in sorted(CONFIGS.glob("*.yaml")):
        args = ["experiment", "--config", str(path), "--dry-run", "--out", str(tmp_path)]
        assert main(args) == 0
        printed = capsys.readouterr().out
        assert f"experiment {path.stem}:" in printed and "dry run" in printed


@pytest.mark.slow
def test_smoke_experiment_writes_table_and_plots_then_skips(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "smoke"
    assert main(["experiment", "--config", str(SMOKE), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    names = ["random-init", "simclr", "clinfonce-k1", "clinfonce-k2", "supcon"]
    for i, name in enumerate(names, 1):
        assert f"run {i}/5: {name} seed 0 — ETA " in printed
    rows = pd.read_csv(out / "results.csv")
    assert rows["name"].tolist() == names
    assert rows["method"].tolist() == ["untrained", "simclr", "clinfonce", "clinfonce", "supcon"]
    for column in ("knn_top1", "knn_top5", "linear_top1", "linear_top5"):
        assert rows[column].between(0, 100).all()
    assert (rows["knn_top5"] >= rows["knn_top1"]).all()
    clustered = rows.set_index("name").loc[["clinfonce-k1", "clinfonce-k2"]]
    assert clustered["num_clusters"].tolist() == [4, 16]  # 4 makers, x 4 regions
    assert (clustered["i_zt"] > 0).all() and (clustered["h_z_given_t"] > 0).all()
    assert clustered["i_zt"].iloc[1] > clustered["i_zt"].iloc[0]  # nested: k=2 refines k=1
    assert rows.set_index("name")["num_clusters"].isna().sum() == 3

    table = (out / "results.md").read_text()
    assert table.startswith("# Experiment: smoke")
    assert "| run | method | clusters | K | H(Z|T) | I(Z;T) | seeds |" in table
    assert "gap closed (linear)" in table and "| clinfonce-k2 | clinfonce |" in table
    assert "Command: `clinfonce experiment --config" in table
    summary = pd.read_csv(out / "summary.csv").set_index("name")
    low, high = summary.loc["simclr", "linear_top1_mean"], summary.loc["supcon", "linear_top1_mean"]
    expected = (summary.loc["clinfonce-k1", "linear_top1_mean"] - low) / (high - low)
    assert summary.loc["clinfonce-k1", "gap_linear_top1"] == pytest.approx(expected)
    for plot in ("accuracy.png", "sweep-clinfonce.png"):
        assert (out / plot).read_bytes()[:8] == PNG
    marker = out / "runs" / "simclr-seed0" / "experiment-cell.json"
    stamp = marker.stat().st_mtime_ns
    assert (out / "runs" / "simclr-seed0" / "checkpoints" / "last.ckpt").is_file()

    assert main(["experiment", "--config", str(SMOKE), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("— done, skipped") == 5 and "ETA" not in printed
    assert marker.stat().st_mtime_ns == stamp
    assert pd.read_csv(out / "results.csv")["linear_top1"].tolist() == rows["linear_top1"].tolist()

    assert main(["experiment", "--config", str(SMOKE), "--out", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out.count(" done ") == 5

    # As if interrupted: supcon while training (after an epoch's checkpoint), clinfonce-k1
    # after training but before its evaluation. The real resume and reload paths run.
    for name, stage in (("supcon", "training"), ("clinfonce-k1", "trained")):
        path = out / "runs" / f"{name}-seed0" / "experiment-cell.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "stage": stage}))
    (out / "results.csv").write_text(rows[~rows["name"].isin(["supcon", "clinfonce-k1"])].to_csv())
    assert main(["experiment", "--config", str(SMOKE), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("— done, skipped") == 3
    assert "run 3/5: clinfonce-k1 seed 0 — ETA --:-- (trained; evaluating)" in printed
    assert "run 5/5: supcon seed 0 — ETA " in printed and "(resuming from last.ckpt)" in printed
    again = pd.read_csv(out / "results.csv").set_index("name")
    before = rows.set_index("name")
    # Same weights, same evaluation: the same accuracies.
    for name in ("supcon", "clinfonce-k1"):
        assert again.loc[name, "linear_top1"] == pytest.approx(before.loc[name, "linear_top1"])
        assert again.loc[name, "knn_top1"] == pytest.approx(before.loc[name, "knn_top1"])
    assert bool(again.loc["supcon", "resumed"]) and again.loc["clinfonce-k1", "num_clusters"] == 4


def test_bad_arguments_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["experiment", "--config", str(tmp_path / "none.yaml")]) == 1
    assert "experiment file" in capsys.readouterr().err
    args = ["experiment", "--config", str(SMOKE), "--dry-run", "--out", str(tmp_path)]
    assert main([*args, "--seeds", "zero"]) == 1
    assert "--seeds takes integers" in capsys.readouterr().err
    assert main([*args, "--only", "nothing"]) == 1
    assert "no run named nothing" in capsys.readouterr().err
    assert main([*args, "optim.lrr=1"]) == 1
    assert "unknown config key 'optim.lrr'" in capsys.readouterr().err
