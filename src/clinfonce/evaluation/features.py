"""Feature extraction from an encoder, batch by batch, without gradients."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


@contextmanager
def eval_mode(model: nn.Module | None) -> Iterator[None]:
    """Put ``model`` in eval mode (BatchNorm uses its running statistics, so a frozen
    encoder gives the same feature for an image whatever the batch) and restore its mode.

    Examples:
        >>> net = nn.BatchNorm1d(2)
        >>> with eval_mode(net):
        ...     net.training
        False
        >>> net.training
        True
    """
    if model is None:
        yield
        return
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def module_device(model: nn.Module | None) -> torch.device | None:
    """The device of ``model``'s first parameter or buffer (``None``: no model or none).

    Examples:
        >>> module_device(nn.Linear(2, 2))
        device(type='cpu')
    """
    if model is None:
        return None
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return None


def use_tf32_matmul(device: torch.device | str) -> bool:
    """Let float32 matrix products on ``device`` use TF32 (``torch.set_float32_matmul_precision
    ("high")``) where the hardware has it: CUDA devices of compute capability 8.0 or newer.

    Elsewhere nothing changes (on a CPU, ``high`` could switch to a bfloat16 algorithm, so
    CPU results stay as they are). Returns whether TF32 is now allowed.

    Examples:
        >>> use_tf32_matmul("cpu")
        False
    """
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    if torch.cuda.get_device_capability(device) < (8, 0):
        return False
    torch.set_float32_matmul_precision("high")
    return True


def extract_features(
    embed: Callable[[torch.Tensor], torch.Tensor],
    data: Dataset[dict[str, torch.Tensor]] | torch.Tensor,
    *,
    batch_size: int = 512,
    model: nn.Module | None = None,
    num_workers: int = 0,
    desc: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Features (float32) of every sample, and their labels when the data has them.

    The features stay where ``embed`` computes them (the model's device): nothing leaves a
    GPU batch by batch, and the kNN that follows runs there too. Images go to the model's
    device as each batch arrives; on CUDA the loader pins them so the copy overlaps the work.
    Labels stay on the CPU.

    Args:
        embed: images ``[B, C, H, W]`` -> features ``[B, D]`` (e.g.
            :meth:`clinfonce.training.ContrastiveModule.embed`).
        data: a dataset of ``{"image", "label"?}`` dicts, or an image tensor.
        batch_size: images per forward pass.
        model: put into eval mode for the extraction and restored afterwards; its device is
            where the images go.
        num_workers: loader workers (image files decode in parallel).
        desc: show a progress bar with this title (``None``: silent).

    Examples:
        >>> feats, labels = extract_features(lambda x: x.flatten(1).float(),
        ...                                  torch.zeros(5, 1, 2, 2, dtype=torch.uint8))
        >>> feats.shape, labels
        (torch.Size([5, 4]), None)
    """
    from tqdm.auto import tqdm  # type: ignore[import-untyped]

    device = module_device(model)
    pinned = device is not None and device.type == "cuda"
    features, labels = [], []
    with eval_mode(model), torch.no_grad():
        batches: Iterable[dict[str, torch.Tensor]]
        if isinstance(data, torch.Tensor):
            batches = [{"image": data[s : s + batch_size]} for s in range(0, len(data), batch_size)]
        else:
            batches = DataLoader(
                data,
                batch_size=batch_size,
                shuffle=False,
                num_workers=num_workers,
                pin_memory=pinned,
            )
        total = len(batches)  # type: ignore[arg-type]
        # None: a bar on a terminal only; in a log file its redraws become fragments.
        disable = True if desc is None else None
        for batch in tqdm(batches, total=total, desc=desc, unit="batch", disable=disable):
            images = batch["image"]
            if device is not None:
                images = images.to(device, non_blocking=pinned)
            features.append(embed(images).float())
            if "label" in batch:
                labels.append(batch["label"])
    if not features:
        raise ValueError("no samples to extract features from")
    return torch.cat(features), torch.cat(labels) if labels else None


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; any other name as given.

    Examples:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"--device {name!r} is not a device name (auto, cpu, cuda, ...)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device here; use --device cpu or auto")
    return device
