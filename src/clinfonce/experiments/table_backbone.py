"""The backbone ``clinfonce run`` trains, chosen from the images and the machine.

Small images on a CPU: the small CNN from scratch, which trains in minutes and needs no
download. Larger images, or a GPU: a pretrained ResNet (ResNet-18 on a CPU, ResNet-50 on a
GPU) fine-tuned at a tenth of the learning rate, since features learnt on ImageNet beat a
network trained from scratch on a few thousand photos. ``--encoder``/``--weights`` (or
``model.encoder=``/``model.weights=`` overrides) choose instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from clinfonce.models import SMALL_CNN, fetch_pretrained
from clinfonce.training.weights import read_encoder_weights

#: Images up to this side (px) count as small: the small CNN or a ResNet's small stem.
SMALL_SIDE = 64
#: The encoder's learning rate relative to the heads' when it starts from pretrained weights.
PRETRAINED_LR_SCALE = 0.1


@dataclass(frozen=True)
class BackboneChoice:
    """The ``model`` settings ``clinfonce run`` trains with, and why.

    Attributes:
        encoder: ``model.encoder``.
        weights: ``model.weights``.
        reason: one line for the start summary.
        automatic: neither the encoder nor the weights were given.
    """

    encoder: str
    weights: str
    reason: str
    automatic: bool = False

    def model_values(self) -> dict[str, Any]:
        """The ``model`` section's values (a slower backbone for pretrained weights)."""
        values: dict[str, Any] = {"encoder": self.encoder, "weights": self.weights}
        if self.weights != "none":
            values["backbone_lr_scale"] = PRETRAINED_LR_SCALE
        return values


def choose_backbone(
    image_side: int,
    *,
    gpu: bool,
    encoder: str | None = None,
    weights: str | None = None,
    overrides: Sequence[str] = (),
) -> BackboneChoice:
    """Pick the encoder and its weights from the input side and the device.

    Args:
        image_side: the model's input side in px.
        gpu: whether training runs on a GPU.
        encoder: ``--encoder`` (``None``: chosen here).
        weights: ``--weights`` (``None``: ImageNet weights for a pretrained-capable encoder
            on larger images or a GPU, else none). Weights of a clinfonce run bring its
            encoder when ``encoder`` is not given.
        overrides: the run's ``key=value`` overrides; ``model.encoder=``/``model.weights=``
            there count as given.

    Examples:
        >>> choose_backbone(28, gpu=False).encoder
        'small-cnn'
        >>> choice = choose_backbone(96, gpu=False)
        >>> choice.encoder, choice.weights
        ('resnet18', 'imagenet')
        >>> choose_backbone(28, gpu=False, encoder="resnet18").weights
        'none'
    """
    for override in overrides:
        key, _, value = override.partition("=")
        if key.strip() == "model.encoder":
            encoder = value.strip()
        elif key.strip() == "model.weights":
            weights = value.strip()
    small = image_side <= SMALL_SIDE
    where = f"{image_side} px images on a {'GPU' if gpu else 'CPU'}"
    given = [flag for flag, value in (("--encoder", encoder), ("--weights", weights)) if value]
    inherited = None  # a clinfonce run's weights bring its encoder
    if encoder is None and weights not in (None, "none", "imagenet"):
        inherited = read_encoder_weights(str(weights)).encoder
    if encoder is not None:
        why = where
    elif inherited is not None:
        encoder, why = inherited, f"{where}: the encoder of {weights}"
    elif small and not gpu and weights in (None, "none"):
        encoder, why = SMALL_CNN, f"{where}: the small CNN trains fast from scratch"
    else:
        encoder = "resnet50" if gpu else "resnet18"
        why = f"{where}: a pretrained ResNet adapts better than a network from scratch"
    if weights is None:
        pretrained = encoder != SMALL_CNN and (gpu or not small)
        weights = "imagenet" if pretrained else "none"
    chosen = f"as given ({' and '.join(given)})" if given else "--encoder/--weights to choose"
    return BackboneChoice(encoder, weights, f"{why} ({chosen})", automatic=not given)


def backbone_for_table(
    image_side: int, encoder: str | None, weights: str | None, overrides: Sequence[str]
) -> BackboneChoice:
    """:func:`choose_backbone` on this machine (a GPU when CUDA is available and the
    overrides do not ask for the CPU). ImageNet weights it chose itself are fetched now;
    when they cannot be (offline, not cached), the run trains the small CNN instead and the
    reason says which file to put where."""
    import torch

    cpu = any(o.replace(" ", "") == "train.accelerator=cpu" for o in overrides)
    gpu = torch.cuda.is_available() and not cpu
    choice = choose_backbone(
        image_side, gpu=gpu, encoder=encoder, weights=weights, overrides=overrides
    )
    if choice.automatic and choice.weights == "imagenet":
        try:
            fetch_pretrained(choice.encoder)
        except OSError as error:  # offline: the small CNN rather than no run at all
            return BackboneChoice(
                SMALL_CNN,
                "none",
                f"{image_side} px images, but {error}; the small CNN from scratch meanwhile",
            )
    return choice
