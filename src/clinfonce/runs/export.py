"""A run's encoder as a self-contained file: TorchScript or ONNX, checked against the run.

The exported graph takes ``float32 [B, C, S, S]`` pixels in ``[0, 1]`` at the run's input
size and returns the encoder features; the run's normalisation is inside it, so a
consumer needs only the input size and channel count (written to a JSON sidecar). Every
export is run once on a random batch against the run's own module and refused when the two
differ by more than the tolerance (1e-5 of the largest feature).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from clinfonce.outputs import atomic_write
from clinfonce.runs.load import LoadedRun

#: Export formats and their file suffixes.
FORMATS: dict[str, str] = {"torchscript": ".pt", "onnx": ".onnx"}
#: Largest accepted difference between the export and the run, as a fraction of the largest
#: feature (of 1 when the features are smaller): float32 kernels of two runtimes agree to a
#: few 1e-7 of the values they compute.
TOLERANCE = 1e-5


class NormalisedEncoder(nn.Module):
    """``[0, 1]`` pixels -> the run's normalisation -> encoder features."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, encoder: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("mean", mean.detach().clone().view(1, -1, 1, 1))
        self.register_buffer("std", std.detach().clone().view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.encoder((images - self.mean) / self.std)
        return out


@dataclass
class ExportResult:
    """What :func:`export_encoder` wrote.

    Attributes:
        path: the exported model.
        sidecar: its JSON description (input, output, checkpoint, check).
        max_difference: the largest difference from the run's module on the check batch,
            over the largest feature (or 1).
    """

    path: Path
    sidecar: Path
    max_difference: float


def export_path(run_dir: Path, fmt: str) -> Path:
    """The default file of an export: ``<run>/export/encoder<suffix>``."""
    return run_dir / "export" / f"encoder{FORMATS[fmt]}"


def export_encoder(run: LoadedRun, out: str | Path, fmt: str, *, seed: int = 0) -> ExportResult:
    """Write the run's encoder to ``out`` as ``fmt`` and check it against the run.

    Raises:
        ValueError: an unknown format, or an export that does not match the run.
        ImportError: ``onnx`` without the ONNX packages (``pip install 'clinfonce[onnx]'``).

    Examples:
        >>> from clinfonce.runs import load_run
        >>> export_encoder(load_run("runs/photos"), "encoder.pt", "torchscript")
        ... # doctest: +SKIP
    """
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    module = run.module.cpu().eval()
    channels, size = int(module.mean.shape[1]), int(module.image_size)
    wrapper = NormalisedEncoder(module.encoder, module.mean, module.std).eval()
    generator = torch.Generator().manual_seed(seed)
    example = torch.rand(2, channels, size, size, generator=generator)
    check = torch.rand(3, channels, size, size, generator=generator)  # another batch size
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        expected = module.embed(check)
        if fmt == "torchscript":
            got = _torchscript(wrapper, example, path, check)
        else:
            got = _onnx(wrapper, example, path, check)
    scale = max(1.0, float(expected.abs().max()))
    difference = float((got - expected).abs().max()) / scale
    if difference > TOLERANCE:
        path.unlink()
        raise ValueError(
            f"the {fmt} export differs from the run's encoder by up to {difference:.2e} of "
            f"the features' scale (more than {TOLERANCE}); not written"
        )
    sidecar = path.with_suffix(path.suffix + ".json")
    description = {
        "format": fmt,
        "file": str(path),
        "input": {
            "shape": ["batch", channels, size, size],
            "dtype": "float32",
            "range": "[0, 1] pixels (RGB or grayscale), resized and centre-cropped to size",
        },
        "normalisation": {
            "mean": module.mean.flatten().tolist(),
            "std": module.std.flatten().tolist(),
            "inside": True,
        },
        "output": {"shape": ["batch", int(expected.shape[1])], "features": "encoder output"},
        "checkpoint": str(run.checkpoint),
        "encoder": run.config.model.encoder,
        "check": {"max_difference_over_scale": difference, "scale": scale, "tolerance": TOLERANCE},
    }
    text = json.dumps(description, indent=2)
    atomic_write(sidecar, lambda temp: temp.write_text(text))
    return ExportResult(path, sidecar, difference)


def _torchscript(
    wrapper: nn.Module, example: torch.Tensor, path: Path, check: torch.Tensor
) -> torch.Tensor:
    with warnings.catch_warnings():  # TorchScript is deprecated in favour of torch.export,
        warnings.simplefilter("ignore", FutureWarning)  # but still what C++ and mobile load
        traced = torch.jit.trace(wrapper, example)
        atomic_write(path, lambda temp: torch.jit.save(traced, str(temp)))
        out: torch.Tensor = torch.jit.load(str(path))(check)
    return out


def _onnx(
    wrapper: nn.Module, example: torch.Tensor, path: Path, check: torch.Tensor
) -> torch.Tensor:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(
            "ONNX export needs the onnx, onnxscript and onnxruntime packages: "
            "pip install 'clinfonce[onnx]' (or use --format torchscript)"
        ) from exc
    batch = torch.export.Dim("batch")

    def write(temp: Path) -> None:
        torch.onnx.export(
            wrapper,
            (example,),
            str(temp),
            input_names=["images"],
            output_names=["features"],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            external_data=False,
            verbose=False,
        )

    atomic_write(path, write)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (features,) = session.run(["features"], {"images": check.numpy()})
    return torch.from_numpy(features)
