"""Cl-InfoNCE loss vs. the common dense-mask SupCon-style implementation: time and peak memory.

Run:
    .venv/bin/python benchmarks/bench_loss.py                      # 256, 1024, 2048, 4096
    .venv/bin/python benchmarks/bench_loss.py --sizes 2048 --repeats 5
    python benchmarks/bench_loss.py --device cuda --sizes 4096,8192,12288   # on a GPU

Both losses get the same inputs: ``batch`` samples per view, 2 views, D = 128, cluster ids
drawn from 100 clusters. The table reports, per batch size, forward+backward wall time and
peak memory of each, their ratios (dense / ours: above 1 means ours is better) and the
absolute difference of the two loss values (they compute the same formula).

Timing: one warm-up, then the fastest of ``--repeats`` runs (the usual estimate of the
undisturbed time: on a shared machine load from other processes only ever adds time), the two
implementations interleaved in this process so that such load hits both alike. With several
threads and other busy processes, every parallel operation may wait for a descheduled thread,
which makes the numbers noisy; ``--threads 1`` is steadier. Rerun to see the spread.

Peak memory: on CPU torch has no allocator statistics and tracemalloc does not see its
allocations, so each (implementation, size) runs once in a fresh subprocess that builds the
inputs, runs a tiny warm-up (so that library code paged in and thread pools started on first
use are not counted), resets the kernel's peak-RSS mark (``/proc/self/clear_refs``), runs
forward+backward and reports ``VmHWM - VmRSS`` (peak minus resident size before the call) from
``/proc/self/status``. A fresh process keeps memory cached by the allocator from an earlier
run from hiding the peak. The figure includes the gradient of the features. Linux only;
elsewhere memory is shown as n/a.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from clinfonce.losses import cl_infonce_loss

VIEWS, DIM, CLUSTERS, TEMPERATURE = 2, 128, 100, 0.1
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def dense_supcon_loss(
    features: torch.Tensor, cluster_ids: torch.Tensor, temperature: float = TEMPERATURE
) -> torch.Tensor:
    """The widely used dense SupCon pattern: float masks over all view pairs, exp then log.

    Rows are view-major (all first views, then all second views); anchors without positives
    are left out of the mean, as in Cl-InfoNCE.
    """
    views = features.shape[1]
    z = F.normalize(torch.cat(features.unbind(dim=1)), dim=1)
    labels = cluster_ids.repeat(views)
    not_self = 1.0 - torch.eye(z.shape[0], dtype=z.dtype, device=z.device)
    positive = (labels[:, None] == labels[None, :]).to(z.dtype) * not_self
    logits = z @ z.T / temperature
    logits = logits - logits.max(dim=1, keepdim=True).values.detach()
    log_prob = logits - torch.log((torch.exp(logits) * not_self).sum(dim=1, keepdim=True))
    num_positives = positive.sum(dim=1)
    valid = num_positives > 0
    mean_log_prob_positive = (positive * log_prob).sum(dim=1)[valid] / num_positives[valid]
    return -mean_log_prob_positive.mean()


def ours(chunk_size: int | None) -> LossFn:
    def loss(features: torch.Tensor, cluster_ids: torch.Tensor) -> torch.Tensor:
        return cl_infonce_loss(
            features, cluster_ids, temperature=TEMPERATURE, chunk_size=chunk_size
        )

    return loss


def make_inputs(
    batch: int, seed: int = 0, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(batch, VIEWS, DIM, generator=gen)
    ids = torch.randint(0, CLUSTERS, (batch,), generator=gen)
    return features.to(device), ids.to(device)


def forward_backward(loss_fn: LossFn, features: torch.Tensor, ids: torch.Tensor) -> float:
    """Loss value; ``item()`` waits for the queued backward too, so a GPU is timed fully."""
    leaf = features.clone().requires_grad_()
    loss = loss_fn(leaf, ids)
    loss.backward()
    return loss.item()


def time_both(
    batch: int, repeats: int, implementations: dict[str, LossFn], device: str = "cpu"
) -> tuple[dict[str, float], dict[str, float]]:
    """Fastest time (s) and loss value per implementation, runs interleaved."""
    features, ids = make_inputs(batch, device=device)
    times: dict[str, list[float]] = {name: [] for name in implementations}
    values: dict[str, float] = {}
    for run in range(repeats + 1):
        for name, loss_fn in implementations.items():
            start = time.perf_counter()
            values[name] = forward_backward(loss_fn, features, ids)
            if run > 0:  # run 0 is the warm-up
                times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}, values


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory_child(name: str, batch: int, chunk_size: int | None) -> None:
    """Runs in a fresh process: print the peak RSS increase (MiB) of one forward+backward."""
    loss_fn = dense_supcon_loss if name == "dense" else ours(chunk_size)
    forward_backward(loss_fn, *make_inputs(8))  # page in code, start thread pools
    features, ids = make_inputs(batch)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak-RSS mark
    before = _status_kib("VmRSS")
    forward_backward(loss_fn, features, ids)
    print((_status_kib("VmHWM") - before) / 1024)


def peak_memory_cuda(loss_fn: LossFn, batch: int, device: str) -> float:
    """Peak CUDA memory (MiB) one forward+backward allocates beyond its inputs."""
    features, ids = make_inputs(batch, device=device)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    forward_backward(loss_fn, features, ids)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def peak_memory(name: str, batch: int, chunk_size: int | None, threads: int) -> float | None:
    if not Path("/proc/self/clear_refs").exists():
        return None
    command = [sys.executable, __file__, "--peak-memory-of", name, "--sizes", str(batch)]
    command += ["--threads", str(threads)]
    if chunk_size is not None:
        command += ["--chunk-size", str(chunk_size)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="256,1024,2048,4096", help="samples per view, comma-separated"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed runs per size (the fastest counts)"
    )
    parser.add_argument("--chunk-size", type=int, default=None, help="ours: rows per block")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", help="cpu or cuda (GPU check)")
    parser.add_argument("--peak-memory-of", choices=["dense", "ours"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.peak_memory_of:
        peak_memory_child(args.peak_memory_of, sizes[0], args.chunk_size)
        return 0

    implementations = {"dense": dense_supcon_loss, "ours": ours(args.chunk_size)}
    print(
        f"forward+backward, {VIEWS} views, D={DIM}, {CLUSTERS} clusters, tau={TEMPERATURE}, "
        f"{args.device}, {args.threads} threads, best of {args.repeats}; ratio = dense / ours; "
        f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    header = (
        "| batch/view | dense ms | ours ms | speed-up | dense MiB | ours MiB | memory ratio "
        "| abs. diff |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    worst = 0.0
    for batch in sizes:
        seconds, values = time_both(batch, args.repeats, implementations, args.device)
        memory = {
            name: peak_memory_cuda(fn, batch, args.device)
            if args.device.startswith("cuda")
            else peak_memory(name, batch, args.chunk_size, args.threads)
            for name, fn in implementations.items()
        }
        diff = abs(values["dense"] - values["ours"])
        worst = max(worst, diff / abs(values["dense"]))
        mem_cells = [f"{m:.0f}" if m is not None else "n/a" for m in memory.values()]
        dense_mem, ours_mem = memory["dense"], memory["ours"]
        mem_ratio = f"{dense_mem / ours_mem:.1f}x" if dense_mem and ours_mem else "n/a"
        print(
            f"| {batch} | {seconds['dense'] * 1e3:.0f} | {seconds['ours'] * 1e3:.0f} "
            f"| {seconds['dense'] / seconds['ours']:.1f}x | {mem_cells[0]} | {mem_cells[1]} "
            f"| {mem_ratio} | {diff:.1e} |",
            flush=True,
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if worst > 1e-4:
        print(f"MISMATCH: loss values differ by {worst:.1e} (relative)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
