"""Input pipeline from image files: decode bound, previous file path, prepared array, streaming.

A folder of generated JPEGs at 500x375 (the size of CUB-200 and UT-Zappos50K originals) is
read at each training resolution in four ways, all measured in this one process so that
load from other processes hits them alike and the ratios stay meaningful:

(a) the decode bound: Pillow decode + resize of one image at a time on one core, at full
    scale and in draft mode (reduced-scale JPEG decoding);
(b) the file path before prepared arrays: full decode and per-sample torchvision views
    (crop, flip, colour jitter, grayscale) in the training process (``num_workers: 0``);
(c) the prepared path: ``clinfonce prepare`` once (its time is reported), then batches read
    from the memory-mapped array (the loader's part), and augmented as whole batches on the
    device; as for (d), the augmentation shares the cores with the loader on a CPU-only
    machine and is nearly free on a GPU, so both rates are printed;
(d) the streamed path: draft-mode decode, per-sample crop and flip (in Pillow) in 1 and 2
    loader workers, the colour part batched on the device; measured with and without that
    colour part, which on a CPU-only machine competes with the workers for the same cores
    (on a GPU it is nearly free), so the loader-only rate is the one the goal is about;
(e) with ``--device cuda``: batches of JPEGs decoded on the GPU (torchvision.io).

Input-pipeline rates are images/s of batches of two augmented views, no model. Beside them:
the model-only step rate of each encoder and one full training epoch per path (``train``
as the CLI runs it, the kNN monitor off; ``--rounds`` alternates the paths and reports
medians), against the epoch from images held in memory.
Peak resident memory is the process's (and its loader workers') high-water mark so far.

Run: ``.venv/bin/python benchmarks/bench_input.py`` (2,000 images, 64 px, small CNN);
``--images 20000 --sizes 64,224 --encoders small-cnn,resnet18,resnet50`` for the full table.
Goals: (c) >= 20x (b); prepared epoch <= 1.25x in-memory epoch; (d) >= 0.85 x workers x (a).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader

from clinfonce.data import datasets
from clinfonce.data.augment import (
    AugmentParams,
    BatchAugment,
    MultiView,
    eval_resize_side,
    view_transform,
)
from clinfonce.data.datasets import ArrayRows, ContrastiveDataset, ImageFiles
from clinfonce.data.images import decode_image, decode_resized, pil_to_tensor
from clinfonce.data.prepared import prepare_array, usable_cores
from clinfonce.data.prepared_sources import entry_folder
from clinfonce.training import ContrastiveModule, config_from_dict, objective_terms, train

sys.path.insert(0, str(Path(__file__).parent))
from bench_train import model_only

WIDTH, HEIGHT = 500, 375
PREPARED = "prepared"


def make_jpegs(folder: Path, count: int) -> Path:
    """``count`` smooth random JPEGs (upsampled noise, which compresses like photos), made
    on all usable cores, and a table listing them; reused when the folder holds them."""
    table = folder / "meta.csv"
    if table.is_file() and len(pd.read_csv(table)) == count:
        return table
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{i:06d}.jpg" for i in range(count)]
    chunks = [(folder, i, names[i : i + 500]) for i in range(0, count, 500)]
    with ProcessPoolExecutor(usable_cores()) as pool:
        list(pool.map(write_jpegs, *zip(*chunks, strict=True)))
    pd.DataFrame({"path": names, "label": [i % 10 for i in range(count)]}).to_csv(
        table, index=False
    )
    return table


def write_jpegs(folder: Path, seed: int, names: list[str]) -> None:
    rng = np.random.default_rng(seed)
    for name in names:
        small = Image.fromarray(rng.integers(0, 256, (HEIGHT // 12, WIDTH // 12, 3), np.uint8))
        small.resize((WIDTH, HEIGHT), Image.BILINEAR).save(folder / name, quality=90)


def peak_memory_mib() -> float:
    """High-water resident memory of this process plus its largest finished child."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024


