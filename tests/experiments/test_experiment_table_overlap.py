"""``clinfonce run --tags COL --overlap RULE``: overlap positives instead of tag-set clusters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from clinfonce.experiments.table_plan import TableRunOptions, plan_table_run


@pytest.fixture()
def tagged_table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        rows.append({"file": f"{i}.png", "class": f"c{i % 3}", "tags": f"t{i % 2}|u{i % 3}"})
    pd.DataFrame(rows).to_csv(tmp_path / "meta.csv", index=False)
    return tmp_path / "meta.csv"


@pytest.mark.parametrize(
    ("rule", "kind", "shared"), [("jaccard", "jaccard", 1), ("at-least-2", "at-least", 2)]
)
def test_overlap_rule_becomes_an_objective_beside_infonce(
    tagged_table: Path, rule: str, kind: str, shared: int
) -> None:
    lines: list[str] = []
    plan = plan_table_run(
        TableRunOptions(str(tagged_table), tags="tags", overlap=rule, steps=2), log=lines.append
    )
    terms = [(t.loss, t.tags, t.overlap, t.min_shared) for t in plan.config.objective]
    assert terms == [("simclr", None, "any", 1), ("overlap", "tags", kind, shared)]
    assert not plan.config.clusters.defined
    assert f"clusters: overlap positives on the tags of tags ({rule}), beside InfoNCE" in lines


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"overlap": "any"}, "needs a tag column"),
        ({"tags": "tags", "overlap": "most"}, "at-least-M"),
    ],
)
def test_bad_overlap_options(tagged_table: Path, options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_table_run(TableRunOptions(str(tagged_table), **options), log=lambda _: None)  # type: ignore[arg-type]
