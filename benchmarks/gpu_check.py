"""The GPU check: every device measurement of the package in one table.

Each row is one measurement beside a baseline run in this same process, and their ratio
(above 1: the measured path is better than its baseline):

- ``loss``: Cl-InfoNCE forward + backward (time, peak memory) vs the dense SupCon pattern;
- ``train small-cnn``: full Lightning training step, compiled (``model.compile=true``) vs
  eager; skipped with a note while the config has no ``model.compile``;
- ``train resnet50``: full Lightning step vs the model alone (forward, loss, backward), at
  224 px, bf16 autocast, channels-last;
- ``backbones``: forward + loss + backward of pretrained backbones at 224 px, bf16: ViT-S/16
  (timm) vs ResNet-50 (ImageNet weights when cached, see docs/backbones.md; the rate does
  not depend on them);
- ``evaluation``: features of a frozen encoder and the weighted kNN on the device vs the CPU;
- ``kmeans``: the re-clustering's K-means of the embedding on the device (torch) vs the CPU
  (faiss);
- ``input``: images/s from 500x375 JPEGs: the prepared array, streamed files and GPU JPEG
  decoding vs the file path with full decode in the training process.
- ``methods``: correctness, not speed: every method's golden run (two tiny epochs in float64,
  ``tests/training/test_training_golden.py``) trained on the device, its largest loss
  difference from the recorded CPU losses, plus the memory, momentum memory and balanced
  sampler runs against the same run on the CPU. The augmentation's random numbers are drawn
  by a CPU generator for this check, so both devices see the same views.

Run ``bash benchmarks/gpu_check.sh`` on the GPU (about 5 minutes on one H200; ``--budget``
seconds bound the whole check: rows that would start after it are listed as skipped). Without
a CUDA device, or with ``--cpu-smoke``, every row runs at tiny sizes on the CPU in about a
minute, which checks the flow, not the speed. ``--only loss,kmeans`` runs some groups.

To add a measurement, write a function ``(Sizes, device) -> list[Row]`` and list it in
:data:`GROUPS`: its rows join the table.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
import bench_backbones
import bench_input
import bench_loss
import bench_train

from clinfonce.clusters.kmeans import _initial_centroids, kmeans
from clinfonce.data import load_source, prepare_data
from clinfonce.data.augment import AugmentParams, BatchAugment, MultiView, eval_resize_side
from clinfonce.data.augment import view_transform as training_views
from clinfonce.data.datasets import ArrayRows, ContrastiveDataset, ImageFiles
from clinfonce.data.prepare import PreparedData
from clinfonce.data.prepared import prepare_array
from clinfonce.evaluation import extract_features, knn_evaluate
from clinfonce.evaluation.features import use_tf32_matmul
from clinfonce.training import ContrastiveModule, config_from_dict, objective_terms
from clinfonce.training.config import ExperimentConfig

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Problem sizes: :data:`FULL` on a GPU, :data:`SMOKE` for a quick run on a CPU."""

    loss_batch: int
    loss_repeats: int
    train_steps: int
    small_batch: int
    resnet_batch: int
    resnet_size: int
    resnet_steps: int
    eval_bank: int
    eval_queries: int
    kmeans_points: int
    kmeans_k: int
    jpegs: int
    input_size: int
    input_batch: int
    input_batches: int


FULL = Sizes(
    loss_batch=8192,
    loss_repeats=5,
    train_steps=20,
    small_batch=512,
    resnet_batch=128,
    resnet_size=224,
    resnet_steps=10,
    eval_bank=20000,
    eval_queries=5000,
    kmeans_points=126_000,
    kmeans_k=2500,
    jpegs=3000,
    input_size=224,
    input_batch=256,
    input_batches=4,
)
SMOKE = Sizes(
    loss_batch=256,
    loss_repeats=2,
    train_steps=3,
    small_batch=32,
    resnet_batch=4,
    resnet_size=64,
    resnet_steps=2,
    eval_bank=600,
    eval_queries=200,
    kmeans_points=3000,
    kmeans_k=30,
    jpegs=48,
    input_size=32,
    input_batch=16,
    input_batches=2,
)


