"""Writing outputs safely: atomically, and never over what the command reads.

Every file is written through a temporary file and renamed into place
(:func:`atomic_write`), so a reader never sees a torn file.

Every command that writes checks its outputs here first: an output that is one of its
inputs (``clusters build meta.csv --out meta.csv``) is always refused; an existing output
file that clinfonce did not write is only replaced with ``--force``; a run directory about
to be cleared must not hold one of the run's inputs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (after resolving ``..`` and links).

    Examples:
        >>> same_file("data/../meta.csv", "meta.csv")
        True
    """
    return Path(a).resolve() == Path(b).resolve()


def is_inside(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` lies inside ``folder`` (or is it).

    Examples:
        >>> is_inside("runs/a/clusters.csv", "runs/a"), is_inside("runs/ab", "runs/a")
        (True, False)
    """
    resolved, parent = Path(path).resolve(), Path(folder).resolve()
    return resolved == parent or parent in resolved.parents


def existing_paths(values: Any) -> Iterator[Path]:
    """Every string inside ``values`` (nested dicts and lists) that names an existing path."""
    if isinstance(values, dict):
        for value in values.values():
            yield from existing_paths(value)
    elif isinstance(values, list | tuple):
        for value in values:
            yield from existing_paths(value)
    elif isinstance(values, str | Path) and str(values) and Path(values).exists():
        yield Path(values)


def check_output_file(
    output: str | Path,
    inputs: Iterable[str | Path],
    *,
    force: bool,
    ours: Callable[[Path], bool],
    option: str = "--out",
) -> None:
    """Refuse to write ``output`` over an input, or over a file that is not ours.

    Args:
        output: the file about to be written.
        inputs: the files the command reads.
        force: replace an existing ``output`` that ``ours`` does not recognise.
        ours: whether an existing file was written by clinfonce (then it is replaced).
        option: the option that named ``output``, for the message.

    Raises:
        ValueError: ``output`` is an input, a folder, or a foreign file without ``force``.
    """
    path = Path(output)
    for source in inputs:
        if same_file(path, source):
            raise ValueError(
                f"{option} {path} is also an input of this command ({source}); writing it "
                "would destroy the input: choose another output path"
            )
    if path.is_dir():
        raise ValueError(f"{option} {path} is a folder; give a file path")
    if path.exists() and not force and not ours(path):
        raise ValueError(
            f"{option} {path} exists and was not written by clinfonce; choose another "
            "output path, or pass --force to replace it"
        )


def check_output_folder(
    folder: str | Path, names: Iterable[str], inputs: Iterable[str | Path], option: str
) -> None:
    """Refuse an output folder that is a file, or whose files ``names`` include an input.

    Args:
        folder: where the command writes.
        names: the files it writes there (they are the command's own and get replaced).
        inputs: the files the command reads.
        option: the option that named ``folder``, for the message.

    Raises:
        ValueError: ``folder`` is a file, or one of its outputs is an input.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{option} {folder} is a file; give a folder")
    sources = list(inputs)
    for name in names:
        check_output_file(folder / name, sources, force=True, ours=lambda _: True, option=option)


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then move it into place.

    The rename is atomic on one file system, so readers see the old file or the new one.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask
