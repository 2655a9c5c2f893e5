"""DDP trains exactly what one process trains on the same global batches.

Two gloo processes on CPU run a plain DistributedDataParallel loop around
:meth:`ContrastiveModule.compute_loss` (the objective Lightning's ``training_step`` uses),
fed by :class:`DistributedBatchSampler`; a single process runs the same loop on the whole
global batches. The global batch of 7 splits unevenly (4 + 3) across the ranks. The encoder is
swapped for a BatchNorm-free one: per-process BatchNorm statistics legitimately differ from
the global batch's (``train.sync_batchnorm`` fixes that), which would hide what is tested here,
the gathered loss plus DDP's gradient mean. The same processes then check K-means under DDP:
each rank embeds its share, the features are gathered, rank 0 clusters and broadcasts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from lightning.pytorch.strategies import DDPStrategy
from torch import nn
from torch.multiprocessing.spawn import spawn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from clinfonce.clusters.kmeans import kmeans
from clinfonce.data.datasets import ContrastiveDataset, EpochShuffleSampler
from clinfonce.data.prepare import prepare_data
from clinfonce.evaluation import extract_features
from clinfonce.models import ProjectionHead
from clinfonce.training import ContrastiveModule, ObjectiveTerm, TrainConfig, config_from_dict
from clinfonce.training.distributed import (
    DistributedBatchSampler,
    broadcast_object,
    extract_features_sharded,
    trainer_kwargs,
)
from clinfonce.training.run_directory import RunFiles

WORLD = 2
SAMPLES, GLOBAL_BATCH, VIEWS, EPOCHS = 23, 7, 2, 2  # 3 full global batches, a tail of 2 dropped
SIDE = 4


def _dataset() -> tuple[ContrastiveDataset, torch.Tensor]:
    """The samples and their cluster ids."""
    gen = torch.Generator().manual_seed(1)
    views = torch.randn(SAMPLES, VIEWS, 1, SIDE, SIDE, dtype=torch.float64, generator=gen)
    return ContrastiveDataset(views), torch.randint(0, 4, (SAMPLES,), generator=gen)


def _module() -> ContrastiveModule:
    cfg = config_from_dict({"model": {"channels_last": False}, "method": {"name": "simclr"}})
    terms = [
        ObjectiveTerm("clinfonce", "cluster", temperature=0.2),
        ObjectiveTerm("simclr", "instance", weight=0.5, temperature=0.5),
    ]
    module = ContrastiveModule(
        cfg, in_channels=1, image_size=SIDE, mean=[0.0], std=[1.0], terms=terms
    )
    torch.manual_seed(0)
    module.encoder = nn.Sequential(nn.Flatten(), nn.Linear(SIDE * SIDE, 6), nn.Tanh())
    module.heads = nn.ModuleDict({"main": ProjectionHead(6, 8, 5)})
    return module.double()


class _Loss(nn.Module):
    """DDP synchronises gradients of what runs through its ``forward``: the objective."""

    def __init__(self, module: ContrastiveModule) -> None:
        super().__init__()
        self.module = module

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        loss: torch.Tensor = self.module.compute_loss(batch)[0]
        return loss


def _train(distributed: bool) -> dict[str, Any]:
    """Train a few SGD steps; returns the parameters and the sample indices of every step."""
    module = _module()
    batches = DistributedBatchSampler(
        EpochShuffleSampler(SAMPLES, seed=3), GLOBAL_BATCH, drop_last=True
    )
    dataset, clusters = _dataset()
    module.set_assignment("cluster", clusters)  # cluster ids: looked up by index
    loader = DataLoader(dataset, batch_sampler=batches)
    model: nn.Module = _Loss(module)
    if distributed:
        model = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(
        module.parameters(), lr=0.5, momentum=0.9, nesterov=True, weight_decay=1e-3
    )
    seen = []
    for epoch in range(EPOCHS):
        batches.set_epoch(epoch)
        for batch in loader:
            optimizer.zero_grad()
            model(batch).backward()
            optimizer.step()
            seen.append(batch["index"])
    params = {name: p.detach().clone() for name, p in module.named_parameters()}
    return {"params": params, "seen": seen}


KMEANS_SAMPLES, KMEANS_K = 37, 4  # shares of 19 and 18


def _kmeans_data() -> tuple[ContrastiveDataset, torch.Tensor]:
    """Images around 4 well-separated centres, and the embedding weight."""
    gen = torch.Generator().manual_seed(2)
    centres = 3 * torch.randn(KMEANS_K, SIDE * SIDE, generator=gen)
    points = centres[torch.arange(KMEANS_SAMPLES) % KMEANS_K]
    points = points + 0.3 * torch.randn(KMEANS_SAMPLES, SIDE * SIDE, generator=gen)
    weight = torch.randn(SIDE * SIDE, 8, generator=gen)
    return ContrastiveDataset(points.view(-1, 1, SIDE, SIDE)), weight


def _cluster(sharded: bool) -> dict[str, Any]:
    """Embed (each rank its share when ``sharded``), cluster once on rank 0, broadcast."""
    dataset, weight = _kmeans_data()

    def embed(images: torch.Tensor) -> torch.Tensor:
        return F.normalize(images.flatten(1) @ weight, dim=1)

    if sharded:
        features = extract_features_sharded(embed, dataset, batch_size=5)
    else:
        features = extract_features(embed, dataset, batch_size=5)[0]
    ids = None
    if not dist.is_initialized() or dist.get_rank() == 0:
        ids = kmeans(features.numpy(), KMEANS_K, spherical=True, seed=7).assignments
    return {"features": features, "ids": broadcast_object(ids)}


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        result = {"train": _train(distributed=True), "kmeans": _cluster(sharded=True)}
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """What each of the two processes computed (spawned once for the tests below)."""
    if dist.is_available() and dist.is_initialized():
        pytest.skip("a process group is already initialized")
    out = tmp_path_factory.mktemp("ddp")
    spawn(_worker, args=(str(out / "init"), str(out)), nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def test_kmeans_assignments_agree_across_ranks_and_one_process(
    ranks: list[dict[str, Any]],
) -> None:
    single = _cluster(sharded=False)
    assert len(np.unique(single["ids"])) == KMEANS_K
    for rank in ranks:
        torch.testing.assert_close(rank["kmeans"]["features"], single["features"])
        np.testing.assert_array_equal(rank["kmeans"]["ids"], single["ids"])


def test_ddp_parameters_equal_single_process(ranks: list[dict[str, Any]]) -> None:
    trained = [r["train"] for r in ranks]
    single = _train(distributed=False)
    steps = EPOCHS * (SAMPLES // GLOBAL_BATCH)
    assert len(single["seen"]) == steps
    for step, indices in enumerate(single["seen"]):
        parts = [r["seen"][step] for r in trained]
        assert [len(p) for p in parts] == [4, 3]
        torch.testing.assert_close(torch.cat(parts), indices)  # the same global batches
    start = _module()
    for name, expected in single["params"].items():
        assert not torch.allclose(expected, dict(start.named_parameters())[name])  # it trained
        for rank in trained:
            torch.testing.assert_close(rank["params"][name], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize(("size", "batch"), [(23, 7), (20, 5), (5, 7), (4, 2)])
def test_every_sample_reaches_exactly_one_rank(world: int, size: int, batch: int) -> None:
    order = EpochShuffleSampler(size, seed=5)
    order.set_epoch(2)
    expected = list(order)
    samplers = [
        DistributedBatchSampler(order, batch, drop_last=False, rank=r, world_size=world)
        for r in range(world)
    ]
    per_rank = [list(s) for s in samplers]
    for sampler, batches in zip(samplers, per_rank, strict=True):
        assert len(sampler) == len(batches)
        assert all(batches)  # no empty batch reaches the collate function
    flat = [i for batches in per_rank for b in batches for i in b]
    assert sorted(flat) == list(range(size))  # every sample once: no padding, no duplicates
    # Rank order of each step's parts is the single-process batch.
    steps = [expected[s : s + batch] for s in range(0, size, batch)]
    for step, global_batch in enumerate(steps):
        parts = [b[step] for b in per_rank if step < len(b)]
        assert [i for p in parts for i in p] == global_batch
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_drop_last_keeps_ranks_in_step() -> None:
    order = EpochShuffleSampler(23, seed=0)
    samplers = [DistributedBatchSampler(order, 7, True, rank=r, world_size=3) for r in range(3)]
    per_rank = [list(s) for s in samplers]
    assert [len(b) for b in per_rank] == [3, 3, 3] == [len(s) for s in samplers]
    flat = sorted(i for b in per_rank for batch in b for i in batch)
    assert flat == sorted(list(order)[:21])  # the tail of 2 is dropped, nothing repeated


def test_order_follows_seed_and_epoch() -> None:
    def first_batch(seed: int, epoch: int) -> list[int]:
        sampler = DistributedBatchSampler(EpochShuffleSampler(50, seed), 10, True)
        sampler.set_epoch(epoch)
        return next(iter(sampler))

    assert first_batch(0, 1) == first_batch(0, 1)  # deterministic
    assert first_batch(0, 1) != first_batch(0, 2) != first_batch(1, 1)


def test_bad_arguments_are_rejected() -> None:
    order = EpochShuffleSampler(10, seed=0)
    with pytest.raises(ValueError, match="global batch"):
        list(DistributedBatchSampler(order, 2, True, rank=0, world_size=3))
    with pytest.raises(ValueError, match="rank must be"):
        DistributedBatchSampler(order, 2, True, rank=2, world_size=2)
    with pytest.raises(ValueError, match="both rank and world_size"):
        DistributedBatchSampler(order, 2, True, rank=0)
    with pytest.raises(ValueError, match="batch_size"):
        DistributedBatchSampler(order, 0, True)


def test_config_reaches_the_trainer() -> None:
    cfg = config_from_dict(
        overrides=[
            "method.name=simclr",
            "train.devices=2",
            "train.strategy=ddp",
            "train.accelerator=cpu",
        ]
    )
    trainer = L.Trainer(accelerator="cpu", logger=False, **trainer_kwargs(cfg.train))
    assert isinstance(trainer.strategy, DDPStrategy)
    assert trainer.world_size == 2 and trainer.num_nodes == 1
    assert trainer.strategy._layer_sync is None
    cfg.train.sync_batchnorm = True
    with pytest.raises(ValueError, match="SyncBatchNorm does not run on CPU"):
        trainer_kwargs(cfg.train)
    cfg.train.accelerator = "gpu"
    assert trainer_kwargs(cfg.train)["sync_batchnorm"] is True
    assert config_from_dict(overrides=["method.name=simclr", "train.devices=auto"]).train.devices
    with pytest.raises(ValueError, match=r"train\.num_nodes"):
        config_from_dict(overrides=["method.name=simclr", "train.num_nodes=0"])
    assert trainer_kwargs(TrainConfig())["use_distributed_sampler"] is False


def test_idle_heads_make_ddp_look_for_unused_parameters() -> None:
    idle = trainer_kwargs(TrainConfig(devices=2), idle_parameters=True)
    trainer = L.Trainer(accelerator="cpu", logger=False, **idle)
    assert isinstance(trainer.strategy, DDPStrategy)
    assert trainer.strategy._ddp_kwargs.get("find_unused_parameters") is True
    assert trainer_kwargs(TrainConfig(), idle_parameters=True)["strategy"] == "auto"  # 1 device
    assert trainer_kwargs(TrainConfig(devices=2))["strategy"] == "auto"


def test_cli_run_under_lightning_ddp_writes_once(tmp_path: Path) -> None:
    """``clinfonce train`` with 2 CPU processes end to end (Lightning launches the second
    process by re-running the command): K-means re-clustering, the kNN monitor and the run
    directory work under DDP, and only global rank zero writes the shared files."""
    config = {
        "data": {
            "dataset": "synthetic-attributes",
            "options": {"n_samples": 120, "image_size": 12},
        },
        "model": {"head_hidden": 16, "head_out": 8, "channels_last": False},
        "method": {"name": "kmeans-clinfonce", "warmup_epochs": 1},
        "kmeans": {"n_clusters": [3], "restarts": 1},
        "train": {"epochs": 3, "batch_size": 16, "progress_bar": False, "precision": "32-true"},
        "monitor": {"max_bank": 40, "max_queries": 20},
        "output": {"dir": str(tmp_path), "name": "ddp"},
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "clinfonce", "train", "--config", str(path)]
    devices = ["train.devices=2", "train.accelerator=cpu", "train.strategy=ddp"]
    done = subprocess.run(
        [*command, *devices],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("run directory:") == 1  # one process reports
    run = tmp_path / "ddp"
    summary = json.loads((run / "summary.json").read_text())
    train_samples = summary["train_samples"]
    assert summary["global_step"] == 3 * (train_samples // 16)  # global batches, not per rank
    assert 0 <= summary["metrics"]["monitor/knn_top1"] <= 1
    records = [json.loads(line) for line in (run / "kmeans.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]  # one line per clustering, not per rank
    assert all(r["num_clusters"] <= 3 for r in records)
    assert [p.name for p in (run / "logs" / "csv").iterdir()] == ["version_0"]
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["devices"] == 2
    assert (run / "checkpoints" / "last.ckpt").is_file()


class _Trainer:
    """What :class:`RunFiles` reads of a trainer."""

    def __init__(self, is_global_zero: bool) -> None:
        self.is_global_zero = is_global_zero


@pytest.mark.parametrize("global_zero", [True, False])
def test_only_global_rank_zero_writes_run_files(tmp_path: Path, global_zero: bool) -> None:
    cfg = config_from_dict(
        {
            "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 40}},
            "clusters": {"builder": "attributes", "params": {"columns": ["maker"]}},
        }
    )
    data = prepare_data(cfg.data, cfg.clusters)
    callback = RunFiles(cfg, data, tmp_path)
    callback.setup(_Trainer(global_zero), _module(), "fit")  # type: ignore[arg-type]
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == (["clusters.csv", "clusters.csv.json", "config.yaml"] if global_zero else [])