@dataclasses.dataclass
class Row:
    """One measurement and its baseline (``None``: not measured; ``note`` says why)."""

    group: str
    measurement: str
    value: float | None
    baseline: str
    reference: float | None
    unit: str
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """Above 1: better than the baseline (faster, less memory, more images/s)."""
        if not self.value or not self.reference:
            return None
        more_is_better = self.unit.endswith("/s")
        return self.value / self.reference if more_is_better else self.reference / self.value


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def print_table(rows: list[Row]) -> None:
    print(
        f"\n{'group':<16} {'measurement':<40} {'value':>9} {'baseline':<34} {'base':>9} "
        f"{'unit':<9} {'ratio':>6}  note"
    )
    for row in rows:
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        print(
            f"{row.group:<16} {row.measurement:<40} {_number(row.value):>9} {row.baseline:<34} "
            f"{_number(row.reference):>9} {row.unit:<9} {ratio:>6}  {row.note}"
        )


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(device: str, run: Callable[[], T]) -> tuple[float, T]:
    """Seconds of ``run()`` (the device's queued work included) and its result."""
    _synchronize(device)
    start = time.perf_counter()
    result = run()
    _synchronize(device)
    return time.perf_counter() - start, result


# --- rows -------------------------------------------------------------------------------


def loss_rows(sizes: Sizes, device: str) -> list[Row]:
    batch = sizes.loss_batch
    implementations = {"dense": bench_loss.dense_supcon_loss, "ours": bench_loss.ours(None)}
    times, values = bench_loss.time_both(batch, sizes.loss_repeats, implementations, device)
    gap = abs(values["ours"] - values["dense"])
    what = f"Cl-InfoNCE fwd+bwd, B={batch} x 2 views"
    rows = [
        Row(
            "loss",
            what,
            times["ours"],
            "dense SupCon pattern",
            times["dense"],
            "s",
            f"|loss difference| {gap:.1e}",
        )
    ]
    if device.startswith("cuda"):
        peaks = {
            name: bench_loss.peak_memory_cuda(fn, batch, device)
            for name, fn in implementations.items()
        }
        rows.append(Row("loss", "peak memory", peaks["ours"], "dense", peaks["dense"], "MiB"))
    return rows


def _train_config(encoder: str, batch: int, size: int, *overrides: str) -> ExperimentConfig:
    """SimCLR on synthetic images with ``key=value`` overrides."""
    values = {
        "data": {"dataset": "synthetic-attributes"},
        "model": {"encoder": encoder, "small_stem": size <= 64},
        "method": {"name": "simclr"},
        "train": {"batch_size": batch, "epochs": 1},
    }
    return config_from_dict(values, overrides)


def _train_data(config: ExperimentConfig, size: int, steps: int) -> PreparedData:
    """Synthetic images for ``steps`` steps of ``config``."""
    count = config.train.batch_size * (steps + 2)
    source = load_source("synthetic-attributes", n_samples=count, image_size=size)
    return prepare_data(config.data, config.clusters, monitor_split=None, source=source)


def _accelerator(device: str) -> str:
    return "gpu" if device.startswith("cuda") else "cpu"


def compile_rows(sizes: Sizes, device: str) -> list[Row]:
    batch, steps = sizes.small_batch, sizes.train_steps
    what = f"full step, batch {batch}, 32 px, compiled"
    try:
        compiled = _train_config("small-cnn", batch, 32, "model.compile=true")
    except ValueError as exc:
        if "compile" not in str(exc):
            raise
        note = "skipped: this version's config has no model.compile"
        return [Row("train small-cnn", what, None, "eager", None, "images/s", note)]
    eager = _train_config("small-cnn", batch, 32, "model.compile=false")
    data = _train_data(eager, 32, steps)
    accelerator = _accelerator(device)
    started = time.perf_counter()
    compiled_rate = batch / statistics.median(
        bench_train.full_step(compiled, data, steps, accelerator)
    )
    first = time.perf_counter() - started
    eager_rate = batch / statistics.median(bench_train.full_step(eager, data, steps, accelerator))
    note = f"compiled run incl. compile {first:.0f} s"
    return [Row("train small-cnn", what, compiled_rate, "eager", eager_rate, "images/s", note)]


