"""Encoders and heads: shapes, stems, channel options, names, weights from files."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.error import URLError

import pytest
import torch

from clinfonce.models import (
    ProjectionHead,
    SmallCNN,
    build_encoder,
    check_encoder,
    feature_dim,
    fetch_pretrained,
    load_encoder_state,
    pretrained_file,
    pretrained_normalisation,
)


def test_small_cnn_matches_the_reference_layout() -> None:
    net = SmallCNN(in_channels=1)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net.modules()) == 2
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 128)


@pytest.mark.parametrize("small_stem", [True, False])
def test_resnet18_stems(small_stem: bool) -> None:
    net = build_encoder("resnet18", in_channels=1, small_stem=small_stem)
    assert feature_dim(net) == 512
    assert net(torch.zeros(2, 1, 32, 32)).shape == (2, 512)
    assert net.net.conv1.kernel_size == ((3, 3) if small_stem else (7, 7))  # type: ignore[union-attr]


def test_unknown_encoder_names_the_closest_valid_ones() -> None:
    head = ProjectionHead(128, 64, 32)
    assert head(torch.zeros(5, 128)).shape == (5, 32)
    with pytest.raises(ValueError, match=r"closest: vgg1\d, vgg1\d"):
        build_encoder("vgg")
    with pytest.raises(ValueError, match="closest: timm:vit_small_patch16_224"):
        check_encoder("vit_small_patch16_224")  # a timm name without its prefix
    with pytest.raises(ValueError, match="closest: timm:vit_small_patch16_224"):
        check_encoder("timm:vit_smal_patch16_224")
    with pytest.raises(ValueError, match="small_stem applies to torchvision ResNets"):
        check_encoder("convnext_tiny", small_stem=True)
    with pytest.raises(ValueError, match="small-cnn has no pretrained weights"):
        check_encoder("small-cnn", pretrained=True)


@pytest.mark.parametrize(
    ("name", "dim"),
    [
        ("mobilenet_v3_small", 1024),
        ("efficientnet_b0", 1280),
        ("timm:test_vit", 64),
        ("timm:test_convnext", 64),
    ],
)
def test_families_lose_their_classifier(name: str, dim: int) -> None:
    net = build_encoder(name, in_channels=3, image_size=32).eval()
    assert feature_dim(net) == dim
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, dim)


def _seeded_resnet18() -> torch.nn.Module:
    from torchvision.models import resnet18

    torch.manual_seed(3)
    return resnet18().eval()


def test_a_torchvision_state_dict_loads_with_identical_outputs() -> None:
    source = _seeded_resnet18()
    encoder = build_encoder("resnet18").eval()
    load_encoder_state(encoder, source.state_dict(), "test")
    source.fc = torch.nn.Identity()
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(encoder(x), source(x))


def test_a_gray_image_through_the_adapted_stem_matches_it_in_colour() -> None:
    rgb = build_encoder("resnet18", in_channels=3).eval()
    load_encoder_state(rgb, _seeded_resnet18().state_dict(), "test")
    gray = build_encoder("resnet18", in_channels=1).eval()
    load_encoder_state(gray, rgb.state_dict(), "test")  # the 3-channel stem is adapted
    x = torch.rand(2, 1, 64, 64)
    torch.testing.assert_close(gray(x), rgb(x.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-5)


def test_missing_and_misshaped_keys_are_named() -> None:
    state = _seeded_resnet18().state_dict()
    encoder = build_encoder("resnet18")
    without = {k: v for k, v in state.items() if k != "layer2.0.bn1.weight"}
    with pytest.raises(ValueError, match=r"run.pt: no weight for net\.layer2\.0\.bn1\.weight"):
        load_encoder_state(encoder, without, "run.pt")
    misshaped = {**state, "layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1)}
    with pytest.raises(
        ValueError, match=r"net\.layer1\.0\.conv1\.weight has shape \(64, 64, 1, 1\)"
    ):
        load_encoder_state(encoder, misshaped, "run.pt")


def test_imagenet_weights_come_through_torchvisions_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    source = _seeded_resnet18()
    local = tmp_path / "resnet18-local.pth"
    torch.save(source.state_dict(), local)
    fetched: list[str] = []

    def download(url: str, dst: str, *args: object, **kwargs: object) -> None:
        fetched.append(url)
        shutil.copyfile(local, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    encoder = build_encoder("resnet18", pretrained=True).eval()
    assert fetched == ["https://download.pytorch.org/models/resnet18-f37072fd.pth"]
    assert pretrained_file("resnet18").is_file()  # cached where the offline hint says
    source.fc = torch.nn.Identity()
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(encoder(x), source(x))
    gray = build_encoder("resnet18", in_channels=1, pretrained=True).eval()  # now cached
    assert len(fetched) == 1
    y = torch.rand(2, 1, 64, 64)
    torch.testing.assert_close(gray(y), source(y.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-5)


def test_offline_imagenet_weights_say_which_file_goes_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url: str, *args: object, **kwargs: object) -> None:
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    target = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    message = (
        "without internet, download https://download.pytorch.org/models/resnet18-f37072fd.pth "
        f"and save it as {target}"
    )
    with pytest.raises(OSError, match=re.escape(message)):
        build_encoder("resnet18", pretrained=True)
    with pytest.raises(OSError, match=re.escape(message)):
        fetch_pretrained("resnet18")


def test_timm_imagenet_weights_from_the_local_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import timm
    from safetensors.torch import save_file

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(4)
    source = timm.create_model("test_vit", img_size=32).eval()
    target = pretrained_file("timm:test_vit")
    target.parent.mkdir(parents=True)
    save_file(source.state_dict(), str(target))
    gray = build_encoder("timm:test_vit", in_channels=1, pretrained=True, image_size=32).eval()
    source.reset_classifier(0)
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(gray(x), source(x.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-5)
    assert pretrained_normalisation("timm:test_vit") == ([0.5] * 3, [0.5] * 3)
