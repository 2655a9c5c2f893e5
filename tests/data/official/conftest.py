"""Fixture helpers for the official-layout tests: tiny real image files and dataset trees."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
OFFICIAL_METADATA = SHARED / "reference" / "cl-infonce-official-metadata"


def _write_images(root: Path, relative_paths: Iterable[str]) -> None:
    for k, relative in enumerate(relative_paths):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.new("RGB", (8, 8), color=(k * 37 % 256, k * 91 % 256, 128))
        image.save(path, format="PNG" if path.suffix.lower() == ".png" else "JPEG")


@pytest.fixture
def write_images() -> Callable[[Path, Iterable[str]], None]:
    """``write_images(root, ["a/b.jpg", ...])`` writes distinct 8x8 images."""
    return _write_images


@pytest.fixture
def official_metadata() -> Path:
    """The official Cl-InfoNCE metadata under ../shared; skips when it is absent."""
    if not OFFICIAL_METADATA.is_dir():
        pytest.skip(f"official Cl-InfoNCE metadata not found at {OFFICIAL_METADATA}")
    return OFFICIAL_METADATA


HELDOUT = {
    "ut-zappos50k": "val",
    "cub-200-2011": "test",
    "wider-attribute": "test",
    "imagenet100": "val",
}
"""The held-out split of each official dataset (the monitor's split in its configs)."""


def _official_tree(name: str, base: Path) -> tuple[Path, dict[str, Any]]:
    """Write the reader tests' tiny tree of dataset ``name`` under ``base``.

    Returns the dataset root and the loader options the tree needs. The trees come from the
    reader tests (this folder is on ``sys.path`` under pytest's default import mode), so each
    layout is written in one place only. UT-Zappos50K gains a ``SubCategory.*`` attribute, as
    the real ``meta-data-bin.csv`` has, so configs that drop those columns can be tried.
    """
    if name == "ut-zappos50k":
        import test_official_ut_zappos50k as zappos

        zappos.write_dataset(base, _write_images)
        meta_path = base / "ut-zap50k-data" / "meta-data-bin.csv"
        meta = pd.read_csv(meta_path, dtype={"CID": str})
        folders = {cid: folder for cid, folder, _ in zappos.ROWS}
        meta["SubCategory.Oxfords"] = [int("/Oxfords/" in folders[c]) for c in meta["CID"]]
        meta.to_csv(meta_path, index=False)
        return base, {}
    if name == "cub-200-2011":
        import test_official_cub200 as cub

        return cub.write_dataset(base, _write_images, names_at="attributes.txt"), {}
    if name == "wider-attribute":
        import test_official_wider_attribute as wider

        wider.write_dataset(base, _write_images)
        return base, {}
    if name == "imagenet100":
        import test_official_imagenet100 as imagenet

        imagenet.write_dataset(base, _write_images)
        return base, {"classes": list(imagenet.CLASSES)}
    raise ValueError(f"no test tree for {name!r}")


@pytest.fixture(params=sorted(HELDOUT))
def official_tree(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[str, Path, dict[str, Any], str]:
    """``(name, root, loader options, held-out split)`` of a tiny tree, per official dataset."""
    name = str(request.param)
    root, options = _official_tree(name, tmp_path)
    return name, root, options, HELDOUT[name]