def resnet_rows(sizes: Sizes, device: str) -> list[Row]:
    batch, size, steps = sizes.resnet_batch, sizes.resnet_size, sizes.resnet_steps
    config = _train_config("resnet50", batch, size, "train.precision=bf16-mixed")
    data = _train_data(config, size, steps)
    reference = ContrastiveModule(
        config,
        in_channels=3,
        image_size=size,
        mean=data.mean,
        std=data.std,
        terms=objective_terms(config),
    )
    alone = bench_train.model_only(reference, steps, True, batch=batch, size=size, device=device)
    full = bench_train.full_step(config, data, steps, _accelerator(device))
    what = f"resnet50 full step, {size} px, bf16, b{batch}"
    return [
        Row(
            "train resnet50",
            what,
            batch / statistics.median(full),
            "model alone (fwd+loss+bwd)",
            batch / statistics.median(alone),
            "images/s",
        )
    ]


def _evaluate_on(where: str, dataset: ContrastiveDataset, bank: int) -> tuple[float, float, float]:
    """Seconds of the features and of the kNN (k 20 and 200) on ``where``, and kNN top-1."""
    config = config_from_dict({"method": {"name": "simclr"}})
    torch.manual_seed(0)
    module = ContrastiveModule(
        config,
        in_channels=3,
        image_size=32,
        mean=[0.5] * 3,
        std=[0.25] * 3,
        terms=objective_terms(config),
    ).to(where)
    use_tf32_matmul(where)
    features_s, (x, y) = _timed(
        where, lambda: extract_features(module.embed, dataset, batch_size=512, model=module)
    )
    assert y is not None
    knn_s, knn = _timed(
        where,
        lambda: knn_evaluate(x[:bank], y[:bank], x[bank:], y[bank:], ks=(20, 200), device=where),
    )
    return features_s, knn_s, knn[20][1]


def evaluation_rows(sizes: Sizes, device: str) -> list[Row]:
    """Features of a frozen small CNN and the kNN of evaluation, on the device vs the CPU."""
    generator = torch.Generator().manual_seed(0)
    count = sizes.eval_bank + sizes.eval_queries
    images = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    dataset = ContrastiveDataset(images, labels=labels)
    here = _evaluate_on(device, dataset, sizes.eval_bank)
    cpu = here if device == "cpu" else _evaluate_on("cpu", dataset, sizes.eval_bank)
    note = f"kNN top-1 {here[2]:.4f} here, {cpu[2]:.4f} on the CPU"
    knn = f"kNN {sizes.eval_queries} x {sizes.eval_bank}, k 20+200, {device}"
    return [
        Row(
            "evaluation",
            f"features of {count} images, 32 px, {device}",
            here[0],
            "cpu",
            cpu[0],
            "s",
        ),
        Row("evaluation", knn, here[1], "cpu", cpu[1], "s", note),
    ]


