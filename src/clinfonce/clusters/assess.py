"""Judging one candidate source of clusters: in-batch positives without labels, the
bias-corrected information about the labels where there are labels, and the neighbour
lift of an embedding (the label-free signal). :mod:`clinfonce.clusters.suggest` ranks the
candidates of a table with these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from clinfonce.clusters._codes import dense_rank
from clinfonce.clusters.metrics import cluster_metrics, entropy_bits
from clinfonce.losses.positives import Overlap

#: Fewer expected in-batch positives per anchor than this: clusters too fine.
MIN_POSITIVES = 0.5
#: More than this share of the batch positive for an anchor: clusters too coarse.
MAX_POSITIVE_SHARE = 0.5
#: Cluster mates per group of the cluster-balanced batches that ``clinfonce run`` trains
#: clusters too fine for a random batch with (``train.per_cluster``). Measured on 320 fixed
#: clusters at batch 64: +1.8 kNN and +0.3 linear points over random batches, three seeds
#: (docs/results.md, "Positives beyond the batch").
BALANCED_PER_CLUSTER = 4
#: More than this share of the rows alone in their cluster: too fragmented, whatever the
#: average (a few large clusters can hide many singletons, e.g. every distinct tag set).
MAX_SINGLETON_SHARE = 0.2
_PERMUTATIONS = 100
_BOOTSTRAPS = 200
_P_VALUE = 0.05
#: Neighbour lift at or below this: the clusters ignore what the embedding sees (random
#: columns measured 0.99-1.01, useful sources 1.8 and more).
MIN_LIFT = 1.2
_LIFT_NEIGHBOURS = 20
_LIFT_ROWS = 4000


@dataclass
class Candidate:
    """One way of turning auxiliary information into clusters.

    Attributes:
        name: how reports call it, e.g. ``colour`` or ``colour+size``.
        clusters: the ``clusters`` config section that builds it (builder + params).
        ids: cluster id per table row.
    """

    name: str
    clusters: dict[str, Any]
    ids: np.ndarray


@dataclass
class Assessment:
    """A candidate's numbers and verdict.

    Attributes:
        candidate: what was assessed.
        k: number of clusters.
        size_median: median cluster size.
        size_max_share: share of the rows in the largest cluster.
        positives: expected other samples of the anchor's cluster in a batch.
        positive_share: ``positives`` over the batch's other samples.
        usable: positives neither too few nor too many.
        why: a few words on the verdict.
        labelled: rows with a label the information numbers were measured on.
        i_zt: bias-corrected I(Z;T) in bits (``nan`` without labels).
        h_z_given_t: bias-corrected H(Z|T) in bits.
        h_t: H(T) of the labelled rows, in bits.
        ratio: ``i_zt / H(T)`` and its 90% bootstrap interval (``ratio_low``,
            ``ratio_high``), which always contains ``ratio``.
        score: ``(I(Z;T) - H(Z|T)) / H(T)``, the ranking key with labels.
        informative: the permutation test found information about the labels (``None``:
            no labels).
        p_value: that permutation test's p-value.
        label_copy: on the labelled rows the clusters are the labels recoded (every
            cluster inside one label and every label inside one cluster): training on them
            is supervised (SupCon), not weak supervision.
        lift: neighbour lift in an embedding (``nan`` without one).
        per_cluster: the cluster-balanced batches ``positives`` was counted with (0: random
            batches).
    """

    candidate: Candidate
    k: int
    size_median: float
    size_max_share: float
    positives: float
    positive_share: float
    usable: bool
    why: str
    labelled: int = 0
    i_zt: float = float("nan")
    h_z_given_t: float = float("nan")
    h_t: float = float("nan")
    ratio: float = float("nan")
    ratio_low: float = float("nan")
    ratio_high: float = float("nan")
    score: float = float("nan")
    informative: bool | None = None
    p_value: float = float("nan")
    label_copy: bool = False
    lift: float = float("nan")
    per_cluster: int = 0

    def information_text(self) -> str:
        """The label numbers as every output prints them: the same estimator (bias-corrected,
        on the labelled rows), the same rounding, the interval around its point estimate.

        Examples:
            >>> a = Assessment(Candidate("c", {}, np.zeros(1)), 2, 1.0, 0.5, 1.0, 0.1, True, "")
            >>> a.i_zt, a.h_z_given_t, a.h_t, a.ratio, a.ratio_low, a.ratio_high = (
            ...     0.5, 0.25, 1.0, 0.5, 0.4, 0.6)
            >>> a.labelled = 40
            >>> print(a.information_text().replace("], ", "],\\n"))
            I(Z;T)/H(T) = 0.50 [90% CI 0.40, 0.60],
            I(Z;T) = 0.50 of H(T) = 1.00 bits, H(Z|T) = 0.25 bits
        """
        return (
            f"I(Z;T)/H(T) = {self.ratio:.2f} [90% CI {self.ratio_low:.2f}, "
            f"{self.ratio_high:.2f}], I(Z;T) = {self.i_zt:.2f} of H(T) = {self.h_t:.2f} bits, "
            f"H(Z|T) = {self.h_z_given_t:.2f} bits"
        )


#: What the label numbers are computed over, for a note beside them.
INFORMATION_NOTE = (
    "bias-corrected: the mean over 100 label permutations subtracted; 90% bootstrap intervals"
)


def expected_positives(
    ids: np.ndarray, batch_size: int, *, per_cluster: int = 0, memory: int = 0
) -> float:
    """Expected number of other samples of an anchor's cluster among the keys it is
    contrasted with: a uniformly drawn batch (by default), a cluster-balanced batch with
    ``per_cluster`` mates next to each other
    (:class:`~clinfonce.data.balanced_sampler.ClusterBalancedSampler`), plus ``memory``
    past projections (``method.memory.size``).

    Examples:
        >>> expected_positives(np.array([0, 0, 1, 1]), 3)
        0.6666666666666666
        >>> expected_positives(np.arange(10), 8)
        0.0
    """
    if len(ids) < 2:
        return 0.0
    sizes = np.bincount(dense_rank(np.asarray(ids, dtype=np.int64))[0])
    return positives_per_anchor(sizes, batch_size, per_cluster, memory)


def positives_per_anchor(
    sizes: np.ndarray, batch_size: int, per_cluster: int = 0, memory: int = 0
) -> float:
    """:func:`expected_positives` from the cluster sizes.

    In a cluster-balanced batch an anchor in a pure group of ``per_cluster`` meets its
    ``per_cluster - 1`` group mates, and the other ``batch_size - per_cluster`` samples and
    the ``memory`` entries count as uniform draws. An approximation for planning: the
    sampler's mixed groups of leftovers count as uniform draws too.

    Examples:
        >>> sizes = np.full(1000, 4)                # 1000 clusters of 4
        >>> round(positives_per_anchor(sizes, 32), 3)
        0.023
        >>> round(positives_per_anchor(sizes, 32, per_cluster=4), 2)
        3.02
        >>> round(positives_per_anchor(sizes, 32, memory=2048), 2)
        1.56
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    n = float(sizes.sum())
    if n < 2:
        return 0.0
    pair_share = float(np.sum(sizes * (sizes - 1)) / (n * (n - 1)))
    in_group, others = 0.0, batch_size - 1
    if per_cluster > 1:
        grouped = np.floor(sizes / per_cluster) * per_cluster  # members of pure groups
        in_group = float(np.sum(grouped) * (per_cluster - 1) / n)
        others = batch_size - per_cluster
    return in_group + (others + memory) * pair_share


