"""Baselines with the same auxiliary information: targets, losses against plain references,
tiny fits, and checkpoints that `clinfonce evaluate` loads."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from clinfonce.runs.load import load_run
from clinfonce.training import config_from_dict, find_method, load_config, train
from clinfonce.training.methods.attributes import (
    AttributeContrast,
    AttributePredictor,
    encode_attributes,
)
from clinfonce.training.methods.cluster_classifier import ClusterClassifier

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
COLUMNS = {"params": {"columns": ["maker", "tier"]}}
BUILT = {"builder": "attributes", **COLUMNS}
TINY: dict[str, Any] = {
    "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 80, "image_size": 12}},
    "model": {"head_hidden": 32, "head_out": 16},
    "baseline": {"attribute_hidden": 8},
    "optim": {"lr": 0.05},
    "train": {"epochs": 2, "batch_size": 16, "progress_bar": False, "log_every_n_steps": 1},
    "monitor": {"max_bank": 40, "max_queries": 16},
}


def small(cls: Any, method: str, **kwargs: Any) -> Any:
    torch.manual_seed(0)
    cfg = config_from_dict(
        {**TINY, "method": {"name": method, "temperature": 0.3}, "clusters": BUILT}
    )
    return cls(cfg, in_channels=1, image_size=8, mean=[0.5], std=[0.25], **kwargs)


def views() -> torch.Tensor:
    return torch.randn(5, 2, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def test_encode_attributes() -> None:
    table = pd.DataFrame(
        {
            "wet": [1, 0, 1, 0],
            "big": [True, True, False, True],
            "colour": ["red", "blue", None, "red"],
            "score": [0.0, 1.0, np.nan, 1.0],  # 0/1 with a missing value: 3 values
            "always": [1, 1, 1, 1],  # constant 0/1 column: binary, target 1
        }
    )
    codes = encode_attributes(table, list(table.columns))
    assert codes.outputs == [1, 1, 3, 3, 1]
    assert codes.codes.tolist() == [
        [1, 1, 1, 0, 1],
        [0, 1, 0, 1, 1],
        [1, 0, 2, 2, 1],
        [0, 1, 1, 1, 1],
    ]
    assert codes.levels[2] == ["blue", "red", None]
    with pytest.raises(ValueError, match="missing"):
        encode_attributes(table, ["colour"], missing="error")


def test_ce_clusters_loss_is_cross_entropy() -> None:
    module = small(ClusterClassifier, "ce-clusters", num_clusters=4)
    batch = {"image": views(), "index": torch.arange(5), "cluster": torch.tensor([0, 3, 1, 3, 2])}
    module.set_cluster_ids(batch["cluster"])  # cluster ids reach a step by sample index
    loss, _ = module.compute_loss(batch)
    logits = module.head(module.encoder(batch["image"].flatten(0, 1)))
    targets = batch["cluster"].repeat_interleave(2)  # both views of a sample
    torch.testing.assert_close(loss, F.cross_entropy(logits, targets))
    z = logits.double()
    loop = sum(-z[i, targets[i]] + torch.log(torch.exp(z[i]).sum()) for i in range(len(z))) / len(z)
    torch.testing.assert_close(loss.double(), loop, rtol=1e-5, atol=1e-6)


def test_attribute_prediction_loss_against_a_loop() -> None:
    module = small(AttributePredictor, "attribute-prediction", outputs=[1, 3])
    module.set_attributes(torch.tensor([[0, 2], [1, 0], [1, 1], [0, 0], [1, 2], [0, 1]]))
    batch = {"image": views(), "index": torch.tensor([5, 0, 2, 3, 1])}
    loss, _ = module.compute_loss(batch)
    logits = module.head(module.encoder(batch["image"].flatten(0, 1))).double()
    codes = module.sample_tables["attributes"][batch["index"]].repeat_interleave(2, dim=0)
    bce = ce = 0.0
    for i in range(len(logits)):
        p = 1 / (1 + math.exp(-logits[i, 0].item()))
        y = codes[i, 0].item()
        bce += -(y * math.log(p) + (1 - y) * math.log(1 - p))
        row = logits[i, 1:4]
        ce += -(row[codes[i, 1]] - torch.logsumexp(row, 0)).item()
    expected = (bce / len(logits) + ce / len(logits)) / 2  # mean over the two attributes
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="out of range"):
        module.set_attributes(torch.tensor([[2, 0]]))  # binary attribute with value 2


def test_cmc_attributes_loss_against_a_loop() -> None:
    module = small(AttributeContrast, "cmc-attributes", outputs=[1, 3])
    module.set_attributes(torch.tensor([[0, 2], [1, 0], [1, 1], [0, 0], [1, 2]]))
    batch = {"image": views(), "index": torch.arange(5)}
    loss, _ = module.compute_loss(batch)
    feats = module.head(module.encoder(batch["image"].flatten(0, 1))).double().view(5, 2, -1)
    codes = module.sample_tables["attributes"]
    vectors = torch.tensor(
        [[float(c[0]), *[float(c[1] == j) for j in range(3)]] for c in codes.tolist()]
    )
    w = module.attribute_net(vectors).double()
    w = w / w.norm(dim=1, keepdim=True)
    total = 0.0
    for v in range(2):
        u = feats[:, v] / feats[:, v].norm(dim=1, keepdim=True)
        s = (u @ w.T / 0.3).tolist()
        for i in range(5):
            image_to_attr = -s[i][i] + math.log(sum(math.exp(s[i][j]) for j in range(5)))
            attr_to_image = -s[i][i] + math.log(sum(math.exp(s[j][i]) for j in range(5)))
            total += (image_to_attr + attr_to_image) / 2 / 5
    assert loss.item() == pytest.approx(total / 2, rel=1e-5)


@pytest.mark.parametrize(
    ("method", "clusters", "cls"),
    [
        ("ce-clusters", BUILT, ClusterClassifier),
        ("attribute-prediction", COLUMNS, AttributePredictor),
        ("cmc-attributes", COLUMNS, AttributeContrast),
    ],
)
def test_tiny_fit_and_evaluate_loading(
    tmp_path: Path, method: str, clusters: dict[str, Any], cls: type
) -> None:
    values = {**TINY, "method": {"name": method}, "clusters": clusters}
    result = train(config_from_dict({**values, "output": {"dir": str(tmp_path), "name": method}}))
    assert isinstance(result.module, cls) and find_method(method).module is cls
    assert math.isfinite(result.metrics["train/loss"])
    assert 0 <= result.metrics["monitor/knn_top1"] <= 1
    loaded = load_run(result.run_dir)  # the path `clinfonce evaluate` takes
    assert isinstance(loaded.module, cls) and not loaded.module.training
    assert result.data.source.images is not None
    images = torch.from_numpy(result.data.source.images[:4])
    result.module.eval()
    torch.testing.assert_close(loaded.module.embed(images), result.module.embed(images))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"method": {"name": "ce-clusters"}}, "predicts the stage-1 cluster ids"),
        ({"method": {"name": "attribute-prediction"}}, "reads attribute columns"),
        (
            {"method": {"name": "cmc-attributes", "warmup_epochs": 1}, "clusters": COLUMNS},
            "warmup_epochs applies to contrastive methods",
        ),
        (
            {
                "method": {"name": "cmc-attributes"},
                "clusters": COLUMNS,
                "baseline": {"attribute_hidden": 0},
            },
            "attribute_hidden",
        ),
    ],
)
def test_baseline_config_errors(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_dict(values)


@pytest.mark.parametrize(
    "name",
    [
        f"{data}-{method}.yaml"
        for data in ("fashion-mnist", "synthetic-attributes")
        for method in ("kmeans-clinfonce", "ce-clusters", "attribute-prediction", "cmc-attributes")
    ],
)
def test_configs_load(name: str) -> None:
    cfg = load_config(CONFIGS / name)
    assert name.endswith(f"-{cfg.method.name}.yaml")
