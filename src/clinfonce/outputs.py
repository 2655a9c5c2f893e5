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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


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
    elif isinstance(values, str | Path) and str(values) and _exists(Path(values)):
        yield Path(values)


def _exists(path: Path) -> bool:
    """``path.exists()``, false for strings no file system accepts as a path (a column
    name longer than a file name may be, a NUL byte)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def is_file(path: str | Path) -> bool:
    """``path.is_file()``, false for a string no file system accepts as a path (a table
    cell longer than a file name may be): such a cell names no file.

    Examples:
        >>> is_file("x" * 300)
        False
    """
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def inputs_inside(folder: str | Path, inputs: Iterable[str | Path]) -> list[Path]:
    """The ``inputs`` that lie inside ``folder``: what clearing ``folder`` would destroy.

    Examples:
        >>> inputs_inside("imgs", ["imgs/a.png", "meta.csv"])
        [PosixPath('imgs/a.png')]
    """
    parent = Path(folder).resolve()
    return [Path(p) for p in inputs if is_inside(Path(p).resolve(), parent)]


def refuse_input_outputs(
    outputs: Iterable[str | Path], inputs: Iterable[str | Path], option: str
) -> None:
    """Refuse when an output file is one of the inputs. Compared by file name first, so a
    list of every image file of a table costs little (a link under another name to an
    output is not seen: for the few files a command names, use :func:`check_output_file`).

    Raises:
        ValueError: an output is an input; the message names both.
    """
    by_name: dict[str, list[Path]] = {}
    for output in map(Path, outputs):
        by_name.setdefault(output.name, []).append(output)
    for source in map(Path, inputs):
        for output in by_name.get(source.name, []):
            if same_file(output, source):
                raise _input_error(option, output, source)


def _input_error(option: str, output: Path, source: Path | str) -> ValueError:
    return ValueError(
        f"{option} {output} is also an input of this command ({source}); writing it would "
        "destroy the input: choose another output path"
    )


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
            raise _input_error(option, path, source)
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


@contextmanager
def process_lock(path: Path, busy: Callable[[str], object]) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created) while inside.

    A POSIX record lock (``lockf``): it belongs to this process alone, so processes it forks
    do not hold it, and the system drops it when the process dies, even by ``kill -9`` (no
    stale lock). The lock file names its holder. When another process holds the lock,
    ``busy("process <pid>")`` is called first: it raises to give up, or returns to wait.
    Where the platform has no such locks (Windows), nothing is locked.
    """
    if fcntl is None:
        yield
        return
    with open(path, "a+") as handle:
        try:
            fcntl.lockf(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            busy(handle.read().strip() or "another process")
            fcntl.lockf(handle.fileno(), fcntl.LOCK_EX)
        handle.truncate(0)
        handle.write(f"process {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.lockf(handle.fileno(), fcntl.LOCK_UN)


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then move it into place.

    The rename is atomic on one file system, so readers see the old file or the new one.
    A write that fails (a full disk) leaves the old file and is reported in one line.
    """
    atomic_write_all([(path, write)])


def atomic_write_all(
    files: Sequence[tuple[str | os.PathLike[str], Callable[[Path], object]]],
) -> None:
    """Write several files that belong together: every temporary file first, then the
    renames, so a failed write (full disk, out of memory) leaves all the old files and none
    of the new.

    Raises:
        OSError: a write failed; the message names the file and says nothing was replaced.
    """
    temps: list[tuple[Path, Path]] = []
    try:
        for path, write in files:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(fd)
            temps.append((Path(name), target))
            try:
                write(Path(name))
            except (OSError, MemoryError) as exc:
                raise write_failed(target, exc) from exc
            # mkstemp makes the file private (0600); give it the mode a plain open() would.
            os.chmod(name, 0o666 & ~_umask())
        for temp, target in temps:
            os.replace(temp, target)
    except BaseException:
        for temp, _ in temps:
            temp.unlink(missing_ok=True)
        raise


def write_failed(target: Path, exc: BaseException) -> OSError:
    """The one-line error of a write that failed part-way (full disk, file size limit, out
    of memory).

    Examples:
        >>> error = write_failed(Path("a.npy"), OSError("192000 requested and 23520 written"))
        >>> str(error).split(": ")[0]
        'could not write a.npy (192000 requested and 23520 written)'
        >>> str(write_failed(Path("a.npy"), MemoryError())).split(". ")[0]
        'could not write a.npy (MemoryError): out of memory'
    """
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).strip()
    reason = (text.splitlines() or [type(exc).__name__])[0][:120]
    if isinstance(exc, MemoryError):
        cause, remedy = "out of memory.", "free memory (fewer loader workers, a smaller batch)"
    else:
        cause, remedy = "is the disk full?", "free some space"
    return OSError(
        f"could not write {target} ({reason}): {cause} The previous {target.name}, if any, "
        f"is unchanged; {remedy} and run the command again"
    )


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it
    os.umask(mask)
    return mask