def balanced_per_cluster(sizes: np.ndarray, batch_size: int) -> int:
    """The ``train.per_cluster`` that ``clinfonce run`` picks for clusters of ``sizes``:
    :data:`BALANCED_PER_CLUSTER` when a random batch gives an anchor fewer than
    :data:`MIN_POSITIVES` positives and balanced groups give it at least that many; else 0
    (random batches), also when the groups do not divide the batch.

    Examples:
        >>> balanced_per_cluster(np.full(1000, 8), 64)   # 1000 clusters of 8
        4
        >>> balanced_per_cluster(np.full(10, 800), 64)   # plenty of positives already
        0
        >>> balanced_per_cluster(np.ones(8000), 64)      # singletons: nothing to group
        0
    """
    groups = BALANCED_PER_CLUSTER
    if batch_size % groups or batch_size < 2 * groups:
        return 0
    if positives_per_anchor(sizes, batch_size) >= MIN_POSITIVES:
        return 0
    return groups if positives_per_anchor(sizes, batch_size, groups) >= MIN_POSITIVES else 0


def overlap_positives(
    presence: np.ndarray,
    batch_size: int,
    overlap: Overlap,
    *,
    memory: int = 0,
    max_rows: int = 4000,
    seed: int = 0,
) -> float:
    """Expected total positive weight per anchor from shared tags (an ``overlap`` term):
    ``(batch_size - 1 + memory)`` times the mean weight of a pair of distinct rows,
    estimated on at most ``max_rows`` random rows of the boolean ``[rows, tags]`` table.

    Examples:
        >>> tags = np.array([[1, 0], [1, 1], [0, 1], [0, 0]], dtype=bool)
        >>> round(overlap_positives(tags, 4, Overlap("any")), 2)   # 2 of 6 pairs share a tag
        1.0
    """
    n = len(presence)
    if n < 2:
        return 0.0
    if n > max_rows:
        presence = presence[np.random.default_rng(seed).choice(n, max_rows, replace=False)]
    rows = torch.from_numpy(np.ascontiguousarray(presence, dtype=bool))
    weights = overlap.weights(rows, rows, torch.float64)
    m = len(rows)
    pair_mean = float((weights.sum() - weights.diagonal().sum()) / (m * (m - 1)))
    return (batch_size - 1 + memory) * pair_mean


