"""Where a new run's encoder starts (``model.weights``) and the normalisation that goes with it.

``none`` is a random encoder, ``imagenet`` the library's default pretrained weights (loaded
by :func:`clinfonce.models.build_encoder`), and anything else a path: a state dict
(``torch.save(model.state_dict())`` of torchvision, timm or a clinfonce encoder), a
clinfonce checkpoint (its encoder part) or a run directory (its ``checkpoints/last.ckpt``):
adapting a SimCLR run with metadata is ``model.weights=runs/simclr``. Weights from a run
bring that run's input normalisation, ImageNet weights ImageNet's statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from clinfonce.models import pretrained_normalisation
from clinfonce.training.checkpointing import read_checkpoint

if TYPE_CHECKING:  # the config schema includes the methods' settings, which build on this
    from clinfonce.training.config.schema import ModelConfig

#: ``model.weights`` values that are not paths.
NAMED_WEIGHTS: tuple[str, ...] = ("none", "imagenet")


@dataclass
class EncoderWeights:
    """Encoder weights read from a file.

    Attributes:
        state: the encoder's state dict (keys as in the file, prefixes matched on loading).
        where: the file, for error messages.
        mean: the normalisation the weights were trained with, when the file says.
        std: as ``mean``.
        encoder: the ``model.encoder`` of the run that trained them, when the file says.
    """

    state: dict[str, torch.Tensor]
    where: str
    mean: list[float] | None = None
    std: list[float] | None = None
    encoder: str | None = None


def read_encoder_weights(path: str | Path) -> EncoderWeights:
    """The encoder weights of a state dict, a clinfonce checkpoint or a run directory.

    Raises:
        FileNotFoundError: nothing there, or a run directory without ``last.ckpt``.
        ValueError: a file that holds no weights.

    Examples:
        >>> read_encoder_weights("runs/simclr").where  # doctest: +SKIP
        'runs/simclr/checkpoints/last.ckpt'
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "last.ckpt"
    if not path.is_file():
        raise FileNotFoundError(
            f"model.weights: no file at {path}; give none, imagenet, a state dict (.pt/.pth), "
            "a clinfonce checkpoint (.ckpt) or a run directory"
        )
    if path.suffix == ".ckpt":
        loaded: Any = read_checkpoint(path)
    else:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch reports a bad file with many exception types
            raise ValueError(f"model.weights: {path} is not a torch state dict ({exc})") from exc
    if not isinstance(loaded, dict):
        raise ValueError(f"model.weights: {path} holds a {type(loaded).__name__}, not weights")
    hparams = loaded.get("hyper_parameters", {})
    for key in ("state_dict", "model"):  # a Lightning checkpoint, a training script's dict
        if isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    state = {k: v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise ValueError(f"model.weights: {path} holds no tensors")
    mean, std = hparams.get("mean"), hparams.get("std")
    encoder = hparams.get("config", {}).get("model", {}).get("encoder")
    return EncoderWeights(
        state,
        str(path),
        [float(m) for m in mean] if mean is not None else None,
        [float(s) for s in std] if std is not None else None,
        str(encoder) if encoder is not None else None,
    )


def weights_normalisation(
    model: ModelConfig, channels: int
) -> tuple[list[float], list[float]] | None:
    """The input normalisation ``model.weights`` were trained with, for ``channels``-channel
    images, or ``None`` when it is unknown (random weights, a plain state dict): then the
    data's own statistics apply.

    One channel with RGB statistics gets their averages (the stem sums the RGB filters).

    Examples:
        >>> from clinfonce.training.config.schema import ModelConfig
        >>> weights_normalisation(ModelConfig(encoder="resnet18", weights="imagenet"), 3)
        ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    """
    if model.weights == "none":
        return None
    if model.weights == "imagenet":
        mean, std = pretrained_normalisation(model.encoder)
    else:
        weights = read_encoder_weights(model.weights)
        if weights.mean is None or weights.std is None:
            return None
        mean, std = weights.mean, weights.std
    if len(mean) == channels:
        return mean, std
    return [sum(mean) / len(mean)] * channels, [sum(std) / len(std)] * channels
