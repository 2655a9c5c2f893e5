"""Two gloo processes on CPU reproduce the single-process loss and gradients of the whole batch.

The global batch of 7 samples is split unevenly (4 + 3) and the ranks have different numbers
of valid anchors, the cases where a naive average of per-rank losses goes wrong. Each rank
computes ``features = x @ weight`` with a shared ``weight`` (a stand-in for the model), so the
test also checks what DistributedDataParallel would do: average the ranks' gradients.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.multiprocessing.spawn import spawn

from clinfonce.losses import cl_infonce_loss
from clinfonce.losses.distributed import distributed_world

WORLD = 2
SPLIT = [4, 3]
IDS = torch.tensor([0, 0, 1, 2, 2, 3, 4])  # with V = 1: valid anchors 3 on rank 0, 1 on rank 1


def _inputs(views: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(views)
    x = torch.randn(sum(SPLIT), views, 6, dtype=torch.float64, generator=gen)
    weight = torch.randn(6, 5, dtype=torch.float64, generator=gen)
    return x, weight


def _mask() -> torch.Tensor:
    mask = torch.rand(7, 7, generator=torch.Generator().manual_seed(0)) < 0.3
    mask[5] = False
    return mask


CASES = {  # name: (views, uses ids, uses mask)
    "clusters_one_view": (1, True, False),
    "mask_two_views": (2, False, True),
    "simclr_three_views": (3, False, False),
}


def _loss_and_grads(
    x: torch.Tensor,
    weight: torch.Tensor,
    ids: torch.Tensor | None,
    mask: torch.Tensor | None,
    rows_per_rank: list[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_()
    weight = weight.clone().requires_grad_()
    loss = cl_infonce_loss(
        x @ weight, ids, mask, temperature=0.3, gather_distributed=True, rows_per_rank=rows_per_rank
    )
    loss.backward()
    assert x.grad is not None and weight.grad is not None
    return loss.detach(), x.grad, weight.grad


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        assert distributed_world() == (rank, WORLD)
        rows = slice(sum(SPLIT[:rank]), sum(SPLIT[: rank + 1]))
        results = {}
        for name, (views, use_ids, use_mask) in CASES.items():
            x, weight = _inputs(views)
            ids = IDS[rows] if use_ids else None
            mask = _mask()[rows] if use_mask else None
            results[name] = _loss_and_grads(x[rows], weight, ids, mask)
            # The row counts given (as a training loop does) instead of exchanged: same result.
            results[f"{name}, rows given"] = _loss_and_grads(x[rows], weight, ids, mask, SPLIT)
        try:
            _loss_and_grads(x[rows], weight, None, None, SPLIT[::-1])
        except ValueError as error:
            results["wrong rows"] = str(error)
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_processes_match_single_process(tmp_path: Path) -> None:
    spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    assert os.environ.get("RANK") is None  # the test process itself stays single-process
    assert (
        "expected 2 row counts with this process's (4) at index 0; got [3, 4]"
        in ranks[0]["wrong rows"]
    )
    for name, (views, use_ids, use_mask) in CASES.items():
        x, weight = _inputs(views)
        loss, x_grad, weight_grad = _loss_and_grads(
            x, weight, IDS if use_ids else None, _mask() if use_mask else None
        )
        for r in ranks:
            for given, exchanged in zip(r[f"{name}, rows given"], r[name], strict=True):
                torch.testing.assert_close(given, exchanged, rtol=0, atol=0, msg=name)
        rank_losses = torch.stack([r[name][0] for r in ranks])
        # The mean of the per-rank losses is the loss of the whole batch ...
        torch.testing.assert_close(rank_losses.mean(), loss, msg=name)
        # ... so DDP's averaged parameter gradient equals the single-process gradient ...
        torch.testing.assert_close(
            torch.stack([r[name][2] for r in ranks]).mean(0), weight_grad, msg=name
        )
        # ... and each rank's input gradient is WORLD times its slice (DDP divides by WORLD).
        torch.testing.assert_close(torch.cat([r[name][1] for r in ranks]) / WORLD, x_grad, msg=name)


def test_without_process_group_gather_is_a_no_op() -> None:
    if dist.is_available() and dist.is_initialized():
        pytest.skip("a process group is already initialized")
    x, _ = _inputs(2)
    torch.testing.assert_close(
        cl_infonce_loss(x, gather_distributed=True), cl_infonce_loss(x, gather_distributed=False)
    )