def expected_alone_fraction(sizes: np.ndarray, batch: int) -> float:
    """Expected share of a random batch's samples with no other sample of their cluster in it.

    An anchor of a cluster of ``n`` among ``N`` samples is alone when the other ``batch - 1``
    draws (without replacement) all miss its ``n - 1`` cluster mates: a hypergeometric
    probability ``C(N - n, batch - 1) / C(N - 1, batch - 1)``.

    Examples:
        >>> expected_alone_fraction(np.array([1, 1, 1, 1]), 2)
        1.0
        >>> round(expected_alone_fraction(np.array([2, 2]), 2), 3)
        0.667
    """
    total = int(sizes.sum())
    draws = batch - 1

    def log_choose(n: int, k: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)

    alone = 0.0
    for size in sizes.tolist():
        if total - size >= draws:
            chance = math.exp(log_choose(total - size, draws) - log_choose(total - 1, draws))
            alone += size / total * chance
    return alone


def neighbour_lift(
    embeddings: np.ndarray, ids: np.ndarray, k: int = _LIFT_NEIGHBOURS, seed: int = 0
) -> float:
    """How much more often a row's ``k`` nearest neighbours (cosine) share its cluster than
    two random rows do: 1 for clusters the embedding knows nothing of, more when they agree.

    Computed on at most 4000 seeded rows.

    Examples:
        >>> x = np.array([[1.0, 0], [1, 0.1], [0, 1], [0.1, 1]])
        >>> neighbour_lift(x, np.array([0, 0, 1, 1]), k=1)
        3.0
    """
    rows = np.arange(len(ids))
    if len(rows) > _LIFT_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, _LIFT_ROWS, replace=False))
    z = dense_rank(np.asarray(ids, dtype=np.int64)[rows])[0]
    x = np.asarray(embeddings, dtype=np.float32)[rows]
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    similarity = x @ x.T
    np.fill_diagonal(similarity, -np.inf)
    k = min(k, len(z) - 1)
    neighbours = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    same = float(np.mean(z[neighbours] == z[:, None]))
    sizes = np.bincount(z).astype(np.float64)
    chance = float(np.sum(sizes * (sizes - 1)) / (len(z) * (len(z) - 1)))
    return same / chance if chance > 0 else float("nan")


def recodes_labels(ids: np.ndarray, labels: np.ndarray) -> bool:
    """Whether clusters ``ids`` are the ``labels`` under other names (every cluster inside one
    label and every label inside one cluster), over rows with a label (``labels >= 0``).

    Needs more labelled rows than labels: with one row per label any partition would do.

    Examples:
        >>> recodes_labels(np.array([5, 5, 7, 7, 9]), np.array([1, 1, 0, 0, -1]))
        True
        >>> recodes_labels(np.array([5, 5, 7, 8]), np.array([1, 1, 0, 0]))
        False
    """
    known = labels >= 0
    z = dense_rank(np.asarray(ids, dtype=np.int64)[known])[0]
    t = dense_rank(np.asarray(labels, dtype=np.int64)[known])[0]
    if len(t) == 0:
        return False
    n_labels = int(t.max()) + 1
    pairs = len(np.unique(z * n_labels + t))
    return len(t) > n_labels and pairs == int(z.max()) + 1 == n_labels


def _mutual_information(z: np.ndarray, t: np.ndarray, n_labels: int) -> float:
    h_z = entropy_bits(np.bincount(z))
    h_t = entropy_bits(np.bincount(t))
    return h_z + h_t - entropy_bits(np.bincount(z * n_labels + t))


