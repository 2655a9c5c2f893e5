"""Reader for the IDX format of (Fashion-)MNIST, gzipped or plain."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

# Type codes of the IDX header (third byte) -> numpy big-endian dtypes.
_IDX_DTYPES: dict[int, str] = {
    0x08: ">u1",
    0x09: ">i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file into an array of its stored shape.

    Gzip compression is detected from the file's first bytes, not its name, so a
    decompressed file that kept its ``.gz`` suffix (or the reverse) still reads.

    Args:
        path: the IDX file (e.g. ``train-images-idx3-ubyte.gz``).

    Returns:
        The array, in native byte order (``uint8`` for image and label files).

    Raises:
        ValueError: when the header is not IDX or the payload is truncated.

    Examples:
        >>> images = read_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
        ... # doctest: +SKIP
        >>> images.shape  # doctest: +SKIP
        (10000, 28, 28)
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path}: not an IDX file (expected magic bytes 00 00 <type> <ndim>, got "
            f"{raw[:4].hex(' ')}); pass the idx files of (Fashion-)MNIST, gzipped or plain"
        )
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header_end = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header_end], dtype=">u4"))
    count = int(np.prod(shape)) if shape else 1
    expected = header_end + count * dtype.itemsize
    if len(raw) < expected:
        raise ValueError(
            f"{path}: truncated IDX file: header says shape {shape} ({expected} bytes) but the "
            f"file has {len(raw)} bytes; re-download or re-extract it"
        )
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=header_end)
    return data.reshape(shape).astype(dtype.newbyteorder("="))
