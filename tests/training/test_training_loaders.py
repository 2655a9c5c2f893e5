"""The training loader's epoch order: cluster-balanced batches from the configured ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinfonce.data.prepare import prepare_data
from clinfonce.training import config_from_dict
from clinfonce.training.loaders import train_loader


def test_training_loader_uses_the_clusters_and_checks_the_batch(tmp_path: Path) -> None:
    values = {
        "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 60, "image_size": 12}},
        "clusters": {"builder": "attributes", "params": {"columns": ["maker"]}},
        "train": {"batch_size": 12, "per_cluster": 4},
        "output": {"dir": str(tmp_path)},
    }
    config = config_from_dict(values)
    data = prepare_data(config.data, config.clusters, seed=0)
    loader = train_loader(config, data)
    assert data.clusters is not None
    batches = list(loader.batch_sampler)  # type: ignore[arg-type]
    groups = [set(data.clusters[b[g : g + 4]].tolist()) for b in batches for g in range(0, 12, 4)]
    assert sum(len(g) == 1 for g in groups) >= len(groups) - 4  # few mixed leftover groups
    bad = config_from_dict({**values, "train": {"batch_size": 10, "per_cluster": 4}})
    with pytest.raises(ValueError, match=r"must divide train\.batch_size"):
        train_loader(bad, data)
    by_name = config_from_dict({**values, "train": {**values["train"], "balance_by": "x"}})
    with pytest.raises(ValueError, match="balance_by='x'"):
        train_loader(by_name, data)