def _label_numbers(ids: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    """Bias-corrected information numbers of ``ids`` about ``labels`` (codes, all known)."""
    z = dense_rank(ids)[0]
    n_labels = int(labels.max()) + 1
    h_t = entropy_bits(np.bincount(labels))
    h_z = entropy_bits(np.bincount(z))
    observed = _mutual_information(z, labels, n_labels)
    null = np.array(
        [_mutual_information(z, rng.permutation(labels), n_labels) for _ in range(_PERMUTATIONS)]
    )
    bias = float(null.mean())
    i_zt = max(observed - bias, 0.0)
    p_value = (1 + np.sum(null >= observed - 1e-12)) / (1 + _PERMUTATIONS)
    raw_ratio = (observed - bias) / h_t if h_t > 0 else float("nan")
    ratios = []
    for _ in range(_BOOTSTRAPS):
        pick = rng.integers(0, len(z), len(z))
        zb, tb = dense_rank(z[pick])[0], dense_rank(labels[pick])[0]
        h_tb = entropy_bits(np.bincount(tb))
        if h_tb > 0:
            ratios.append(_mutual_information(zb, tb, int(tb.max()) + 1) / h_tb)
    # Resampling with replacement inflates the plug-in information (duplicated rows look
    # like shared clusters), so the percentiles of the resamples sit above the estimate. Their
    # spread around their own median, laid around the estimate, keeps the width and always
    # contains the point; clipping to [0, 1] treats the point and both ends alike.
    low, high = float("nan"), float("nan")
    if ratios:
        q_low, middle, q_high = np.quantile(ratios, [0.05, 0.5, 0.95])
        low = min(max(raw_ratio - (middle - q_low), 0.0), 1.0)
        high = min(max(raw_ratio + (q_high - middle), 0.0), 1.0)
    h_z_given_t = max(h_z - i_zt, 0.0)
    return {
        "labelled": len(z),
        "i_zt": i_zt,
        "h_z_given_t": h_z_given_t,
        "h_t": h_t,
        "ratio": min(i_zt / h_t, 1.0) if h_t > 0 else float("nan"),
        "ratio_low": low,
        "ratio_high": high,
        "score": (i_zt - h_z_given_t) / h_t if h_t > 0 else float("nan"),
        "informative": bool(p_value <= _P_VALUE),
        "p_value": float(p_value),
        "label_copy": recodes_labels(z, labels),
    }


def assess(
    candidate: Candidate,
    batch_size: int,
    labels: np.ndarray | None = None,
    *,
    embeddings: np.ndarray | None = None,
    seed: int = 0,
    per_cluster: int | Literal["auto"] = 0,
    memory: int = 0,
) -> Assessment:
    """The numbers of one candidate; ``labels`` are codes per row, ``-1`` where unknown;
    ``embeddings`` one row per table row, for the label-free :func:`neighbour_lift`;
    ``per_cluster`` and ``memory`` the cluster-balanced batches and the memory size the
    positives are counted with (a fine source is usable when they give it positives);
    ``per_cluster="auto"``: the batches ``clinfonce run`` would train the candidate with
    (:func:`balanced_per_cluster`)."""
    metrics = cluster_metrics(candidate.ids, ami=False)
    n = len(candidate.ids)
    sizes = np.bincount(dense_rank(np.asarray(candidate.ids, dtype=np.int64))[0])
    if per_cluster == "auto":
        per_cluster = balanced_per_cluster(sizes, batch_size)
    positives = positives_per_anchor(sizes, batch_size, per_cluster, memory)
    share = positives / max(batch_size - 1 + memory, 1)
    alone = float(np.sum(sizes == 1)) / max(n, 1)
    if positives < MIN_POSITIVES:
        usable, why = False, f"too fine: {positives:.2f} positives per anchor (SimCLR-like)"
    elif alone > MAX_SINGLETON_SHARE:
        usable, why = False, f"too fine: {alone:.0%} of the rows alone in their cluster"
    elif share > MAX_POSITIVE_SHARE:
        usable, why = False, f"too coarse: {share:.0%} of the batch is positive"
    else:
        usable, why = True, f"{positives:.1f} positives per anchor"
    if per_cluster > 1:
        why += f" (batches of {per_cluster} cluster mates per group)"
    result = Assessment(
        candidate,
        int(metrics["num_clusters"]),
        metrics["size_median"],
        metrics["size_max"] / n,
        positives,
        share,
        usable,
        why,
        per_cluster=per_cluster,
    )
    if embeddings is not None:
        result.lift = neighbour_lift(embeddings, candidate.ids, seed=seed)
        if not result.lift > MIN_LIFT:
            result.why += "; no agreement with the embedding's neighbourhoods"
    if labels is not None:
        known = labels >= 0
        if known.sum() >= 2 and len(np.unique(labels[known])) >= 2:
            numbers = _label_numbers(
                candidate.ids[known], dense_rank(labels[known])[0], np.random.default_rng(seed)
            )
            for key, value in numbers.items():
                setattr(result, key, value)
            if result.label_copy:
                result.why = "the label itself (recoded): training on it is SupCon"
            elif not result.informative:
                result.why += "; no measurable information about the labels"
    return result
