"""Rows by split and seeded subsets: the draws the training monitor and the evaluation made
before they shared one helper."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clinfonce.data.splits import seeded_subset, split_mask


def _monitor_subset(rows: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    # The training monitor's draw (one generator for the bank, then the queries).
    if len(rows) <= limit:
        return rows
    return np.sort(rng.choice(rows, size=limit, replace=False))


def _evaluation_subset(rows: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    # The evaluation's draw (a fresh generator per split).
    if limit is None or len(rows) <= limit:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, size=limit, replace=False))


@pytest.mark.parametrize("limit", [None, 3, 50, 200])
def test_seeded_subset_draws_the_rows_of_both_former_helpers(limit: int | None) -> None:
    rows = np.arange(0, 300, 3)
    assert np.array_equal(seeded_subset(rows, limit, 7), _evaluation_subset(rows, limit, 7))
    if limit is None:
        return
    ours, theirs = np.random.default_rng(1), np.random.default_rng(1)
    for part in (rows, rows[::2]):  # successive draws share the generator
        assert np.array_equal(
            seeded_subset(part, limit, ours), _monitor_subset(part, limit, theirs)
        )


def test_split_mask_picks_rows_and_names_what_is_present() -> None:
    table = pd.DataFrame({"split": ["train", "test", "val", "train"]})
    mask = split_mask(table, "split", ["train", "val"], where="m", option="x")
    assert mask.tolist() == [True, False, True, True]
    with pytest.raises(ValueError, match=r"m: no rows with split in a \(splits present: test"):
        split_mask(table, "split", ["a", "train"], where="m", option="x")
    with pytest.raises(ValueError, match=r"no rows with split == 'a' .*; set it"):
        split_mask(table, "split", "a", where="m", option="x", hint="; set it")
    with pytest.raises(ValueError, match=r"--split-column: column 'part' not found"):
        split_mask(table, "part", "train", where="m", option="--split-column")
