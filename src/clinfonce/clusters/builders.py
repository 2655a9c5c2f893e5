"""The builder registry: one name per way of turning auxiliary information into clusters.

Every builder is a function ``(table, **params) -> (ids, details)``; this module checks the
parameters against the function's signature (so a typo is a clear error, not a silent
default), checks the table and the output (int64, one per row, contiguous ``0..K-1``), and
knows which parameter a granularity sweep varies. Builders that can sweep faster than one
build per value (nested joint values) provide a sweep function too.
"""

from __future__ import annotations

import inspect
import re
import typing
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clinfonce.clusters.attributes import attribute_sweep, build_attributes
from clinfonce.clusters.hierarchy import build_hierarchy
from clinfonce.clusters.kmeans import build_kmeans
from clinfonce.clusters.simple import build_column, build_instance, build_label
from clinfonce.clusters.tags import build_tags, tag_sweep
from clinfonce.paths import path_parameters

BuildFn = Callable[..., tuple[np.ndarray, dict[str, Any]]]
SweepFn = Callable[..., Iterator[tuple[Any, np.ndarray, dict[str, Any]]]]


@dataclass(frozen=True)
class BuildResult:
    """Cluster ids ``0..K-1`` (int64, one per table row) and builder-specific details."""

    ids: np.ndarray
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def num_clusters(self) -> int:
        """K."""
        return int(self.ids.max()) + 1 if len(self.ids) else 0


@dataclass(frozen=True)
class Builder:
    """A registered builder.

    Attributes:
        name: registry name.
        build: ``(table, **params) -> (ids, details)``.
        summary: one line for ``--help``.
        granularity: the parameter a sweep varies, given the other parameters.
        nested_sweep: ``(table, values, **params)`` yielding ``(value, ids, details)`` for
            all values at once, when ``params`` allow it (else ``None`` is returned).
    """

    name: str
    build: BuildFn
    summary: str
    granularity: Callable[[Mapping[str, Any]], str | None]
    nested_sweep: Callable[..., Iterator[tuple[Any, np.ndarray, dict[str, Any]]] | None] | None = (
        None
    )

    def parameters(self) -> dict[str, inspect.Parameter]:
        """Keyword parameters of the build function (everything after ``table``)."""
        items = list(inspect.signature(self.build).parameters.items())[1:]
        return dict(items)

    def parameter_docs(self) -> dict[str, str]:
        """Each parameter's description from the build function's ``Args:`` section, on one
        line without reST markup: the builder options' ``--help`` comes from here."""
        return _args_section(inspect.getdoc(self.build) or "")

    def parameter_types(self) -> dict[str, Any]:
        """Each parameter's annotated type: the builder options' argument types (and, for a
        ``Literal``, their choices) come from here."""
        hints = typing.get_type_hints(self.build)
        return {name: hints.get(name, Any) for name in self.parameters()}

    def path_parameters(self) -> list[str]:
        """The parameters naming files or folders (a config stores them absolute)."""
        return path_parameters(self.build)

    def check(self, params: Mapping[str, Any]) -> None:
        """Raise a ValueError for unknown or missing parameters, naming the accepted ones."""
        accepted = self.parameters()
        unknown = sorted(set(params) - set(accepted))
        listing = ", ".join(accepted) or "(none)"
        if unknown:
            raise ValueError(
                f"builder {self.name!r} does not take {', '.join(unknown)}; its parameters: "
                f"{listing}"
            )
        required = [
            name
            for name, p in accepted.items()
            if p.default is inspect.Parameter.empty and name not in params
        ]
        if required:
            raise ValueError(f"builder {self.name!r} needs {', '.join(required)}")


def _args_section(doc: str) -> dict[str, str]:
    r"""``name -> description`` of a Google-style docstring's ``Args:`` section.

    Examples:
        >>> _args_section("Args:\n    a: the ``first``\n        term.\n    b: more.")
        {'a': 'the first term.', 'b': 'more.'}
    """
    parts: dict[str, list[str]] = {}
    inside, current = False, ""
    for line in doc.splitlines():
        if line.strip() == "Args:":
            inside = True
        elif inside and (not line.strip() or not line.startswith("    ")):
            break  # a blank line or the next section ends it
        elif inside:
            entry = re.match(r"    (\w+): (.*)", line)
            if entry:
                current = entry[1]
                parts[current] = [entry[2]]
            elif current:
                parts[current].append(line.strip())
    return {
        name: re.sub(r":\w+:`~?([^`]+)`", r"\1", " ".join(text)).replace("``", "")
        for name, text in parts.items()
    }


def _attributes_sweep(
    table: pd.DataFrame, values: Sequence[Any], **params: Any
) -> Iterator[tuple[Any, np.ndarray, dict[str, Any]]]:
    return attribute_sweep(table, values, **params)


def _tags_sweep(
    table: pd.DataFrame, values: Sequence[Any], **params: Any
) -> Iterator[tuple[Any, np.ndarray, dict[str, Any]]] | None:
    if params.pop("method", "top-k") != "top-k":
        return None
    return tag_sweep(table, values, **params)


def _tags_granularity(params: Mapping[str, Any]) -> str:
    return "n_clusters" if params.get("method") == "tfidf-kmeans" else "k"


