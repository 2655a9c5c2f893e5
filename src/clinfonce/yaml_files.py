"""YAML in, with errors a person can act on.

PyYAML reports a syntax error as a multi-line message and a ``!!python/...`` tag (refused by
the safe loader, as it should be) as a ``ConstructorError`` naming an internal tag URI. Every
YAML the package reads (configs, overrides, experiment files, cluster configs) goes through
here, so each such problem becomes one line naming the file, the line and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def parse_yaml(text: str, where: str) -> Any:
    """``yaml.safe_load(text)``, with a problem reported as ``ValueError`` naming ``where``.

    Examples:
        >>> parse_yaml("a: [1, 2]", "x.yaml")
        {'a': [1, 2]}
        >>> try:
        ...     parse_yaml("a: [1, 2", "x.yaml")
        ... except ValueError as exc:
        ...     print(str(exc)[:50])
        x.yaml, line 1 column 9: invalid YAML (expected ',
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_aliases(node, where)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ValueError(describe_yaml_error(exc, where)) from None
    finally:
        loader.dispose()


#: Values that aliases (``*name``) may add to a document: an alias copies what it names, so
#: a few lines of nested aliases (an "alias bomb") can stand for billions of values.
MAX_ALIAS_VALUES = 100_000


def _check_aliases(root: yaml.Node, where: str) -> None:
    """Refuse a document whose aliases expand it by more than :data:`MAX_ALIAS_VALUES`.

    Examples:
        >>> lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
        >>> lines += [f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]" for p, n in zip("abcde", "bcdef")]
        >>> parse_yaml(chr(10).join(lines), "x.yaml")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: x.yaml, line 5 column 4: its aliases (*name) stand for more than 100000 ...
    """
    expanded: dict[int, int] = {}  # values under a node, aliases counted in full

    def size(node: yaml.Node) -> int:
        if id(node) not in expanded:
            children: list[yaml.Node] = []
            if isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            elif isinstance(node, yaml.MappingNode):
                children = [part for pair in node.value for part in pair]
            expanded[id(node)] = 1 + sum(size(child) for child in children)
            if expanded[id(node)] - len(expanded) > MAX_ALIAS_VALUES:
                mark = node.start_mark
                raise ValueError(
                    f"{where}, line {mark.line + 1} column {mark.column + 1}: its aliases "
                    f"(*name) stand for more than {MAX_ALIAS_VALUES} values (an alias "
                    "bomb?); write the values out instead"
                )
        return expanded[id(node)]

    size(root)


def read_yaml_file(path: str | Path) -> Any:
    """Parse the YAML file at ``path`` (UTF-8), with one-line errors (see :func:`parse_yaml`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8"
        ) from None
    return parse_yaml(text, str(path))


def describe_yaml_error(exc: yaml.YAMLError, where: str) -> str:
    """One line for a PyYAML error: where it is, what is wrong, what to do."""
    mark = getattr(exc, "problem_mark", None)
    place = f"{where}, line {mark.line + 1} column {mark.column + 1}" if mark else where
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in problem:
        tag = problem.split("'")[1] if "'" in problem else problem
        tag = tag.replace("tag:yaml.org,2002:", "!!")
        return (
            f"{place}: the YAML tag {tag} is not allowed (only plain values: numbers, "
            "strings, lists, mappings); remove the tag"
        )
    return f"{place}: invalid YAML ({problem}); fix the syntax there"
