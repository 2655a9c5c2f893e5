"""``synthetic-attributes``: procedural images with metadata attributes tied to the label.

The downstream label fixes the *shape* and *texture* of a drawn object (10 classes: 5 shapes x
solid/striped). Four metadata attributes (maker, material, region, tier: auxiliary
information, not drawn) are each a fixed function of the label, replaced by a uniformly random
value with probability ``noise``. Attribute clusters therefore carry partial information about
the label, ``0 < I(Z;T) < H(T)`` for ``0 < noise < 1``, tunable: the controlled test bed for
granularity studies, and the dataset used when Fashion-MNIST is absent. No download.

The drawing also varies in colour, size, position and background, uniformly at random and
independently of the label; these are in the table too, as auxiliary columns that tell
nothing about the label (``I(Z;T) = 0``) but everything about the pixels: clustering on them
shows what uninformative auxiliary information does. (Had the attributes been drawn, the
Cl-InfoNCE objective could be met by reading them off the pixels, a shortcut real semantic
attributes do not offer.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from clinfonce.data.sources import ImageSource, register_source

SHAPES: tuple[str, ...] = ("circle", "square", "diamond", "triangle", "cross")
TEXTURES: tuple[str, ...] = ("solid", "striped")
#: Metadata attribute -> its values; the value's index is what the label maps to.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "maker": ("acme", "globex", "initech", "umbrella"),
    "material": ("wood", "metal", "plastic"),
    "region": ("north", "south", "east", "west"),
    "tier": ("basic", "premium"),
}
#: Drawn appearance factor -> its values; random, independent of the label.
APPEARANCE: dict[str, tuple[str, ...]] = {
    "colour": ("red", "green", "blue", "yellow"),
    "size": ("small", "medium", "large"),
    "position": ("top-left", "top-right", "bottom-left", "bottom-right"),
    "background": ("dark", "light"),
}
_RGB = np.array([[0.9, 0.15, 0.15], [0.15, 0.8, 0.2], [0.2, 0.3, 0.95], [0.9, 0.85, 0.1]])
_RADIUS = np.array([0.32, 0.44, 0.56])
_OFFSET = np.array([[-0.22, -0.22], [0.22, -0.22], [-0.22, 0.22], [0.22, 0.22]])
_BACKGROUND = np.array([0.08, 0.55])


def attribute_maps(num_classes: int, seed: int) -> dict[str, np.ndarray]:
    """Label -> noiseless attribute value index, one random but fixed table per attribute.

    Each table hits every value when there are enough classes, so every attribute alone
    says something about the label and none says everything.
    """
    rng = np.random.default_rng([seed, 1])
    maps = {}
    for name, values in ATTRIBUTES.items():
        table = np.resize(np.arange(len(values)), num_classes)
        maps[name] = rng.permutation(table)
    return maps


def _shape_masks(shape: int, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Inside-the-shape masks ``[n, S, S]`` for offsets ``dx``, ``dy`` and radii ``r``."""
    name = SHAPES[shape]
    ax, ay = np.abs(dx), np.abs(dy)
    if name == "circle":
        inside = np.hypot(dx, dy) < r
    elif name == "square":
        inside = np.maximum(ax, ay) < 0.8 * r
    elif name == "diamond":
        inside = ax + ay < r
    elif name == "triangle":
        inside = (dy < 0.6 * r) & (dy > 2.0 * ax - r)
    else:  # cross
        arm = 0.3 * r
        inside = ((ax < arm) & (ay < r)) | ((ay < arm) & (ax < r))
    return np.asarray(inside, dtype=bool)