@contextlib.contextmanager
def full_scale_decoding() -> Iterator[None]:
    """The file path as it was: streamed files decoded at full scale (draft mode off)."""
    original = datasets.open_image

    def full(path: Path, channels: int, *, row: int | None = None, **_: Any) -> Image.Image:
        return original(path, channels, row=row)

    datasets.open_image = full  # type: ignore[assignment]
    try:
        yield
    finally:
        datasets.open_image = original


def decode_rate(paths: list[Path], size: int, draft: bool) -> float:
    """Images/s of decode + resize + centre crop, one image at a time, this thread only."""
    from torchvision.transforms.v2 import functional as tvf

    start = time.perf_counter()
    for path in paths:
        if draft:
            decode_resized(path, 3, size)
        else:
            image = tvf.resize(decode_image(path, 3), [size], antialias=True)
            tvf.center_crop(image, [size, size])
    return len(paths) / (time.perf_counter() - start)


def loader_rate(
    dataset: ContrastiveDataset,
    batch: int,
    batches: int,
    workers: int,
    device: str,
    on_device: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> float:
    """Images/s of ``batches`` batches of views, from the loader's start (worker start-up
    included, so that batches the workers prefetched are not counted as free)."""
    loader = DataLoader(
        dataset,
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.startswith("cuda"),
        generator=torch.Generator().manual_seed(0),
    )
    start = time.perf_counter()
    for step, sample in enumerate(loader, start=1):
        images = sample["image"].to(device, non_blocking=True)
        if on_device is not None:
            images = on_device(images)
        if step == batches:
            break
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return batch * step / (time.perf_counter() - start)


def views_before_this_change(params: AugmentParams, size: int) -> Callable[..., torch.Tensor]:
    """The file path's per-sample views as they were: the decoded image as a tensor, then
    torchvision's crop, flip, colour jitter and random grayscale per sample, in the training
    process (now crop and flip run in Pillow and the colour part batched on the device)."""
    from torchvision.transforms import v2

    jitter = v2.ColorJitter(*params.jitter)
    pipeline: Callable[..., torch.Tensor] = v2.Compose(
        [
            v2.Lambda(pil_to_tensor, Image.Image),
            v2.RandomResizedCrop(
                size, scale=tuple(params.crop_scale), ratio=tuple(params.crop_ratio)
            ),
            v2.RandomHorizontalFlip(params.flip_p),
            v2.RandomApply([jitter], p=params.jitter_p),
            v2.RandomGrayscale(params.grayscale_p),
        ]
    )
    return pipeline


def gpu_decode_rate(paths: list[Path], size: int, batch: int) -> float:
    """Images/s of JPEG batches decoded on the GPU (nvJPEG via torchvision) and resized
    there; file reads on the CPU included."""
    from torchvision.io import decode_jpeg, read_file
    from torchvision.transforms.v2 import functional as tvf

    def one_batch(chunk: list[Path]) -> None:
        decoded = decode_jpeg([read_file(str(p)) for p in chunk], device="cuda")
        for image in decoded:
            tvf.center_crop(tvf.resize(image, [size], antialias=True), [size, size])
        torch.cuda.synchronize()

    one_batch(paths[:batch])  # warm-up: CUDA context and nvJPEG handles
    start = time.perf_counter()
    for i in range(0, len(paths), batch):
        one_batch(paths[i : i + batch])
    return len(paths) / (time.perf_counter() - start)


class EpochTimer(L.Callback):
    """Seconds of each training epoch (loader start-up included, setup excluded)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def epoch_seconds(
    table: Path, size: int, encoder: str, options: dict[str, Any], train_settings: dict[str, Any]
) -> float:
    """One training epoch of SimCLR from ``table`` with these ``data.options``."""
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = config_from_dict(
            {
                "data": {
                    "dataset": "table",
                    "options": {"table": str(table), **options},
                    "image_size": size,
                },
                "model": {"encoder": encoder, "small_stem": size <= 64},
                "method": {"name": "simclr"},
                "monitor": {"enabled": False},
                "train": {"epochs": 1, "progress_bar": False, **train_settings},
                "output": {"dir": out, "name": "bench"},
            }
        )
        with contextlib.redirect_stdout(sys.stderr):
            train(config, callbacks=[timer])
    return timer.seconds[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="generated JPEGs")
    parser.add_argument("--sizes", default="64", help="training resolutions, e.g. 64,224")
    parser.add_argument("--encoders", default="small-cnn", help="e.g. small-cnn,resnet18")
    parser.add_argument("--batch", type=int, default=256, help="samples per batch")
    parser.add_argument("--batches", type=int, default=8, help="batches per input rate")
    parser.add_argument("--decode-sample", type=int, default=300, help="images for (a)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument(
        "--precision", default="32-true", choices=("32-true", "bf16-mixed"), help="of the model"
    )
    parser.add_argument("--folder", help="where the JPEGs go (default: a temporary folder)")
    parser.add_argument("--no-epochs", action="store_true", help="skip the training epochs")
    parser.add_argument("--rounds", type=int, default=1, help="epochs per path (median)")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder or tmp) / f"jpegs-{args.images}"
        start = time.perf_counter()
        table = make_jpegs(folder, args.images)
        print(
            f"{args.images} JPEGs of {WIDTH}x{HEIGHT} in {folder} "
            f"({time.perf_counter() - start:.0f} s to make or find)"
        )
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(
            f"device {args.device}, {usable_cores()} usable cores, load average {load:.2f}, "
            f"torch threads {torch.get_num_threads()}, batch {args.batch}, 2 views"
        )
        for size in (int(s) for s in args.sizes.split(",")):
            run_size(args, table, folder, size)


def run_size(args: argparse.Namespace, table: Path, folder: Path, size: int) -> None:
    paths = [folder / p for p in pd.read_csv(table)["path"]]
    rows = np.arange(len(paths))
    params = AugmentParams()
    rates: dict[str, float] = {}
    sample = paths[: args.decode_sample]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rates["(a) decode bound, full scale"] = decode_rate(sample, size, draft=False)
    rates["(a) decode bound, draft mode"] = decode_rate(sample, size, draft=True)
    torch.set_num_threads(threads)
    before = MultiView(views_before_this_change(params, size), views=2)
    previous = ContrastiveDataset(ImageFiles(paths, rows.tolist(), 3), transform=before)
    rates["(b) previous file path (full decode, 0 workers)"] = loader_rate(
        previous, args.batch, args.batches, 0, args.device
    )
    start = time.perf_counter()
    entry = entry_folder(folder / PREPARED, table, size, 3)  # the one training reuses
    prepared = prepare_array(paths, entry, size, 3, progress=False)
    prepare_s = time.perf_counter() - start
    augment = BatchAugment(params, size)  # on the device: whole batches, or colour only
    from_array = ContrastiveDataset(ArrayRows(prepared.images, rows))
    rates["(c) prepared array, loader only"] = loader_rate(
        from_array, args.batch, args.batches, 0, args.device
    )
    rates["(c) prepared array + batch augment"] = loader_rate(
        from_array,
        args.batch,
        args.batches,
        0,
        args.device,
        on_device=lambda images: augment(images, 2),
    )
    draft = ImageFiles(paths, rows.tolist(), 3, min_side=eval_resize_side(size))  # as training
    streamed = ContrastiveDataset(draft, transform=MultiView(view_transform(params, size), 2))
    for workers in (1, 2):
        rates[f"(d) streamed, {workers} worker(s), loader only"] = loader_rate(
            streamed, args.batch, args.batches, workers, args.device
        )
        rates[f"(d) streamed, {workers} worker(s), + colour"] = loader_rate(
            streamed,
            args.batch,
            args.batches,
            workers,
            args.device,
            on_device=lambda views: augment.colour(views.float().div_(255)),
        )
    if args.device.startswith("cuda"):
        rates["(e) GPU JPEG decode + resize (nvJPEG)"] = gpu_decode_rate(
            paths[: 8 * args.batch], size, args.batch
        )
    print(f"\n== {size} px: input pipeline (images/s; 'x (b)' = ratio to the previous file path)")
    print(
        f"prepare (all cores, {prepared.decoded} decoded): {prepare_s:.1f} s, "
        f"{len(paths) / prepare_s:.0f} images/s; peak memory {peak_memory_mib():.0f} MiB"
    )
    previous_rate = rates["(b) previous file path (full decode, 0 workers)"]
    for name, rate in rates.items():
        print(f"  {name:<48} {rate:>8.0f}  {rate / previous_rate:>6.2f} x (b)")
    bound = rates["(a) decode bound, draft mode"]
    for workers in (1, 2):
        alone = rates[f"(d) streamed, {workers} worker(s), loader only"] / (workers * bound)
        coloured = rates[f"(d) streamed, {workers} worker(s), + colour"] / (workers * bound)
        print(
            f"  streamed {workers} worker(s) / ({workers} x draft bound): loader only "
            f"{alone:.2f} (goal >= 0.85), + colour on {args.device} {coloured:.2f}"
        )
    loader_speedup = rates["(c) prepared array, loader only"] / previous_rate
    speedup = rates["(c) prepared array + batch augment"] / previous_rate
    print(
        f"  prepared / previous file path: loader only {loader_speedup:.1f} x (goal >= 20), "
        f"+ batch augment on {args.device} {speedup:.1f} x"
    )
    accelerator = "gpu" if args.device.startswith("cuda") else "cpu"
    for encoder in args.encoders.split(","):
        report_encoder(args, table, size, encoder, accelerator)


def report_encoder(
    args: argparse.Namespace, table: Path, size: int, encoder: str, accelerator: str
) -> None:
    config = config_from_dict(
        {
            "model": {"encoder": encoder, "small_stem": size <= 64},
            "method": {"name": "simclr"},
            "train": {"batch_size": args.batch},
        }
    )
    module = ContrastiveModule(
        config,
        in_channels=3,
        image_size=size,
        mean=[0.5] * 3,
        std=[0.25] * 3,
        terms=objective_terms(config),
    )
    bf16 = args.precision == "bf16-mixed"
    step = statistics.median(
        model_only(module, 3, bf16, batch=args.batch, size=size, device=args.device)
    )
    model_rate = args.batch / step
    print(f"  {encoder}: model only {model_rate:.0f} images/s")
    if args.no_epochs:
        return
    settings = {"batch_size": args.batch, "accelerator": accelerator, "precision": args.precision}
    epochs = {
        "in memory (cache: true)": ({"cache": True, "cache_size": size}, {}),
        "prepared array": ({"prepare": True, "prepare_dir": str(table.parent / PREPARED)}, {}),
        "files, full decode, 0 workers": ({}, {"num_workers": 0}),
        "streamed (draft, num_workers auto)": ({}, {}),
    }
    runs: dict[str, list[float]] = {name: [] for name in epochs}
    for _ in range(args.rounds):  # alternating, so that changes in load hit every path
        for name, (options, extra) in epochs.items():
            full = "full decode" in name
            with full_scale_decoding() if full else contextlib.nullcontext():
                runs[name].append(
                    epoch_seconds(table, size, encoder, options, {**settings, **extra})
                )
    seconds = {name: statistics.median(values) for name, values in runs.items()}
    reference = seconds["in memory (cache: true)"]
    steps = pd.read_csv(table).shape[0] // args.batch
    for name, value in seconds.items():
        rate = steps * args.batch / value
        print(
            f"    epoch {name:<40} {value:>6.1f} s  {value / reference:>5.2f} x in-memory  "
            f"{rate / model_rate:>5.2f} x model-only rate"
        )
    print(f"    peak memory so far {peak_memory_mib():.0f} MiB (goal: prepared epoch <= 1.25 x)")


if __name__ == "__main__":
    main()
