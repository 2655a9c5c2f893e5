"""Under two gloo processes the memory is the same on both and the weighted loss with memory
keys equals the single-process loss of the global batch (value and averaged gradients)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.multiprocessing.spawn import spawn

from clinfonce.losses.memory import ProjectionMemory
from clinfonce.losses.positives import Overlap, Positives
from clinfonce.losses.weighted import MemoryKeys, weighted_cl_infonce_loss

WORLD = 2
SPLIT = [3, 2]
TAGS = torch.tensor(
    [[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [0, 1, 1]], dtype=torch.bool
)  # of samples 0..4; the memory holds samples 5..9 with tags TAGS again


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    past = torch.nn.functional.normalize(
        torch.randn(5, 4, dtype=torch.float64, generator=gen), dim=1
    )
    x = torch.randn(5, 2, 6, dtype=torch.float64, generator=gen)
    weight = torch.randn(6, 4, dtype=torch.float64, generator=gen)
    return past, x, weight


def _step(rows: slice, rows_per_rank: list[int] | None = None) -> dict[str, Any]:
    past, x, weight = _inputs()
    memory = ProjectionMemory(size=4, dim=4).double()
    # gathered: every rank pushes all
    memory.push(past[rows], torch.arange(5, 10)[rows], rows_per_rank=rows_per_rank)
    keys, index, _ = memory.entries()
    rule = Overlap("jaccard")
    weight = weight.clone().requires_grad_()
    loss, _ = weighted_cl_infonce_loss(
        x[rows] @ weight,
        Positives(tags=TAGS[rows], overlap=rule),
        sample_index=torch.arange(5)[rows],
        memory=MemoryKeys(keys, Positives(tags=TAGS[index - 5], overlap=rule), index),
        temperature=0.4,
        gather_distributed=True,
        rows_per_rank=rows_per_rank,
    )
    loss.backward()
    return {"loss": loss.detach(), "grad": weight.grad, "keys": keys.clone(), "index": index}


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        rows = slice(sum(SPLIT[:rank]), sum(SPLIT[: rank + 1]))
        # The row counts exchanged, and given as a training loop gives them.
        steps = {"exchanged": _step(rows), "given": _step(rows, SPLIT)}
        torch.save(steps, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_memory_and_loss_under_two_processes(tmp_path: Path) -> None:
    spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    saved = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    for steps in saved:
        for key, value in steps["given"].items():
            torch.testing.assert_close(value, steps["exchanged"][key], rtol=0, atol=0)
    ranks = [steps["exchanged"] for steps in saved]
    single = _step(slice(None))
    assert single["index"].tolist() == [6, 7, 8, 9]  # size 4: the newest four kept
    for rank in ranks:
        assert torch.equal(rank["index"], single["index"])
        torch.testing.assert_close(rank["keys"], single["keys"])
    torch.testing.assert_close(torch.stack([r["loss"] for r in ranks]).mean(), single["loss"])
    torch.testing.assert_close(torch.stack([r["grad"] for r in ranks]).mean(0), single["grad"])