def render(
    labels: np.ndarray,
    appearance: dict[str, np.ndarray],
    image_size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw ``uint8 [N, 3, S, S]`` images for labels and appearance value indices."""
    n = len(labels)
    f32 = np.float32
    grid = ((np.arange(image_size, dtype=f32) + 0.5) / image_size * 2 - 1).astype(f32)
    xs, ys = grid[None, None, :], grid[None, :, None]
    centre = (_OFFSET[appearance["position"]] + rng.normal(0, 0.04, (n, 2))).astype(f32)
    radius = (_RADIUS[appearance["size"]] * rng.uniform(0.9, 1.1, n)).astype(f32)
    dx, dy = xs - centre[:, 0, None, None], ys - centre[:, 1, None, None]
    mask = np.zeros((n, image_size, image_size), dtype=bool)
    shapes, textures = labels // len(TEXTURES), labels % len(TEXTURES)
    for s in range(len(SHAPES)):
        rows = shapes == s
        mask[rows] = _shape_masks(s, dx[rows], dy[rows], radius[rows, None, None])
    # Striped objects: alternate full and dimmed colour in diagonal stripes about 2 px wide,
    # so the outline stays visible and only the texture differs.
    stripes = np.sin((dx + dy) * (np.pi * image_size / 4)) > 0
    dim = (textures == 1)[:, None, None] & ~stripes
    shade = np.where(dim, f32(0.45), f32(1.0))[:, None]
    background = _BACKGROUND[appearance["background"]].astype(f32)[:, None, None, None]
    colour = _RGB[appearance["colour"]].astype(f32)[:, :, None, None]
    image = np.where(mask[:, None], colour * shade, background)
    image += f32(0.14) * (rng.random(image.shape, dtype=f32) - f32(0.5))  # pixel noise
    return np.asarray(np.clip(np.rint(image * 255), 0, 255), dtype=np.uint8)


@register_source("synthetic-attributes")
def make_synthetic_attributes(
    n_samples: int = 12000,
    image_size: int = 32,
    num_classes: int = 10,
    noise: float = 0.3,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> ImageSource:
    """Generate the dataset.

    Table columns: ``id, label``, the metadata attributes (:data:`ATTRIBUTES`), the drawn
    appearance (:data:`APPEARANCE`), ``split``.

    Args:
        n_samples: images in total (train + test).
        image_size: side in pixels (>= 12).
        num_classes: 2..10 labels (shape x texture).
        noise: probability that each attribute is replaced by a uniformly random value;
            0 makes the joint attributes a function of the label, 1 makes them independent.
        test_fraction: fraction of rows in the ``test`` split (the rest is ``train``).
        seed: generation seed; the label -> attribute tables depend on it too.

    Examples:
        >>> source = make_synthetic_attributes(n_samples=50, image_size=16)
        >>> source.images.shape, source.table.columns[2:6].tolist()
        ((50, 3, 16, 16), ['maker', 'material', 'region', 'tier'])
    """
    if not 2 <= num_classes <= len(SHAPES) * len(TEXTURES):
        raise ValueError(f"data.options.num_classes must be in 2..10, got {num_classes}")
    if not 0.0 <= noise <= 1.0 or not 0.0 <= test_fraction < 1.0:
        raise ValueError("data.options.noise must be in [0, 1] and test_fraction in [0, 1)")
    if image_size < 12 or n_samples < 1:
        raise ValueError("data.options.image_size must be >= 12 and n_samples >= 1")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n_samples)
    values = {}
    for name, table in attribute_maps(num_classes, seed).items():
        clean = table[labels]
        random = rng.integers(0, len(ATTRIBUTES[name]), n_samples)
        values[name] = np.where(rng.random(n_samples) < noise, random, clean)
    appearance = {name: rng.integers(0, len(v), n_samples) for name, v in APPEARANCE.items()}
    images = render(labels, appearance, image_size, rng)
    split = np.where(rng.random(n_samples) < test_fraction, "test", "train")
    table = pd.DataFrame(
        {
            "id": [f"syn-{i:05d}" for i in range(n_samples)],
            "label": labels.astype(np.int64),
            **{name: np.asarray(ATTRIBUTES[name])[v] for name, v in values.items()},
            **{name: np.asarray(APPEARANCE[name])[v] for name, v in appearance.items()},
            "split": split,
        }
    )
    return ImageSource(
        "synthetic-attributes",
        table,
        images=images,
        channels=3,
        description=f"synthetic-attributes ({n_samples} images, {image_size} px, noise {noise})",
    )
