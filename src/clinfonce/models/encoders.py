"""Encoders (image -> feature vector): a small CNN for CPU runs, every torchvision
classification model, and every timm model (``timm:NAME``), pretrained or not.

A classification model becomes an encoder by losing its classifier (its last linear layer for
torchvision, ``num_classes=0`` for timm); its feature size is read from the model. Inputs
with other than three channels get a first convolution of their own: a pretrained RGB one is
adapted by spreading the summed filters over the new channels, so a grayscale image sees the
filters the model learnt on the same image in colour. ResNets keep the CIFAR-style stem for
small images (``small_stem``).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

#: The prefix of timm model names.
TIMM_PREFIX = "timm:"
#: What :func:`pretrained_source` says of a model without pretrained weights.
NO_WEIGHTS = "(no pretrained weights)"
#: The small CNN's name.
SMALL_CNN = "small-cnn"
#: torchvision families built like a ResNet (``conv1`` then ``maxpool``): the ones with a
#: small-image stem.
RESNET_FAMILIES: tuple[str, ...] = ("resnet", "resnext", "wide_resnet")


class SmallCNN(nn.Module):
    """Four conv3x3-BN-ReLU blocks, max-pool after the first two, global average pool.

    The docs/method.md §8 encoder: widths 16, 32, 64, 128 give a 128-d feature.

    Examples:
        >>> SmallCNN(in_channels=1)(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 128])
    """

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for i, width in enumerate(widths):
            layers += [
                nn.Conv2d(previous, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            if i < 2:
                layers.append(nn.MaxPool2d(2))
            previous = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        self.out_dim: int = previous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


class TorchvisionEncoder(nn.Module):
    """A torchvision classification model without its classifier.

    Args:
        name: a torchvision classification model (``resnet18``, ``convnext_tiny``,
            ``efficientnet_b0``, ``vit_b_16``, ...).
        in_channels: input channels (the first convolution is adapted when not 3).
        small_stem: ResNets only: the CIFAR-style stem for 28-64 px images, a 3x3 stride-1
            first conv and no max-pool, so the last stage still sees a 4x4 map.
        pretrained: start from torchvision's default ImageNet weights (downloaded once into
            torch's cache; see :func:`pretrained_file`).
        image_size: the input side, for models built for one size (vision transformers).

    Examples:
        >>> net = TorchvisionEncoder("resnet18", in_channels=1, small_stem=True)
        >>> net(torch.zeros(2, 1, 32, 32)).shape, net.out_dim
        (torch.Size([2, 512]), 512)
    """

    def __init__(
        self,
        name: str,
        in_channels: int = 3,
        small_stem: bool = False,
        pretrained: bool = False,
        image_size: int = 224,
    ) -> None:
        super().__init__()
        from torchvision import models

        weights = models.get_model_weights(name).DEFAULT if pretrained else None
        options: dict[str, Any] = {}
        if name.startswith("vit_"):  # a vision transformer is built for one input size
            size = weights.transforms().crop_size[0] if weights is not None else image_size
            if size != image_size:
                raise ValueError(
                    f"{name}'s ImageNet weights take {size} px images, not {image_size}; set "
                    f"data.image_size={size}, or use timm:{name} models, which resize"
                )
            options["image_size"] = image_size
        with _offline_hint(name, pretrained):
            net = models.get_model(name, weights=weights, **options)
        if getattr(net, "aux_logits", False):  # googlenet, inception_v3: no auxiliary heads
            net.aux_logits = False
            for aux in ("aux1", "aux2", "AuxLogits"):
                if hasattr(net, aux):
                    setattr(net, aux, None)
        self.out_dim: int = _drop_last_linear(net, name)
        if small_stem:
            stem = net.conv1
            assert isinstance(stem, nn.Conv2d)
            net.conv1 = nn.Conv2d(in_channels, stem.out_channels, 3, 1, 1, bias=False)
            net.maxpool = nn.Identity()
        elif in_channels != 3:
            adapt_first_conv(net, in_channels)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


class TimmEncoder(nn.Module):
    """A timm model without its classifier (``num_classes=0``); timm adapts the stem.

    Args:
        name: the timm model name (without ``timm:``).
        in_channels: input channels (timm sums a pretrained RGB stem's filters).
        pretrained: start from the model's default pretrained weights (timm's own loading:
            the local file of :func:`pretrained_file` when it exists, else the Hugging Face
            Hub).
        image_size: the input side, for models built for one size (vision transformers).

    Examples:
        >>> net = TimmEncoder("test_vit", in_channels=1, image_size=32)  # doctest: +SKIP
        >>> net(torch.zeros(2, 1, 32, 32)).shape  # doctest: +SKIP
        torch.Size([2, 64])
    """

    def __init__(
        self, name: str, in_channels: int = 3, pretrained: bool = False, image_size: int = 224
    ) -> None:
        super().__init__()
        import timm

        options: dict[str, Any] = {"num_classes": 0, "in_chans": in_channels}
        local = pretrained_file(TIMM_PREFIX + name)
        if pretrained and local.is_file():
            options["pretrained_cfg_overlay"] = {"file": str(local)}
        with _offline_hint(TIMM_PREFIX + name, pretrained):
            try:
                net = timm.create_model(name, pretrained=pretrained, img_size=image_size, **options)
            except TypeError:  # a model for any input size takes no img_size
                net = timm.create_model(name, pretrained=pretrained, **options)
        self.net = net
        was_training = net.training
        with torch.no_grad():
            probe = net.eval()(torch.zeros(1, in_channels, image_size, image_size))
        net.train(was_training)
        self.out_dim: int = int(probe.shape[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


def _drop_last_linear(net: nn.Module, name: str) -> int:
    """Replace the model's last linear layer (its classifier) by the identity; its input size
    is the feature size."""
    last = None
    for module_name, module in net.named_modules():
        if isinstance(module, nn.Linear):
            last = module_name, module
    if last is None:
        raise ValueError(f"model.encoder={name}: no linear classifier to remove; pick another")
    path, linear = last
    _set_submodule(net, path, nn.Identity())
    return int(linear.in_features)


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent_path, _, child = path.rpartition(".")
    setattr(root.get_submodule(parent_path) if parent_path else root, child, module)


def adapt_first_conv(net: nn.Module, in_channels: int) -> None:
    """Give the model's first convolution ``in_channels`` inputs: each new channel gets the
    mean of the old filters, scaled so that a gray image replicated over the new channels
    sees the summed RGB filters (the response of the same image in colour).

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
        >>> summed = net[0].weight.detach().sum(1, keepdim=True)
        >>> adapt_first_conv(net, 1)
        >>> torch.allclose(net[0].weight, summed)
        True
    """
    path, old = next((n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d))
    new = nn.Conv2d(
        in_channels,
        old.out_channels,
        old.kernel_size,  # type: ignore[arg-type]
        stride=old.stride,  # type: ignore[arg-type]
        padding=old.padding,  # type: ignore[arg-type]
        dilation=old.dilation,  # type: ignore[arg-type]
        groups=old.groups,
        bias=old.bias is not None,
    )
    with torch.no_grad():
        new.weight.copy_(adapted_filters(old.weight, in_channels))
        if old.bias is not None and new.bias is not None:
            new.bias.copy_(old.bias)
    _set_submodule(net, path, new)


def adapted_filters(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Convolution filters ``[O, C, k, k]`` for ``in_channels`` inputs: the sum over the
    old channels spread evenly over the new ones."""
    return weight.sum(1, keepdim=True).div(in_channels).repeat(1, in_channels, 1, 1)


