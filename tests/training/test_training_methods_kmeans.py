"""kmeans-clinfonce: K-means itself, the re-clustering callback, and the ids the loss sees."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans

from clinfonce.clusters.kmeans import kmeans
from clinfonce.runs.load import load_run
from clinfonce.training import config_from_dict, train
from clinfonce.training.methods.contrastive import ContrastiveModule
from clinfonce.training.methods.kmeans import kmeans_terms, kmeans_warmup
from clinfonce.training.methods.kmeans_reclustering import (
    KMeansReclustering,
    WeightAverage,
    clustering_features,
)
from clinfonce.training.methods.registry import objective_terms

KS = (3, 5)
TINY: dict[str, Any] = {
    "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 80, "image_size": 12}},
    "model": {"head_hidden": 32, "head_out": 16},
    "method": {"name": "kmeans-clinfonce", "warmup_epochs": 1},
    "kmeans": {"n_clusters": list(KS), "restarts": 2},
    "optim": {"lr": 0.05},
    "train": {"epochs": 3, "batch_size": 16, "progress_bar": False, "log_every_n_steps": 1},
    "monitor": {"max_bank": 40, "max_queries": 16},
}


def tiny_config(out: Path, name: str, **sections: Any) -> Any:
    values = {**TINY, **sections, "output": {"dir": str(out), "name": name}}
    return config_from_dict(values)


def blobs(spherical: bool) -> tuple[np.ndarray, np.ndarray]:
    """Five tight, far-apart groups of 40 points in 16-d (on the unit sphere if spherical)."""
    rng = np.random.default_rng(3)
    centres = np.eye(16)[:5] * (1.0 if spherical else 6.0)
    truth = np.repeat(np.arange(5), 40)
    x = centres[truth] + rng.normal(0, 0.05 if spherical else 0.5, (200, 16))
    if spherical:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), truth


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to relabelling: each label of ``a`` meets exactly one of ``b`` and back."""
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("backend", ["faiss", "torch"])
@pytest.mark.parametrize("spherical", [False, True])
def test_kmeans_matches_sklearn_and_brute_force(backend: str, spherical: bool) -> None:
    x, truth = blobs(spherical)
    ours = kmeans(x, 5, spherical=spherical, restarts=2, seed=0, init="k-means++", backend=backend)
    reference = KMeans(5, n_init=2, random_state=0).fit(x.astype(np.float64))
    assert same_partition(ours.assignments, reference.labels_)
    assert same_partition(ours.assignments, truth)
    assert ours.inertia == pytest.approx(reference.inertia_, rel=0.01)
    # brute force, float64: every point sits with its nearest returned centroid
    distances = ((x[:, None, :].astype(np.float64) - ours.centroids[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(ours.assignments, distances.argmin(1))
    assert ours.inertia == pytest.approx(distances.min(1).sum(), rel=1e-5)


def test_warmup_default_and_terms() -> None:
    assert [kmeans_warmup(None, e) for e in (1, 2, 8, 100)] == [0, 1, 1, 10]
    cfg = config_from_dict(
        {**TINY, "train": {"epochs": 20}, "method": {"name": "kmeans-clinfonce"}}
    )
    assert cfg.method.temperature == 0.2  # the method's own default (paper)
    terms = kmeans_terms(cfg)
    assert [(t.name, t.ids, t.weight, t.start_epoch, t.end_epoch) for t in terms] == [
        ("simclr", "instance", 1.0, 0, 2),
        ("kmeans-3", "kmeans-3", 0.5, 2, None),
        ("kmeans-5", "kmeans-5", 0.5, 2, None),
    ]
    explicit = config_from_dict(
        {**TINY, "method": {"name": "kmeans-clinfonce", "temperature": 0.1}}
    )
    assert explicit.method.temperature == 0.1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kmeans": {"n_clusters": [4, 4]}}, "distinct K"),
        ({"kmeans": {"n_clusters": []}}, "non-empty"),
        ({"kmeans": {"features": "pixels"}}, "kmeans.features"),
        ({"kmeans": {"init": "spectral"}}, "kmeans.init"),
        ({"kmeans": {"restarts": 0}}, "kmeans.restarts"),
        ({"kmeans": {"ema_decay": 1.0}}, "kmeans.ema_decay"),
        ({"clusters": {"builder": "attributes"}}, "makes its own clusters"),
    ],
)
def test_bad_kmeans_settings(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_dict({**TINY, **change})


def test_more_clusters_than_samples(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"K=500 exceeds the \d+ training samples"):
        train(tiny_config(tmp_path, "big", kmeans={"n_clusters": [500]}))


class IdsSpy(L.Callback):
    """Records the assignments at each epoch start (after the re-clustering callback) and,
    for every step, the batch's sample indices and the ids the objective receives."""

    def __init__(self) -> None:
        self.assignments: dict[int, dict[str, torch.Tensor]] = {}
        self.features: dict[int, np.ndarray] = {}
        self.steps: list[tuple[int, torch.Tensor, dict[str, Any]]] = []
        self._index = torch.empty(0)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        def hook(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
            ids = {k: None if v is None else v.clone() for k, v in args[1].items()}
            self.steps.append((trainer.current_epoch, self._index, ids))

        assert isinstance(pl_module, ContrastiveModule)
        pl_module.objective.register_forward_pre_hook(hook)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        assert isinstance(pl_module, ContrastiveModule)
        epoch = trainer.current_epoch
        self.assignments[epoch] = {k: v.clone() for k, v in pl_module.assignments.items()}
        images = trainer.train_dataloader.dataset.images  # type: ignore[union-attr]
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():  # independently of the callback: sample i is row i
            head = pl_module.heads["main"](pl_module.embed(images))
        pl_module.train(was_training)
        self.features[epoch] = F.normalize(head, dim=1).numpy()

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._index = batch["index"].cpu().clone()


def test_reclustering_sets_the_ids_the_loss_sees(tmp_path: Path) -> None:
    spy = IdsSpy()
    result = train(tiny_config(tmp_path, "km"), callbacks=[spy])
    n = len(result.data.train_rows)
    # warm-up epoch: SimCLR only, no K-means ids yet
    assert spy.assignments[0] == {}
    warm = [ids for epoch, _, ids in spy.steps if epoch == 0]
    assert warm and all(ids == {"instance": None} for ids in warm)
    for epoch in (1, 2):
        assignment = spy.assignments[epoch]
        assert sorted(assignment) == [f"kmeans-{k}" for k in KS]
        for k in KS:
            ids = assignment[f"kmeans-{k}"].numpy()
            assert ids.shape == (n,) and ids.min() >= 0 and ids.max() < k  # one id per sample
            # a Lloyd fixed point of the features of sample i (computed here): ids follow index
            x = spy.features[epoch]
            centroids = np.stack([x[ids == c].mean(0) for c in np.unique(ids)])
            centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
            nearest = np.unique(ids)[(x @ centroids.T).argmax(1)]
            np.testing.assert_array_equal(ids, nearest)
        steps = [(index, ids) for e, index, ids in spy.steps if e == epoch]
        assert steps
        for index, seen in steps:
            assert "instance" not in seen
            for k in KS:
                expected = assignment[f"kmeans-{k}"][index]
                torch.testing.assert_close(seen[f"kmeans-{k}"], expected)
                assert len(expected.unique()) < len(index)  # not instance ids any more
    metrics = result.metrics
    assert math.isfinite(metrics["train/loss"])
    for k in KS:
        assert 1 <= metrics[f"kmeans/k{k}/num_clusters"] <= k
        assert 0 <= metrics[f"kmeans/k{k}/nmi_previous"] <= 1  # logged from the 2nd clustering
        assert 0 <= metrics[f"kmeans/k{k}/nmi_labels"] <= 1
        assert metrics[f"kmeans/k{k}/size_min"] <= metrics[f"kmeans/k{k}/size_max"]
    lines = [
        json.loads(line) for line in (result.run_dir / "kmeans.jsonl").read_text().splitlines()
    ]
    assert [(r["epoch"], r["k"]) for r in lines] == [(1, 3), (1, 5), (2, 3), (2, 5)]
    loaded = load_run(result.run_dir)  # what `clinfonce evaluate` loads
    assert result.data.source.images is not None
    images = torch.from_numpy(result.data.source.images[:4])
    result.module.eval()
    torch.testing.assert_close(loaded.module.embed(images), result.module.embed(images))


class StopAfterSecondEpoch(L.Callback):
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 1:
            trainer.should_stop = True


@pytest.mark.parametrize("ema_decay", [None, 0.9])
def test_exact_resume_between_clusterings(tmp_path: Path, ema_decay: float | None) -> None:
    """Re-clustering every 2nd epoch: the resumed run must reuse the checkpoint's ids (and,
    clustering a weight average, continue the same average)."""
    every = {"n_clusters": list(KS), "restarts": 2, "every_n_epochs": 2, "ema_decay": ema_decay}
    off = {"enabled": False}
    full = train(tiny_config(tmp_path, "full", kmeans=every, monitor=off))
    stop = [StopAfterSecondEpoch()]
    cut = train(tiny_config(tmp_path, "cut", kmeans=every, monitor=off), callbacks=stop)
    resumed = train(tiny_config(tmp_path, "cut", kmeans=every, monitor=off), resume=cut.run_dir)
    a = torch.load(full.last_checkpoint, weights_only=False, map_location="cpu")
    b = torch.load(resumed.last_checkpoint, weights_only=False, map_location="cpu")
    assert a["global_step"] == b["global_step"]
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=0, atol=1e-6, msg=key)
    for name, ids in a["assignments"].items():
        torch.testing.assert_close(b["assignments"][name], ids)
    averages = [state for state in a["callbacks"].values() if "average" in state]
    assert len(averages) == (0 if ema_decay is None else 1)
    if averages:
        resumed_average = next(s for s in b["callbacks"].values() if "average" in s)
        assert resumed_average["updates"] == averages[0]["updates"] == a["global_step"]
        for x, y in zip(averages[0]["average"], resumed_average["average"], strict=True):
            torch.testing.assert_close(y, x, rtol=0, atol=1e-6)


def test_weight_average_against_a_loop_and_swapped_in() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    average = WeightAverage(0.8)
    reference: list[np.ndarray] = []
    for t in range(6):
        with torch.no_grad():
            for p in layer.parameters():
                p.copy_(torch.randn_like(p))
        average.update(layer)
        current = [p.detach().double().numpy().copy() for p in layer.parameters()]
        if t == 0:
            reference = current
        else:
            decay = min(0.8, (1 + t) / (10 + t))
            pairs = zip(reference, current, strict=True)
            reference = [decay * r + (1 - decay) * c for r, c in pairs]
    state = average.state_dict()
    for got, expected in zip(state["average"], reference, strict=True):
        np.testing.assert_allclose(got.double().numpy(), expected, rtol=1e-6, atol=1e-7)
    own = [p.detach().clone() for p in layer.parameters()]
    with average.swapped_in(layer):
        for p, expected in zip(layer.parameters(), reference, strict=True):
            np.testing.assert_allclose(p.detach().double().numpy(), expected, rtol=1e-6)
    for p, before in zip(layer.parameters(), own, strict=True):
        assert torch.equal(p.detach(), before)  # its own weights are back


def test_clustering_features_spaces() -> None:
    torch.manual_seed(0)
    cfg = config_from_dict({**TINY, "kmeans": {"n_clusters": [2]}})
    module = ContrastiveModule(
        cfg, in_channels=1, image_size=8, mean=[0.5], std=[0.25], terms=objective_terms(cfg)
    )
    images = torch.randint(0, 256, (6, 1, 8, 8), dtype=torch.uint8)
    dataset = [{"image": image} for image in images]
    module.eval()
    encoder = F.normalize(module.embed(images), dim=1)
    head = F.normalize(module.heads["main"](module.embed(images)), dim=1)
    for space, expected in (("encoder", encoder), ("head", head)):
        got = clustering_features(module, dataset, space=space, batch_size=4)  # type: ignore[arg-type]
        np.testing.assert_allclose(got, expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="space must be"):
        clustering_features(module, dataset, space="pixels")  # type: ignore[arg-type]


def test_due_epochs() -> None:
    callback = KMeansReclustering(list(range(9)), [2], start_epoch=2, every_n_epochs=3)  # type: ignore[arg-type]
    assert [e for e in range(10) if callback.due(e)] == [2, 5, 8]


WEIGHTED = [
    {"loss": "simclr", "end_epoch": 2},
    {"loss": "clinfonce", "clusters": "kmeans-3", "weight": 0.75, "start_epoch": 1},
    {"loss": "clinfonce", "clusters": "kmeans-5", "weight": 0.25, "start_epoch": 2},
]


def test_objective_list_weights_each_k(tmp_path: Path) -> None:
    method = {"name": "kmeans-clinfonce"}
    cfg = tiny_config(tmp_path, "weighted", method=method, objective=WEIGHTED)
    terms = [(t.name, t.ids, t.weight, t.start_epoch) for t in objective_terms(cfg)]
    assert terms == [
        ("simclr", "instance", 1.0, 0),
        ("clinfonce-kmeans-3", "kmeans-3", 0.75, 1),
        ("clinfonce-kmeans-5", "kmeans-5", 0.25, 2),
    ]
    spy = IdsSpy()
    result = train(cfg, callbacks=[spy])
    # re-clustering starts with the first K-means term (epoch 1), for every K
    assert spy.assignments[0] == {}
    assert sorted(spy.assignments[1]) == ["kmeans-3", "kmeans-5"]
    lines = (result.run_dir / "kmeans.jsonl").read_text().splitlines()
    assert [(json.loads(x)["epoch"], json.loads(x)["k"]) for x in lines] == [
        (1, 3),
        (1, 5),
        (2, 3),
        (2, 5),
    ]
    # each epoch's objective receives exactly the ids of its active terms
    active = {0: {"instance"}, 1: {"instance", "kmeans-3"}, 2: {"kmeans-3", "kmeans-5"}}
    for epoch, _, ids in spy.steps:
        assert set(ids) == active[epoch]


@pytest.mark.parametrize(
    ("objective", "method", "message"),
    [
        (WEIGHTED[:2], "kmeans-clinfonce", "kmeans-5 .* train no term"),
        ([{"loss": "clinfonce", "clusters": "kmeans-4"}], "kmeans-clinfonce", "no clustering"),
        (WEIGHTED, "clinfonce", "leave method.name at auto"),
    ],
)
def test_bad_kmeans_objectives(objective: list[Any], method: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_from_dict({**TINY, "method": {"name": method}, "objective": objective})
