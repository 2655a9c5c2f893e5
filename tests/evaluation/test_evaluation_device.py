"""Evaluation and clustering where the model is: the same numbers on the CPU as before the
move to the device, and the device paths' CPU-checkable parts."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
import torch
from torch import nn

from clinfonce.clusters.kmeans import _kmeans_on_device, kmeans
from clinfonce.evaluation import extract_features, knn_evaluate, logistic_probe, sgd_probe
from clinfonce.evaluation.features import module_device, use_tf32_matmul
from clinfonce.evaluation.knn import _faiss_gpu


class _Tiny(NamedTuple):
    model: nn.Module
    data: list[dict[str, torch.Tensor]]
    x: torch.Tensor
    y: torch.Tensor

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.model(images.float() / 255)
        return output


def _tiny_case() -> _Tiny:
    """60 images (3 classes by brightness), a seeded linear encoder, their features."""
    torch.manual_seed(0)
    labels = torch.arange(60) % 3
    images = (torch.randint(0, 120, (60, 1, 8, 8)) + 60 * labels[:, None, None, None]).to(
        torch.uint8
    )
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 8))
    data = [{"image": images[i], "label": labels[i]} for i in range(60)]
    case = _Tiny(model, data, torch.empty(0), torch.empty(0))
    x, y = extract_features(case.embed, data, batch_size=16, model=model)
    assert y is not None
    return case._replace(x=x, y=y)


def _flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flipped = torch.rand(len(images), 1, 1, 1, generator=generator) < 0.5
    return torch.where(flipped, images.flip(-1), images)


def test_knn_and_linear_numbers_are_those_of_the_cpu_code_before() -> None:
    """Measured with the evaluation code before features stayed on the device (commit
    1326d42): kNN and the logistic and SGD probes give the same accuracies (fractions of 20
    queries)."""
    case = _tiny_case()
    x, y = case.x, case.y
    assert x.device.type == "cpu" and x.dtype == torch.float32
    knn = knn_evaluate(x[:40], y[:40], x[40:], y[40:], ks=(1, 5, 20), topk=(1, 2))
    assert knn == {1: {1: 0.7, 2: 0.7}, 5: {1: 0.8, 2: 0.9}, 20: {1: 0.65, 2: 0.95}}
    probe = logistic_probe(x[:40], y[:40], x[40:], y[40:], cs=(0.1, 1.0, 10.0), seed=0)
    assert probe.to_dict() == {
        "probe": "logistic",
        "top1": 0.95,
        "top5": 1.0,
        "c": 1.0,
        "weight_decay": 0.025,
        "validation": {"0.1": 0.75, "1.0": 0.875, "10.0": 0.875},
        "val_fraction": 0.2,
    }
    sgd = sgd_probe(
        case.embed,
        case.data[:40],  # type: ignore[arg-type]
        x[40:],
        y[40:],
        num_classes=3,
        augment=_flip,
        epochs=5,
        lr=0.1,
        batch_size=8,
        model=case.model,
    )
    assert sgd.accuracy == {1: 0.95, 5: 1.0}


def test_kmeans_of_a_cpu_tensor_is_that_of_its_array() -> None:
    x = _tiny_case().x
    from_tensor = kmeans(x, 3, restarts=2, seed=0)
    from_array = kmeans(x.numpy(), 3, restarts=2, seed=0)
    np.testing.assert_array_equal(from_tensor.assignments, from_array.assignments)
    assert from_tensor.inertia == from_array.inertia


def test_device_kmeans_path_matches_the_host_torch_backend() -> None:
    """The GPU path (torch K-means on the points' device), run here on CPU tensors."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 16)) * 4
    points = np.concatenate([c + rng.normal(size=(30, 16)) for c in centres]).astype(np.float32)
    host = kmeans(points, 4, restarts=3, seed=1, backend="torch")
    device = _kmeans_on_device(torch.from_numpy(points), 4, True, 20, 3, 1, "k-means++", 20_000)
    np.testing.assert_array_equal(device.assignments, host.assignments)
    np.testing.assert_allclose(device.centroids, host.centroids, rtol=1e-5, atol=1e-6)
    assert device.inertia == pytest.approx(host.inertia, rel=1e-5)
    assert device.backend == "torch"


def test_no_gpu_means_no_faiss_gpu_and_no_tf32() -> None:
    assert _faiss_gpu(torch.device("cpu"), 20) is None
    if not torch.cuda.is_available():
        assert _faiss_gpu(torch.device("cuda"), 20) is None
    precision = torch.get_float32_matmul_precision()
    assert use_tf32_matmul("cpu") is False
    assert torch.get_float32_matmul_precision() == precision  # CPU results stay as they are


def test_module_device() -> None:
    assert module_device(None) is None
    assert module_device(nn.Flatten()) is None  # no parameters or buffers
    assert module_device(nn.BatchNorm1d(2)) == torch.device("cpu")


def test_features_stay_on_the_models_device() -> None:
    """Images go to the model's device and the features are not brought back (the "meta"
    device stands in for a GPU here: a copy to the CPU would fail)."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).to("meta")
    data = [{"image": torch.zeros(1, 2, 2), "label": torch.tensor(i % 2)} for i in range(5)]
    seen: list[torch.device] = []

    def embed(images: torch.Tensor) -> torch.Tensor:
        seen.append(images.device)
        output: torch.Tensor = model(images)
        return output

    x, y = extract_features(embed, data, batch_size=2, model=model)
    assert seen == [torch.device("meta")] * 3
    assert x.device.type == "meta" and x.shape == (5, 3)
    assert y is not None and y.device.type == "cpu" and y.tolist() == [0, 1, 0, 1, 0]