def build_encoder(
    name: str,
    in_channels: int = 3,
    small_stem: bool = False,
    *,
    pretrained: bool = False,
    image_size: int = 224,
) -> nn.Module:
    """Build an encoder by name; its feature size is ``encoder.out_dim``.

    Args:
        name: ``small-cnn``, a torchvision classification model or ``timm:NAME``.
        in_channels: input channels.
        small_stem: the CIFAR-style stem (ResNets).
        pretrained: the library's default ImageNet weights.
        image_size: the input side.

    Examples:
        >>> build_encoder("small-cnn", in_channels=3).out_dim
        128
        >>> build_encoder("mobilenet_v3_small", in_channels=1).out_dim
        1024
    """
    check_encoder(name, small_stem=small_stem, pretrained=pretrained)
    if name == SMALL_CNN:
        return SmallCNN(in_channels)
    if name.startswith(TIMM_PREFIX):
        return TimmEncoder(name[len(TIMM_PREFIX) :], in_channels, pretrained, image_size)
    return TorchvisionEncoder(name, in_channels, small_stem, pretrained, image_size)


@cache
def torchvision_names() -> tuple[str, ...]:
    """The torchvision classification models."""
    from torchvision import models

    return tuple(models.list_models(module=models))


@cache
def timm_names() -> tuple[str, ...]:
    """The timm models (empty when timm is not installed)."""
    try:
        import timm
    except ImportError:
        return ()
    return tuple(timm.list_models())


