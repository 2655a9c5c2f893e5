"""Training rate of pretrained backbones: images/s of forward, loss and backward, one table.

Each encoder is built as ``clinfonce train`` builds it (``model.encoder``, ``model.weights``,
channels-last, two views per image) and timed on pre-made 224 px views under bf16
autocast, alternating between the encoders in rounds so that load from other processes hits
all alike; the ratio is against the first encoder. The weights are ImageNet's when the
library's file is in the local cache (see docs/backbones.md), else random: the rate does not
depend on the weights' values, and the table says which.

Run: ``.venv/bin/python benchmarks/bench_backbones.py --device cuda`` (the GPU check);
``--encoders resnet50,timm:vit_small_patch16_224 --size 224 --batch 128``.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from bench_train import model_only

from clinfonce.models import SMALL_CNN, pretrained_file
from clinfonce.training import ContrastiveModule, config_from_dict, objective_terms


def build(encoder: str, size: int, batch: int) -> tuple[ContrastiveModule, str]:
    """The module of a SimCLR run on ``size`` px RGB images, and the weights it holds."""
    cached = encoder != SMALL_CNN and pretrained_file(encoder).is_file()
    weights = "imagenet" if cached else "none"
    config = config_from_dict(
        {
            "model": {"encoder": encoder, "weights": weights, "small_stem": False},
            "method": {"name": "simclr"},
            "train": {"batch_size": batch, "epochs": 1},
        }
    )
    module = ContrastiveModule(
        config,
        in_channels=3,
        image_size=size,
        mean=[0.485, 0.456, 0.406],
        std=[0.229, 0.224, 0.225],
        terms=objective_terms(config),
    )
    return module, weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--encoders",
        default="resnet50,timm:vit_small_patch16_224",
        help="model.encoder values, comma-separated (the first is the baseline)",
    )
    parser.add_argument("--size", type=int, default=224, help="input side in px")
    parser.add_argument("--batch", type=int, default=128, help="images per step (2 views each)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (GPU check: cuda)")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    args = parser.parse_args()
    torch.manual_seed(0)
    names = [n.strip() for n in args.encoders.split(",") if n.strip()]
    built = {name: build(name, args.size, args.batch) for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            module = built[name][0]
            times[name] += model_only(
                module,
                args.steps,
                not args.fp32,
                batch=args.batch,
                size=args.size,
                device=args.device,
            )
            module.cpu()
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    precision = "fp32" if args.fp32 else "bf16 autocast"
    print(f"{where}, {args.size} px, batch {args.batch} x 2 views, {precision}, channels-last")
    print(f"{'encoder':<34} {'weights':>9} {'images/s':>9} {'ratio':>7}")
    base = None
    for name in names:
        rate = args.batch / statistics.median(times[name])
        base = base or rate
        print(f"{name:<34} {built[name][1]:>9} {rate:>9.0f} {rate / base:>7.2f}")
    print(f"medians over {args.rounds * args.steps} steps each (forward + loss + backward)")


if __name__ == "__main__":
    main()