def kmeans_rows(sizes: Sizes, device: str) -> list[Row]:
    """One re-clustering: spherical K-means of a clustered 128-d embedding, 20 iterations."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((sizes.kmeans_k, 128)).astype(np.float32)
    points = centres[rng.integers(0, sizes.kmeans_k, sizes.kmeans_points)]
    points += 0.5 * rng.standard_normal(points.shape).astype(np.float32)
    on_device = torch.from_numpy(points).to(device)
    device_s, ours = _timed(device, lambda: kmeans(on_device, sizes.kmeans_k))
    cpu_s, base = _timed("cpu", lambda: kmeans(points, sizes.kmeans_k))
    # The k-means++ seeding reads a host copy of its sample: its share of the device time.
    seeding_s, _ = _timed(
        device, lambda: _initial_centroids(on_device, sizes.kmeans_k, "k-means++", 20_000, 0)
    )
    note = (
        f"{ours.backend} vs {base.backend}; inertia ratio {ours.inertia / base.inertia:.4f}; "
        f"seeding {seeding_s:.2f} s"
    )
    what = f"K-means n={sizes.kmeans_points}, K={sizes.kmeans_k}, {device}"
    return [Row("kmeans", what, device_s, "cpu", cpu_s, "s", note)]


def input_rows(sizes: Sizes, device: str) -> list[Row]:
    """Input rates (no model) of the ways training reads image files."""
    size, batch, batches = sizes.input_size, sizes.input_batch, sizes.input_batches
    params = AugmentParams()
    augment = BatchAugment(params, size)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "jpegs"
        table = bench_input.make_jpegs(folder, sizes.jpegs)
        paths = [folder / name for name in pd.read_csv(table)["path"]]
        indices = np.arange(len(paths))
        before = MultiView(bench_input.views_before_this_change(params, size), views=2)
        previous = ContrastiveDataset(ImageFiles(paths, indices.tolist(), 3), transform=before)
        base = bench_input.loader_rate(previous, batch, batches, 0, device)
        started = time.perf_counter()
        prepared = prepare_array(paths, folder / "prepared", size, 3, progress=False)
        prepare_s = time.perf_counter() - started
        from_array = ContrastiveDataset(ArrayRows(prepared.images, indices))
        rates = {
            "prepared array + batch augment": bench_input.loader_rate(
                from_array, batch, batches, 0, device, on_device=lambda x: augment(x, 2)
            ),
        }
        draft = ImageFiles(paths, indices.tolist(), 3, min_side=eval_resize_side(size))
        streamed = ContrastiveDataset(draft, transform=MultiView(training_views(params, size), 2))
        rates["streamed, 2 workers, + colour"] = bench_input.loader_rate(
            streamed,
            batch,
            batches,
            2,
            device,
            on_device=lambda views: augment.colour(views.float().div_(255)),
        )
        if device.startswith("cuda"):
            rates["GPU JPEG decode + resize"] = bench_input.gpu_decode_rate(
                paths[: batches * batch], size, batch
            )
    baseline = "file path, full decode, 0 workers"
    for name, rate in rates.items():
        note = f"prepare {len(paths) / prepare_s:.0f} images/s" if "prepared" in name else ""
        rows.append(Row("input", f"{name}, {size} px", rate, baseline, base, "images/s", note))
    return rows


def backbone_rows(sizes: Sizes, device: str) -> list[Row]:
    batch, size, steps = sizes.resnet_batch, sizes.resnet_size, sizes.resnet_steps
    vit = "timm:vit_small_patch16_224" if sizes == FULL else "timm:test_vit"
    rates: dict[str, float] = {}
    held: dict[str, str] = {}
    for name in ("resnet50", vit):
        try:
            module, held[name] = bench_backbones.build(name, size, batch)
        except (ImportError, ValueError) as exc:  # timm missing: the ResNet row alone
            return [Row("backbones", f"{name}, {size} px", None, "-", None, "images/s", str(exc))]
        times = bench_train.model_only(module, steps, True, batch=batch, size=size, device=device)
        module.cpu()
        rates[name] = batch / statistics.median(times)
    what = f"{size} px, bf16, b{batch}, fwd+loss+bwd"
    return [
        Row(
            "backbones",
            f"resnet50 ({held['resnet50']}), {what}",
            rates["resnet50"],
            "-",
            None,
            "images/s",
        ),
        Row(
            "backbones",
            f"{vit.removeprefix('timm:')} ({held[vit]}), {what}",
            rates[vit],
            "resnet50",
            rates["resnet50"],
            "images/s",
        ),
    ]


def _golden_module() -> Any:
    """The golden test's module: its configs and ``run_method`` are what this group runs."""
    path = Path(__file__).parents[1] / "tests" / "training" / "test_training_golden.py"
    spec = importlib.util.spec_from_file_location("golden_methods_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _draws_on_the_cpu() -> Iterator[None]:
    """Make the augmentation's draws with a CPU generator (same seed), then move them: a
    CUDA generator gives other numbers, and this group compares devices."""
    original = BatchAugment.draw

    def draw(
        self: BatchAugment,
        rows: int,
        channels: int,
        crop: bool,
        generator: Any = None,
        device: Any = None,
    ) -> torch.Tensor:
        cpu = None
        if generator is not None:
            cpu = torch.Generator().manual_seed(generator.initial_seed())
        return original(self, rows, channels, crop, cpu, torch.device("cpu")).to(device)

    BatchAugment.draw = draw  # type: ignore[method-assign]
    try:
        yield
    finally:
        BatchAugment.draw = original  # type: ignore[method-assign]


#: Runs beyond the golden ones: (golden method, overrides), checked against the CPU here.
EXTRA_RUNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "clinfonce + memory 24": ("clinfonce", ("method.memory.size=24",)),
    "clinfonce + momentum memory 24": (
        "clinfonce",
        ("method.memory.size=24", "method.memory.momentum=0.9"),
    ),
    "kmeans-clinfonce + memory 24": ("kmeans-clinfonce", ("method.memory.size=24",)),
    "clinfonce, 4 per cluster": ("clinfonce", ("train.per_cluster=4",)),
}