def check_encoder(name: str, *, small_stem: bool = False, pretrained: bool = False) -> None:
    """Refuse an encoder name that does not exist, naming the closest valid ones.

    Raises:
        ValueError: unknown name, a missing timm, or a setting the encoder cannot take.

    Examples:
        >>> check_encoder("resnet81")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: unknown model.encoder 'resnet81'; closest: resnet18, ...
    """
    if name == SMALL_CNN:
        if pretrained:
            raise ValueError(
                "small-cnn has no pretrained weights; set model.weights=none, or pick a "
                "pretrained encoder (resnet18, timm:NAME, ...)"
            )
        return
    if name.startswith(TIMM_PREFIX):
        if not timm_names():
            raise ValueError(f"model.encoder={name} needs timm: pip install 'clinfonce[timm]'")
        known = timm_names()
        bare = name[len(TIMM_PREFIX) :]
        if bare not in known:
            close = difflib.get_close_matches(bare, known, n=3, cutoff=0.6)
            raise ValueError(
                f"unknown model.encoder {name!r}; closest: "
                f"{', '.join(TIMM_PREFIX + c for c in close) or 'none'} "
                "(all: python -c 'import timm; print(timm.list_models())')"
            )
        if pretrained and pretrained_source(name) == NO_WEIGHTS:
            raise ValueError(f"{name} has no pretrained weights in timm; set model.weights=none")
    elif name not in torchvision_names():
        candidates = [SMALL_CNN, *torchvision_names(), *(TIMM_PREFIX + n for n in timm_names())]
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
        if not close and name in timm_names():
            close = [TIMM_PREFIX + name]
        raise ValueError(
            f"unknown model.encoder {name!r}; closest: {', '.join(close) or 'none'}, ... "
            "(small-cnn, any torchvision classification model, or timm:NAME)"
        )
    if small_stem and not has_small_stem(name):
        raise ValueError(
            f"model.small_stem applies to torchvision ResNets, not {name}; remove it "
            "(or set it to false)"
        )


def has_small_stem(name: str) -> bool:
    """Whether the encoder has a small-image stem (torchvision ResNets)."""
    return name.startswith(RESNET_FAMILIES) and name in torchvision_names()


def uses_small_stem(
    name: str, small_stem: bool | None, image_size: int, *, pretrained: bool
) -> bool:
    """``model.small_stem`` resolved: ``None`` means the small stem for a ResNet trained on
    images of at most 64 px without ImageNet weights (whose stem is made for 224 px).

    Examples:
        >>> uses_small_stem("resnet18", None, 32, pretrained=False)
        True
        >>> uses_small_stem("resnet18", None, 32, pretrained=True)
        False
    """
    if small_stem is not None:
        return small_stem
    return has_small_stem(name) and image_size <= 64 and not pretrained


def pretrained_normalisation(name: str) -> tuple[list[float], list[float]]:
    """The input mean and std (of ``[0, 1]`` RGB pixels) an encoder's pretrained weights
    were trained with."""
    if name.startswith(TIMM_PREFIX):
        from timm.models import get_pretrained_cfg

        config = get_pretrained_cfg(name[len(TIMM_PREFIX) :])
        if config is None:
            raise ValueError(f"{name} has no pretrained weights; set model.weights=none")
        return list(config.mean), list(config.std)
    from torchvision import models

    transforms = models.get_model_weights(name).DEFAULT.transforms()
    return list(transforms.mean), list(transforms.std)


def pretrained_file(name: str) -> Path:
    """Where an encoder's default pretrained weights are read from without internet.

    torchvision: its own cache, ``<torch hub dir>/checkpoints/<file of the URL>`` (also where
    a download lands). timm: ``<torch hub dir>/checkpoints/timm/<model>.safetensors``, the
    model's ``model.safetensors`` from the Hugging Face Hub. The hub dir is
    ``$TORCH_HOME/hub`` (default ``~/.cache/torch/hub``).
    """
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    if name.startswith(TIMM_PREFIX):
        return folder / "timm" / f"{name[len(TIMM_PREFIX) :]}.safetensors"
    from torchvision import models

    url = str(models.get_model_weights(name).DEFAULT.url)
    return folder / os.path.basename(urlparse(url).path)


