"""Clusters from a multi-valued tag column: the paper's hashtag case.

Each sample carries a set of tags (``#beach #sunset``, ``a|b|c``, ``["a", "b"]``, or a real
list in Parquet/JSON Lines). Two ways to cluster:

* ``method="top-k"``: tag presence becomes one binary attribute per tag, ranked like
  attributes (descending entropy, ties by tag); the cluster is the joint presence pattern
  of the first k tags (nested in k).
* ``method="tfidf-kmeans"``: TF-IDF tag vectors (scikit-learn) grouped by spherical K-means
  into ``n_clusters`` groups; samples without tags share the all-zero vector.

A missing or empty cell means "no tags" (it is a sample with an empty tag set, not dropped).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from clinfonce.clusters._codes import ColumnCodes, dense_rank, nested_joint, resolve_k
from clinfonce.clusters.tables import require_columns

TagFormat = Literal["auto", "json", "hashtag", "delimited"]
TAG_FORMATS: tuple[str, ...] = get_args(TagFormat)
TagMethod = Literal["top-k", "tfidf-kmeans"]
TAG_METHODS: tuple[str, ...] = get_args(TagMethod)
_HASHTAGS = r"\s*(?:#[^\s#]+\s*)+"


@dataclass(frozen=True)
class TagMatrix:
    """Sparse tag presence: (row, tag) pairs, each once.

    Attributes:
        n_rows: number of samples.
        vocabulary: tag names, sorted; ``tag`` indexes into it.
        row: int64 row of each pair.
        tag: int64 tag index of each pair.
    """

    n_rows: int
    vocabulary: list[str]
    row: np.ndarray
    tag: np.ndarray

    def document_frequency(self) -> np.ndarray:
        """Number of rows carrying each tag."""
        return np.bincount(self.tag, minlength=len(self.vocabulary))

    def dense(self) -> np.ndarray:
        """Boolean ``[n_rows, len(vocabulary)]`` presence of every tag."""
        presence = np.zeros((self.n_rows, len(self.vocabulary)), dtype=bool)
        presence[self.row, self.tag] = True
        return presence

    def presence(self, tag: int) -> ColumnCodes:
        """The 0/1 column of one tag."""
        codes = np.zeros(self.n_rows, dtype=np.int64)
        codes[self.row[self.tag == tag]] = 1
        return ColumnCodes(codes, [False, True])


def _cell_kind(text: pd.Series) -> pd.Series:
    kind = pd.Series("delimited", index=text.index, dtype=object)
    kind[text.str.startswith("[")] = "json"
    kind[text.str.startswith("#")] = "hashtag"
    return kind


def _fail(position: Any, cell: Any, why: str) -> ValueError:
    return ValueError(f"tag cell at row {position} ({cell!r}) {why}")


def _first(mask: pd.Series) -> Any:
    """Index label of the first True in ``mask``."""
    return mask.index.to_numpy()[int(np.argmax(mask.to_numpy()))]


def _explode(tokens: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    flat = tokens.explode().dropna()
    flat = flat.astype(str).str.strip()
    flat = flat[flat != ""]
    return flat.index.to_numpy(dtype=np.int64), flat.to_numpy(dtype=object)


def _parse_json(text: pd.Series) -> pd.Series:
    parsed: dict[Any, list[Any]] = {}
    for position, cell in text.items():
        try:
            value = json.loads(cell)
        except json.JSONDecodeError as exc:
            raise _fail(position, cell, f"is not a valid JSON list: {exc.msg}") from exc
        if not isinstance(value, list) or any(isinstance(v, list | dict) for v in value):
            raise _fail(position, cell, "is not a JSON list of strings")
        parsed[position] = value
    lists: pd.Series = pd.Series(parsed, dtype=object)
    return lists


def parse_tags(
    series: pd.Series, *, fmt: str = "auto", sep: str = "|"
) -> tuple[np.ndarray, np.ndarray]:
    """(row, tag) pairs of a tag column; ``fmt`` one of ``TAG_FORMATS``.

    ``auto`` decides per column from the cells: all starting with ``[`` -> JSON lists, all
    starting with ``#`` -> hashtags, otherwise ``sep``-delimited. List-valued cells (Parquet,
    JSON Lines) are taken as they are. Tags are stripped; empty tags are skipped.

    Raises:
        ValueError: cells of mixed formats, invalid JSON, or hashtag cells with words that
            are not hashtags; the row and cell are named.

    Examples:
        >>> rows, tags = parse_tags(pd.Series(["#sea #sun", None, "#sun"]))
        >>> rows.tolist(), tags.tolist()
        ([0, 0, 2], ['sea', 'sun', 'sun'])
    """
    if fmt not in TAG_FORMATS:
        raise ValueError(f"tag format {fmt!r}: use one of {', '.join(TAG_FORMATS)}")
    cells = series.reset_index(drop=True)
    is_list = cells.map(lambda v: isinstance(v, list | tuple | np.ndarray))
    lists = cells[is_list]
    strings = cells[~is_list & cells.notna()]
    not_text = strings.map(lambda v: not isinstance(v, str))
    if not_text.any():
        position = _first(not_text)
        raise _fail(position, cells[position], "is not text or a list of tags")
    text = strings.astype(str).str.strip()
    text = text[text != ""]
    if fmt == "auto" and len(text):
        kinds = _cell_kind(text)
        fmt = str(kinds.iloc[0])
        odd = kinds != fmt
        if odd.any():
            position = _first(odd)
            raise _fail(
                position,
                cells[position],
                f"looks like {kinds[position]} tags, but row {text.index[0]} looks like {fmt}; "
                f"use one format for the whole column (or set the format explicitly)",
            )
    if fmt == "json":
        tokens = _parse_json(text)
    elif fmt == "hashtag":
        bad = ~text.str.fullmatch(_HASHTAGS)
        if bad.any():
            position = _first(bad)
            raise _fail(position, cells[position], "is not a list of #hashtags ('#a #b')")
        tokens = text.str.findall(r"#([^\s#]+)")
    else:
        tokens = text.str.split(sep, regex=False)
    parts = [_explode(lists), _explode(tokens)]
    rows = np.concatenate([p[0] for p in parts])
    tags = np.concatenate([p[1] for p in parts])
    order = np.argsort(rows, kind="stable")
    return rows[order], tags[order]


def looks_like_tags(series: pd.Series) -> bool:
    """Whether a column holds tag sets: its cells parse as tags (:func:`parse_tags`), some
    cell holds several, and there are fewer distinct tags than distinct cells.

    Examples:
        >>> looks_like_tags(pd.Series(["#sea #sun", "#sun", "#sea #boat", "#boat #sun"]))
        True
        >>> looks_like_tags(pd.Series(["red", "blue", "red"]))
        False
    """
    try:
        rows, tags = parse_tags(series)
    except ValueError:
        return False
    if len(tags) == 0 or np.bincount(rows).max() < 2:
        return False
    cells = series.map(lambda v: str(v) if isinstance(v, str) else repr(v))
    return len(set(tags.tolist())) < cells.nunique()


def tag_matrix(table: pd.DataFrame, column: str, *, fmt: str = "auto", sep: str = "|") -> TagMatrix:
    """Parse ``column`` into a :class:`TagMatrix` (duplicate tags in a cell count once)."""
    require_columns(table, [column], "tag column")
    rows, tags = parse_tags(table[column], fmt=fmt, sep=sep)
    codes, vocabulary = pd.factorize(pd.Series(tags, dtype=object), sort=True)
    pairs = np.unique(rows * max(len(vocabulary), 1) + codes.astype(np.int64))
    n_tags = max(len(vocabulary), 1)
    return TagMatrix(len(table), [str(v) for v in vocabulary], pairs // n_tags, pairs % n_tags)


def rank_tags(matrix: TagMatrix) -> list[tuple[str, float]]:
    """Tags with the entropy (bits) of their presence, descending; ties by tag name."""
    p = matrix.document_frequency() / matrix.n_rows
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(p > 0, p * np.log2(p), 0.0) + np.where(p < 1, (1 - p) * np.log2(1 - p), 0.0))
    ranked = [(tag, float(e)) for tag, e in zip(matrix.vocabulary, h, strict=True)]
    ranked.sort(key=lambda r: (-r[1], r[0]))
    return ranked


def tag_sweep(
    table: pd.DataFrame,
    ks: Sequence[int | None],
    *,
    column: str,
    tag_format: str = "auto",
    sep: str = "|",
) -> Iterator[tuple[int, np.ndarray, dict[str, Any]]]:
    """Top-k tag clusters for several k, parsing and ranking once (nested in k)."""
    matrix = tag_matrix(table, column, fmt=tag_format, sep=sep)
    if not matrix.vocabulary:
        raise ValueError(f"tag column {column!r} holds no tags at all")
    ranked = rank_tags(matrix)
    index = {tag: i for i, tag in enumerate(matrix.vocabulary)}
    wanted = sorted({resolve_k(k, len(ranked), "tags") for k in ks})
    names = [tag for tag, _ in ranked]
    for used, ids in nested_joint(
        matrix.n_rows, names, lambda tag: matrix.presence(index[tag]), wanted
    ):
        yield used, ids, {"tags": names[:used], "entropies": [e for _, e in ranked[:used]]}


def _tfidf_kmeans(
    matrix: TagMatrix, n_clusters: int, max_features: int, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfTransformer

    from clinfonce.clusters.kmeans import kmeans

    frequency = matrix.document_frequency()
    keep = sorted(range(len(frequency)), key=lambda i: (-frequency[i], matrix.vocabulary[i]))
    keep = keep[:max_features]
    column_of = np.full(len(frequency), -1, dtype=np.int64)
    column_of[keep] = np.arange(len(keep))
    mask = column_of[matrix.tag] >= 0
    counts = sparse.csr_matrix(
        (
            np.ones(int(mask.sum()), dtype=np.float32),
            (matrix.row[mask], column_of[matrix.tag][mask]),
        ),
        shape=(matrix.n_rows, len(keep)),
    )
    vectors = TfidfTransformer().fit_transform(counts).toarray().astype(np.float32)
    result = kmeans(vectors, n_clusters, spherical=True, seed=seed)
    ids, used = dense_rank(result.assignments)
    return ids, {"num_features": len(keep), "inertia": result.inertia, "num_used": used}


def build_tags(
    table: pd.DataFrame,
    *,
    column: str,
    k: int | None = None,
    method: TagMethod = "top-k",
    n_clusters: int | None = None,
    tag_format: TagFormat = "auto",
    sep: str = "|",
    max_features: int = 1000,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Clusters from the tags in ``column``.

    Args:
        table: one row per sample.
        column: the tag column.
        k: top-k method: number of ranked tags whose presence pattern is the cluster
            (``None``: all tags).
        method: ``"top-k"`` or ``"tfidf-kmeans"``.
        n_clusters: tfidf-kmeans method: number of K-means groups.
        tag_format: cell format (``"auto"`` detects JSON lists, #hashtags or ``sep``
            delimited tags).
        sep: separator of the ``"delimited"`` format.
        max_features: tfidf-kmeans method: keep the most frequent tags only (memory is
            rows x max_features floats).
        seed: tfidf-kmeans method: K-means seed.

    Returns:
        Ids ``0..K-1`` (top-k: lexicographic order of the presence pattern; tfidf-kmeans:
        centroid order) and details (tags used, or K-means inertia).

    Examples:
        >>> t = pd.DataFrame({"tags": ["#sea #sun", "#sun", "#sea", "#sun"]})
        >>> build_tags(t, column="tags", k=2)[0]
        array([2, 0, 1, 0])
    """
    if method not in TAG_METHODS:
        raise ValueError(f"method={method!r}: use one of {', '.join(TAG_METHODS)}")
    if method == "tfidf-kmeans":
        if n_clusters is None or k is not None:
            raise ValueError("method='tfidf-kmeans' takes n_clusters (and no k)")
        matrix = tag_matrix(table, column, fmt=tag_format, sep=sep)
        return _tfidf_kmeans(matrix, n_clusters, max_features, seed)
    if n_clusters is not None:
        raise ValueError("n_clusters applies to method='tfidf-kmeans'; top-k takes k")
    _, ids, details = next(tag_sweep(table, [k], column=column, tag_format=tag_format, sep=sep))
    return ids, details
