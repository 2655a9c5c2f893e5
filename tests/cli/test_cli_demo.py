"""``clinfonce demo``: dataset choice and a quick end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clinfonce.cli import main
from clinfonce.experiments.demo import plan


def test_demo_falls_back_to_synthetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import clinfonce.data.fashion_mnist as fm

    monkeypatch.setenv("CLINFONCE_DATA", str(tmp_path))
    monkeypatch.setattr(fm, "SYSTEM_DIR", tmp_path / "absent")
    chosen = plan("auto", quick=False)
    assert chosen.dataset == "synthetic-attributes" and "not found" in chosen.reason
    assert plan("fashion-mnist", quick=True).base["train"]["epochs"] == 1


@pytest.mark.slow
def test_quick_demo_writes_table_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quick", "--data", "synthetic-attributes"]) == 0
    printed = capsys.readouterr().out
    assert "stage 1: clusters from maker, material, region" in printed and "| SupCon |" in printed
    result = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in result["rows"]] == ["random-init", "simclr", "clinfonce", "supcon"]
    for row in result["rows"]:
        assert 0 <= row["knn_top1"] <= 100 and 0 <= row["linear_top1"] <= 100
    assert 0 < result["clusters"]["i_zt"] < result["clusters"]["h_t"]
    assert (out / "results.md").read_text().startswith("# clinfonce demo")
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