def methods_rows(sizes: Sizes, device: str) -> list[Row]:
    """Every method's golden run on ``device`` vs the CPU (float64, same views)."""
    golden = _golden_module()
    recorded = json.loads(golden.GOLDEN_FILE.read_text())
    on_device = (f"train.accelerator={_accelerator(device)}",)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp, _draws_on_the_cpu():
        runs = {name: (name, ()) for name in golden.METHOD_SECTIONS} | EXTRA_RUNS
        for index, (name, (method, overrides)) in enumerate(runs.items()):
            out = Path(tmp) / str(index)
            got = golden.run_method(method, out / "device", on_device + overrides)
            if overrides:
                want = golden.run_method(method, out / "cpu", ("train.accelerator=cpu", *overrides))
                baseline = "same run on the CPU"
            else:
                want, baseline = recorded[method], "recorded CPU losses"
            gap = max(abs(a - b) for a, b in zip(got["losses"], want["losses"], strict=True))
            same_keys = all(got[key] == want[key] for key in ("checkpoint_keys", "state_dict_keys"))
            note = (
                f"{len(got['losses'])} steps; checkpoint keys {'equal' if same_keys else 'DIFFER'}"
            )
            rows.append(
                Row("methods", f"{name}, float64", gap, baseline, None, "|loss diff|", note)
            )
    return rows


#: Row groups in table order: name -> function.
GROUPS: dict[str, Callable[[Sizes, str], list[Row]]] = {
    "methods": methods_rows,
    "loss": loss_rows,
    "compile": compile_rows,
    "resnet50": resnet_rows,
    "backbones": backbone_rows,
    "evaluation": evaluation_rows,
    "kmeans": kmeans_rows,
    "input": input_rows,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument("--only", help=f"comma-separated groups of {', '.join(GROUPS)}")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for all rows")
    args = parser.parse_args(argv)
    smoke = args.cpu_smoke or not torch.cuda.is_available()
    device = "cpu" if smoke else "cuda"
    sizes = SMOKE if smoke else FULL
    names = args.only.split(",") if args.only else list(GROUPS)
    unknown = sorted(set(names) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; groups: {', '.join(GROUPS)}")
    where = torch.cuda.get_device_name() if device == "cuda" else "CPU smoke run (tiny sizes)"
    print(f"GPU check on {where}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    started = time.perf_counter()
    rows: list[Row] = []
    for name in names:
        if time.perf_counter() - started > args.budget:
            rows.append(Row(name, "(not run)", None, "", None, "", "skipped: over --budget"))
            continue
        begun = time.perf_counter()
        try:
            with contextlib.redirect_stdout(sys.stderr):  # Lightning's chatter off the table
                new = GROUPS[name](sizes, device)
        except Exception as exc:  # one failing row must not hide the others
            traceback.print_exc()
            new = [Row(name, "(failed)", None, "", None, "", f"{type(exc).__name__}: {exc}")]
        rows += new
        print_table(new)
        print(f"({name}: {time.perf_counter() - begun:.0f} s)", flush=True)
    print(f"\n== GPU check: all rows ({time.perf_counter() - started:.0f} s)")
    print_table(rows)
    return 1 if any(row.measurement == "(failed)" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