BUILDERS: dict[str, Builder] = {
    b.name: b
    for b in (
        Builder(
            "attributes",
            build_attributes,
            "joint value of the k highest-entropy discrete attributes",
            lambda _: "k",
            _attributes_sweep,
        ),
        Builder(
            "hierarchy",
            build_hierarchy,
            "ancestor of the label at a level of a class hierarchy (root = level 0)",
            lambda _: "level",
        ),
        Builder(
            "tags",
            build_tags,
            "multi-valued tags: top-k presence pattern, or TF-IDF + K-means",
            _tags_granularity,
            _tags_sweep,
        ),
        Builder(
            "kmeans",
            build_kmeans,
            "K-means on numeric columns or a .npy embedding file",
            lambda _: "n_clusters",
        ),
        Builder(
            "instance", build_instance, "every sample its own cluster (SimCLR)", lambda _: None
        ),
        Builder("label", build_label, "cluster = downstream label (SupCon)", lambda _: None),
        Builder(
            "column",
            build_column,
            "an existing column of cluster ids (e.g. official label_gran_<k>)",
            lambda _: "column",
        ),
    )
}


def get_builder(name: str) -> Builder:
    """The registered builder called ``name``.

    Raises:
        ValueError: unknown name (the known ones are listed).
    """
    if name not in BUILDERS:
        raise ValueError(f"unknown builder {name!r}; available: {', '.join(BUILDERS)}")
    return BUILDERS[name]


def _checked(table: pd.DataFrame, ids: np.ndarray, name: str) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64)
    if ids.shape != (len(table),):
        raise AssertionError(f"builder {name!r} returned {ids.shape} ids for {len(table)} rows")
    if len(ids) and (ids.min() < 0 or not np.bincount(ids).all()):
        raise AssertionError(f"builder {name!r} returned non-contiguous ids")
    return ids


def _check_table(table: pd.DataFrame) -> None:
    if len(table) == 0:
        raise ValueError("the table has no rows; clusters need at least one sample")


def run_builder(table: pd.DataFrame, builder: str, **params: Any) -> BuildResult:
    """:func:`build_clusters`, also returning the builder's details (attributes used...)."""
    spec = get_builder(builder)
    spec.check(params)
    _check_table(table)
    ids, details = spec.build(table, **params)
    return BuildResult(_checked(table, ids, builder), details)


def build_clusters(table: pd.DataFrame, builder: str, **params: Any) -> np.ndarray:
    """One cluster id per row of ``table``, contiguous ``0..K-1`` (int64).

    Builders and their parameters (see each ``build_*`` function for details):

    * ``attributes``: ``k`` (None = all), ``columns`` (None = all but reserved),
      ``exclude``, ``rank`` ("entropy" | "given"), ``missing`` ("own" | "error"),
      ``max_levels``. Ids in lexicographic order of the joint value.
    * ``hierarchy``: ``label_column``, ``parents`` (CSV/JSON path or mapping), ``level``.
      Ids in sorted order of ancestor names.
    * ``tags``: ``column``, ``k`` | ``method="tfidf-kmeans"`` + ``n_clusters``,
      ``tag_format``, ``sep``, ``max_features``, ``seed``.
    * ``kmeans``: ``n_clusters``, ``columns`` | ``embeddings`` (.npy), ``spherical``,
      ``iterations``, ``restarts``, ``seed``, ``init``, ``backend``. Ids in centroid order.
    * ``instance`` (row order), ``label`` (``label_column``), ``column`` (``column``):
      ids in sorted value order.

    Raises:
        ValueError: unknown builder, unknown/missing parameters, an empty table, or any
            input problem the builder finds (named column, row and fix).

    Examples:
        >>> t = pd.DataFrame({"a": [0, 1, 1, 0], "b": [1, 1, 0, 0]})
        >>> build_clusters(t, "attributes", k=2)
        array([1, 3, 2, 0])
        >>> build_clusters(t, "instance")
        array([0, 1, 2, 3])
    """
    return run_builder(table, builder, **params).ids


def sweep_builder(
    table: pd.DataFrame, builder: str, values: Sequence[Any], **params: Any
) -> Iterator[tuple[Any, BuildResult]]:
    """Build clusters for each value of the builder's granularity parameter.

    Nested builders (attributes, top-k tags) share work across values and yield them in
    ascending order; the others build once per value, in the order given.

    Raises:
        ValueError: the builder has no granularity, or the granularity is also in
            ``params``, or a build error of a nested builder, or every value failed (a
            non-nested builder skips a failing value with a warning).
    """
    spec = get_builder(builder)
    param = spec.granularity(params)
    if param is None:
        raise ValueError(f"builder {builder!r} has no granularity to sweep")
    if param in params:
        raise ValueError(f"{param} is what the sweep varies; do not also set it")
    if not values:
        raise ValueError(f"the sweep needs at least one value of {param}")
    spec.check({**params, param: values[0]})
    _check_table(table)
    nested = spec.nested_sweep(table, values, **params) if spec.nested_sweep else None
    if nested is not None:
        for value, ids, details in nested:
            yield value, BuildResult(_checked(table, ids, builder), details)
        return
    # Built one at a time, a value can fail after others took minutes: it is skipped with
    # a warning instead, and only a sweep where every value fails is an error.
    failures: list[str] = []
    for value in values:
        try:
            result = run_builder(table, builder, **params, **{param: value})
        except ValueError as exc:
            failures.append(f"{param}={value}: {exc}")
            warnings.warn(f"sweep: skipped {param}={value}: {exc}", stacklevel=2)
            continue
        yield value, result
    if len(failures) == len(values):
        raise ValueError(f"no value of the sweep could be built ({failures[0]})")
