"""Input-pipeline overhead of training: full Lightning step vs model alone.

Small CNN, 32 px RGB synthetic-attributes images, batch 256 (512 views), full §4 augmentation
(crop, flip, colour jitter, grayscale). Two rates, measured in one process, alternating so
that load from other processes hits both alike:

* model only: forward, loss and backward on pre-made, pre-normalised view tensors;
* full step: ``Trainer.fit`` as ``clinfonce train`` runs it: loading from the dataset,
  batched augmentation on the device, forward, loss, backward, optimiser and scheduler step,
  logging. Timed between consecutive batch ends by a callback (setup excluded).

Run: ``.venv/bin/python benchmarks/bench_train.py [--steps 12] [--rounds 3] [--compile]``.
Target: the full step reaches >= 80% of the model-only rate. ``--compile`` adds the full step
with ``model.compile=true`` (the whole step as one ``torch.compile`` graph; its first step,
which compiles, is left out). On a GPU (``benchmarks/gpu_check.sh``):
``--device cuda --encoder resnet50 --image-size 224 --batch 128 --precision bf16-mixed``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from clinfonce.data import load_source, prepare_data
from clinfonce.training import ContrastiveModule, config_from_dict, objective_terms
from clinfonce.training.loaders import train_loader

BATCH = 256
SIZE = 32


class StepTimer(Callback):
    """Time between consecutive batch ends: everything a step costs, including fetching the
    batch and augmenting it (Lightning does both before ``on_train_batch_start``)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._last: float | None = None

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.times.append(now - self._last)
        self._last = now


def model_only(
    module: ContrastiveModule,
    steps: int,
    bf16: bool,
    *,
    batch: int = BATCH,
    size: int = SIZE,
    device: str = "cpu",
) -> list[float]:
    """Seconds per forward + loss + backward on pre-made RGB views (the first step excluded;
    the module makes them channels-last when its config says so)."""
    module = module.to(device)
    views = torch.randn(batch, 2, 3, size, size, device=device)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            loss, _ = module.compute_loss(
                {"image": views, "index": torch.arange(batch, device=device)}
            )
        loss.backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times[1:]


def full_step(config: Any, data: Any, steps: int, accelerator: str = "cpu") -> list[float]:
    """Seconds per step of ``Trainer.fit`` as ``clinfonce train`` runs it."""
    module = ContrastiveModule(
        config,
        in_channels=data.channels,
        image_size=data.image_size,
        mean=data.mean,
        std=data.std,
        terms=objective_terms(config),
    )
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = L.Trainer(
            max_steps=steps,
            accelerator=accelerator,
            devices=1,
            precision=config.train.precision,
            logger=L.pytorch.loggers.CSVLogger(tmp),
            callbacks=[timer],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            log_every_n_steps=10,
        )
        trainer.fit(module, train_dataloaders=train_loader(config, data))
    return timer.times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="steps per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument(
        "--precision", default="32-true", choices=("32-true", "bf16-mixed"), help="of both"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (GPU check: cuda)")
    parser.add_argument("--encoder", default="small-cnn", help="e.g. resnet50")
    parser.add_argument("--image-size", type=int, default=SIZE, help="pixels (e.g. 224)")
    parser.add_argument("--batch", type=int, default=BATCH, help="samples per step")
    parser.add_argument("--compile", action="store_true", help="add the compiled full step")
    args = parser.parse_args()
    torch.manual_seed(0)
    large = args.image_size > 64  # ImageNet-style stem for large images
    config = config_from_dict(
        {
            "data": {"dataset": "synthetic-attributes"},
            "model": {"encoder": args.encoder, "small_stem": not large},
            "method": {"name": "simclr"},
            "train": {"batch_size": args.batch, "epochs": 1, "precision": args.precision},
        }
    )
    source = load_source(
        "synthetic-attributes",
        n_samples=args.batch * (args.steps + 2),
        image_size=args.image_size,
    )
    data = prepare_data(config.data, config.clusters, monitor_split=None, source=source)
    reference = ContrastiveModule(
        config,
        in_channels=3,
        image_size=args.image_size,
        mean=data.mean,
        std=data.std,
        terms=objective_terms(config),
    )
    accelerator = "gpu" if args.device.startswith("cuda") else "cpu"
    bf16 = args.precision == "bf16-mixed"
    compiled_config = config_from_dict(config.to_dict(), ["model.compile=true"])
    model_times, full_times, compiled_times = [], [], []
    for _ in range(args.rounds):
        model_times += model_only(
            reference, args.steps, bf16, batch=args.batch, size=args.image_size, device=args.device
        )
        full_times += full_step(config, data, args.steps, accelerator)
        if args.compile:
            compiled_times += full_step(compiled_config, data, args.steps, accelerator)[1:]
    model_rate = args.batch / statistics.median(model_times)
    full_rate = args.batch / statistics.median(full_times)
    where = (
        torch.cuda.get_device_name()
        if accelerator == "gpu"
        else f"{torch.get_num_threads()} threads"
    )
    print(
        f"{where}, batch {args.batch}, {args.image_size} px, {args.encoder}, 2 views, "
        f"{args.precision}, channels-last"
    )
    print(f"{'measurement':<44} {'images/s':>9} {'ratio':>7}")
    print(f"{'model only (fwd + loss + bwd, pre-made)':<44} {model_rate:>9.0f} {1:>7.2f}")
    print(
        f"{'full training step (Lightning)':<44} {full_rate:>9.0f} {full_rate / model_rate:>7.2f}"
    )
    if compiled_times:
        rate = args.batch / statistics.median(compiled_times)
        name = "full step, compiled (model.compile=true)"
        print(f"{name:<44} {rate:>9.0f} {rate / model_rate:>7.2f}")
    print(f"medians over {len(model_times)} / {len(full_times)} steps; target ratio >= 0.80")


if __name__ == "__main__":
    main()
