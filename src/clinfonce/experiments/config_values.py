"""Nested config mappings as experiment files write them: dotted keys and stable
fingerprints (merging is :func:`clinfonce.binder.deep_merge`)."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any


def fingerprint(value: Any) -> str:
    """A short stable hash of a JSON-able value.

    Examples:
        >>> fingerprint({"a": 1, "b": [2]}) == fingerprint({"b": [2], "a": 1})
        True
    """
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def set_dotted(values: dict[str, Any], key: str, value: Any, where: str) -> None:
    """Set ``values[a][b][c] = value`` for ``key = "a.b.c"``, creating sections.

    Examples:
        >>> d = {"optim": {"lr": 1}}
        >>> set_dotted(d, "optim.name", "adamw", "set"); d
        {'optim': {'lr': 1, 'name': 'adamw'}}
    """
    parts = str(key).split(".")
    if not all(parts):
        raise ValueError(f"{where}: key {key!r} has an empty part; write section.key")
    node = values
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"{where}: {key!r}: {part!r} is not a section (holds {child!r})")
        node = child
    node[parts[-1]] = copy.deepcopy(value)
