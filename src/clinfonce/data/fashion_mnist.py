"""Fashion-MNIST with the two-level hierarchy of Seo and Shin (2019) as auxiliary columns."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from clinfonce.data.idx import read_idx
from clinfonce.data.sources import ImageSource, register_source
from clinfonce.paths import PathOption

CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: Label -> level-2 group (6 groups): docs/method.md §7.
LEVEL2: tuple[str, ...] = (
    "tops",
    "bottoms",
    "tops",
    "dresses",
    "outers",
    "shoes",
    "tops",
    "shoes",
    "accessories",
    "shoes",
)
#: Label -> level-1 group (2 groups).
LEVEL1: tuple[str, ...] = tuple(
    "goods" if group in ("shoes", "accessories") else "clothes" for group in LEVEL2
)
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def search_dirs(root: str | Path | None = None) -> list[Path]:
    """Directories searched for the idx files, in order.

    ``root`` when given; else ``$CLINFONCE_DATA`` (itself and its ``fashion-mnist``
    sub-folder), then :data:`SYSTEM_DIR`. torchvision's ``FashionMNIST/raw`` layout under
    any of them is also accepted.
    """
    bases: list[Path] = []
    if root is not None:
        bases.append(Path(root))
    else:
        env = os.environ.get("CLINFONCE_DATA")
        if env:
            bases += [Path(env), Path(env) / "fashion-mnist"]
        bases.append(SYSTEM_DIR)
    return [d for base in bases for d in (base, base / "FashionMNIST" / "raw")]


def _idx_file(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def find_fashion_mnist(root: str | Path | None = None) -> Path | None:
    """The first searched directory holding all four idx files, or ``None``.

    Examples:
        >>> find_fashion_mnist()  # doctest: +SKIP
        PosixPath('/usr/share/datasets/fashion-mnist')
    """
    for directory in search_dirs(root):
        if all(_idx_file(directory, stem) for pair in _FILES.values() for stem in pair):
            return directory
    return None


def read_fashion_mnist(directory: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """Read train then test split from ``directory``.

    Returns:
        ``uint8 [70000, 1, 28, 28]`` images and the table ``id, label, level1, level2,
        split`` (ids ``train-00000`` .. ``test-09999``).

    Examples:
        >>> images, table = read_fashion_mnist("/usr/share/datasets/fashion-mnist")
        ... # doctest: +SKIP
        >>> table.columns.tolist()  # doctest: +SKIP
        ['id', 'label', 'level1', 'level2', 'split']
    """
    directory = Path(directory)
    images, frames = [], []
    for split, (image_stem, label_stem) in _FILES.items():
        image_file, label_file = _idx_file(directory, image_stem), _idx_file(directory, label_stem)
        if image_file is None or label_file is None:
            raise FileNotFoundError(
                f"{directory}: missing {image_stem}[.gz] or {label_stem}[.gz] (Fashion-MNIST)"
            )
        split_images, labels = read_idx(image_file), read_idx(label_file).astype(np.int64)
        if split_images.ndim != 3 or len(split_images) != len(labels):
            raise ValueError(
                f"{image_file}: expected [N, H, W] images and N labels, got images "
                f"{split_images.shape} and {len(labels)} labels in {label_file}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
            raise ValueError(f"{label_file}: labels must lie in 0..9")
        images.append(split_images[:, None])
        frames.append(
            pd.DataFrame(
                {
                    "id": [f"{split}-{i:05d}" for i in range(len(labels))],
                    "label": labels,
                    "level1": np.asarray(LEVEL1)[labels],
                    "level2": np.asarray(LEVEL2)[labels],
                    "split": split,
                }
            )
        )
    return np.concatenate(images), pd.concat(frames, ignore_index=True)


@register_source("fashion-mnist")
def load_fashion_mnist(root: PathOption | None = None, download: bool = False) -> ImageSource:
    """Fashion-MNIST (train + test rows, ``split`` column) from local idx files.

    Args:
        root: a directory with the idx files; default: see :func:`search_dirs`.
        download: when no local copy is found, let torchvision download one into ``root``
            (or ``$CLINFONCE_DATA``, else ``~/.cache/clinfonce``). Off by default.

    Examples:
        >>> source = load_fashion_mnist()  # doctest: +SKIP
        >>> source.images.shape  # doctest: +SKIP
        (70000, 1, 28, 28)
    """
    directory = find_fashion_mnist(root)
    if directory is None and download:
        directory = _download(root)
    if directory is None:
        searched = ", ".join(str(d) for d in search_dirs(root))
        raise FileNotFoundError(
            f"Fashion-MNIST idx files not found (searched: {searched}); install the Debian "
            "package dataset-fashion-mnist, point $CLINFONCE_DATA or data.options.root at the "
            "files, or allow a download with data.options.download=true"
        )
    images, table = read_fashion_mnist(directory)
    return ImageSource(
        "fashion-mnist",
        table,
        images=images,
        channels=1,
        description=f"Fashion-MNIST from {directory}",
    )


def _download(root: str | None) -> Path:
    from torchvision.datasets import FashionMNIST

    base = Path(root or os.environ.get("CLINFONCE_DATA") or Path.home() / ".cache" / "clinfonce")
    for train in (True, False):
        FashionMNIST(str(base), train=train, download=True)
    return base / "FashionMNIST" / "raw"