def fetch_pretrained(name: str) -> None:
    """Make sure a torchvision encoder's ImageNet weights are in the local cache
    (downloading them when they are not).

    Raises:
        OSError: they cannot be downloaded; the message says which file goes where.
    """
    if name.startswith(TIMM_PREFIX) or pretrained_file(name).is_file():
        return
    from torchvision import models

    with _offline_hint(name, True):
        models.get_model_weights(name).DEFAULT.get_state_dict(progress=False)


def pretrained_source(name: str) -> str:
    """Where the default pretrained weights of an encoder are downloaded from."""
    if name.startswith(TIMM_PREFIX):
        from timm.models import get_pretrained_cfg

        config = get_pretrained_cfg(name[len(TIMM_PREFIX) :])
        hub = config.hf_hub_id if config is not None else None
        if hub:
            return f"https://huggingface.co/{hub}/resolve/main/model.safetensors"
        url = config.url if config is not None else ""
        return str(url) if isinstance(url, str) and url else NO_WEIGHTS
    from torchvision import models

    return str(models.get_model_weights(name).DEFAULT.url)


@contextmanager
def _offline_hint(name: str, pretrained: bool) -> Iterator[None]:
    """Turn a failed download of pretrained weights into the one line that fixes it."""
    try:
        yield
    except Exception as error:
        target = pretrained_file(name)
        if not pretrained or target.is_file():
            raise
        raise OSError(
            f"could not get the pretrained weights of {name} ({type(error).__name__}: {error}); "
            f"without internet, download {pretrained_source(name)} and save it as {target}"
        ) from error


def load_encoder_state(encoder: nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into ``encoder``, every encoder weight from it.

    Keys may carry a clinfonce module's ``encoder.`` prefix or lack the ``net.`` of the
    wrapped model (a torchvision or timm state dict); weights the encoder does not have (a
    classifier, a projection head) are left out. A first convolution saved for 3 channels
    is adapted to the encoder's (:func:`adapted_filters`).

    Raises:
        ValueError: naming the first missing or misshaped key.

    Examples:
        >>> source, target = build_encoder("small-cnn", 3), build_encoder("small-cnn", 1)
        >>> load_encoder_state(target, source.state_dict(), "example")
        >>> bad = {k: v for k, v in source.state_dict().items() if "net.4" not in k}
        >>> load_encoder_state(target, bad, "example")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: example: no weight for net.4.weight (of 24 the encoder needs); ...
    """
    wanted = encoder.state_dict()
    state = _matching_keys(state, wanted)
    loaded = {}
    for key, value in wanted.items():
        if key not in state:
            raise ValueError(
                f"{where}: no weight for {key} (of {len(wanted)} the encoder needs); "
                f"its keys start {', '.join(list(state)[:3]) or '(none)'}: are they weights "
                "of this model.encoder?"
            )
        given = state[key]
        if given.shape != value.shape and _adaptable_stem(given, value):
            given = adapted_filters(given, value.shape[1])
        if given.shape != value.shape:
            raise ValueError(
                f"{where}: {key} has shape {tuple(given.shape)}, the encoder needs "
                f"{tuple(value.shape)}: weights of another model.encoder, or another "
                "model.small_stem?"
            )
        loaded[key] = given
    encoder.load_state_dict(loaded)


def _adaptable_stem(given: torch.Tensor, wanted: torch.Tensor) -> bool:
    return (
        given.dim() == 4
        and given.shape[0] == wanted.shape[0]
        and given.shape[2:] == wanted.shape[2:]
    )


def _matching_keys(
    state: Mapping[str, torch.Tensor], wanted: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``state`` under the key naming that shares most keys with ``wanted``."""
    encoder_only = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    candidates = [
        dict(state),
        encoder_only,
        {f"net.{k}": v for k, v in state.items()},
    ]
    return max(candidates, key=lambda c: len(c.keys() & wanted.keys()))


def feature_dim(encoder: nn.Module) -> int:
    """The feature size of an encoder built by :func:`build_encoder`."""
    return int(getattr(encoder, "out_dim"))  # noqa: B009
