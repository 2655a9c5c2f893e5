"""Options that name a file or a folder, found from their type annotations.

A run directory's ``config.yaml`` must work from any folder, so every option naming a file
or a folder is stored absolute. Which options those are is read from the annotations of the
config dataclasses and of the source loaders' and cluster builders' signatures, never from a
hand-kept list: an option is a path when its type (or a member of its union) is
:data:`PathOption` (a ``str`` marked as a path), :class:`pathlib.Path` or
:class:`os.PathLike`. Other strings (column names, choices) are never touched.

Examples:
    >>> def load(table: PathOption, path_column: str = "path") -> None: ...
    >>> path_parameters(load)
    ['table']
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any


class _PathMark:
    """The marker :data:`PathOption` carries (read by :func:`names_path`)."""

    def __repr__(self) -> str:
        return "path"


PATH_MARK = _PathMark()
#: A config option that is a ``str`` naming a file or a folder (stored absolute).
PathOption = Annotated[str, PATH_MARK]


def names_path(annotation: Any) -> bool:
    """Whether a type annotation names a file or folder (:data:`PathOption`, ``Path``,
    ``os.PathLike``, or a union with one of them).

    Examples:
        >>> names_path(PathOption | None), names_path(str | os.PathLike[str]), names_path(str)
        (True, True, False)
    """
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return PATH_MARK in annotation.__metadata__ or names_path(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(names_path(option) for option in typing.get_args(annotation))
    plain = origin or annotation
    return isinstance(plain, type) and issubclass(plain, Path | os.PathLike)


def path_parameters(function: Callable[..., Any]) -> list[str]:
    """The parameters of ``function`` annotated as files or folders, in signature order."""
    hints = typing.get_type_hints(function, include_extras=True)
    return [name for name in inspect.signature(function).parameters if names_path(hints.get(name))]


def path_fields(cls: type) -> list[str]:
    """The fields of dataclass ``cls`` annotated as files or folders, in field order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return [f.name for f in dataclasses.fields(cls) if names_path(hints[f.name])]


def absolute_path(value: Any) -> Any:
    """A relative path string made absolute against the working folder; anything else (an
    absolute path, ``None``, a list, a mapping) unchanged.

    Examples:
        >>> absolute_path("/data/meta.csv"), absolute_path(None), absolute_path(["a"])
        ('/data/meta.csv', None, ['a'])
    """
    if isinstance(value, str | os.PathLike) and str(value) and not Path(value).is_absolute():
        return str(Path(value).absolute())
    return value


def absolute_options(options: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """``options`` with the values of the path options ``names`` made absolute."""
    return {key: absolute_path(value) if key in names else value for key, value in options.items()}
