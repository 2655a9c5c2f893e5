"""A short fit of an overlap term (shared tags of a table column) with a memory."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from clinfonce.training import config_from_dict, train


def test_fit_with_tag_overlap_and_memory(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(32):
        Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        rows.append({"file": f"{i}.png", "tags": f"t{i % 2}|u{i % 3}" if i % 5 else ""})
    pd.DataFrame(rows).to_csv(tmp_path / "meta.csv", index=False)
    config = config_from_dict(
        {
            "data": {
                "dataset": "table",
                "options": {"table": str(tmp_path / "meta.csv"), "path_column": "file"},
            },
            "model": {"head_hidden": 16, "head_out": 8},
            "method": {"memory": {"size": 16}},
            "objective": [
                {"loss": "simclr"},
                {"loss": "overlap", "tags": "tags", "overlap": "at-least", "min_shared": 2},
            ],
            "train": {"epochs": 2, "batch_size": 8, "progress_bar": False},
            "monitor": {"enabled": False},
            "output": {"dir": str(tmp_path / "runs"), "name": "overlap"},
        }
    )
    result = train(config)
    assert math.isfinite(result.metrics["train/overlap-tags"])
    assert math.isfinite(result.metrics["train/simclr"])
