"""How good a clustering is for contrastive learning: plug-in information measures in bits.

The paper's analysis (Tsai et al., ICLR 2022, docs/method.md §3): clusters Z help
a downstream task with labels T when I(Z;T) is high (they tell about the label) and H(Z|T) is
low (they do not split a label into many clusters). Everything is a plug-in estimate from
counts over the rows given, which is what the official statistics files report.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clinfonce.clusters._codes import dense_rank, encode_labels_values

# Size quantiles reported by :func:`cluster_metrics`, as (key suffix, quantile).
_QUANTILES: tuple[tuple[str, float], ...] = (
    ("min", 0.0),
    ("q10", 0.1),
    ("q25", 0.25),
    ("median", 0.5),
    ("q75", 0.75),
    ("q90", 0.9),
    ("max", 1.0),
)


def entropy_bits(counts: np.ndarray) -> float:
    """Plug-in entropy, in bits, of the distribution given by non-negative counts.

    Computed as log2(N) - sum(c log2 c) / N over counts sorted ascending, so equal count
    multisets give bit-identical results (attribute ranking relies on exact ties).

    Examples:
        >>> entropy_bits(np.array([2, 2]))
        1.0
        >>> entropy_bits(np.array([5, 0]))
        0.0
    """
    c = np.sort(np.asarray(counts, dtype=np.float64)[np.asarray(counts) > 0])
    total = c.sum()
    if total <= 0:
        return 0.0
    value = float(np.log2(total) - np.dot(c, np.log2(c)) / total)
    return max(value, 0.0)


def _codes(values: Any, name: str) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return dense_rank(values.astype(np.int64, copy=False))[0]
    return encode_labels_values(values, name).codes


def cluster_metrics(z: Any, t: Any = None, *, ami: bool = True) -> dict[str, float]:
    """Quality of cluster ids ``z`` (optionally against downstream labels ``t``), in bits.

    Keys: ``num_samples``, ``num_clusters``, ``h_z``, ``singleton_fraction`` (share of
    clusters with one sample), ``singleton_sample_fraction`` (share of samples alone in their
    cluster: these anchors have no positive from another sample), ``size_mean`` and the
    cluster-size quantiles ``size_min``, ``size_q10``, ``size_q25``, ``size_median``,
    ``size_q75``, ``size_q90``, ``size_max``. With ``t``: ``num_labels``, ``h_t``, ``h_zt``
    (joint), ``h_z_given_t`` = H(Z,T) - H(T), ``h_t_given_z`` = H(Z,T) - H(Z), ``i_zt`` =
    H(Z) - H(Z|T), ``i_zt_over_h_t`` (the share of the label information the clusters
    carry; 1 for clusters that refine the labels), ``nmi`` and ``ami`` (scikit-learn,
    arithmetic normalisation).

    Args:
        z: cluster id per sample (ints or any hashable values).
        t: downstream label per sample, same length, or ``None``.
        ami: compute the adjusted mutual information (its expectation term costs
            O(N * num_labels) and dominates for large N); ``False`` leaves ``ami`` out.

    Raises:
        ValueError: empty input, different lengths, or missing values.

    Examples:
        >>> m = cluster_metrics([0, 0, 1, 1], [5, 5, 7, 7])
        >>> m["i_zt"], m["h_z_given_t"], m["num_clusters"]
        (1.0, 0.0, 2.0)
    """
    from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

    zc = _codes(z, "cluster ids")
    n = len(zc)
    if n == 0:
        raise ValueError("cluster_metrics needs at least one sample")
    sizes = np.bincount(zc).astype(np.float64)
    h_z = entropy_bits(sizes)
    out: dict[str, float] = {
        "num_samples": float(n),
        "num_clusters": float(len(sizes)),
        "h_z": h_z,
        "singleton_fraction": float(np.mean(sizes == 1)),
        "singleton_sample_fraction": float(np.sum(sizes == 1) / n),
        "size_mean": float(n / len(sizes)),
    }
    quantiles = np.quantile(sizes, [q for _, q in _QUANTILES])
    out.update({f"size_{key}": float(v) for (key, _), v in zip(_QUANTILES, quantiles, strict=True)})
    if t is None:
        return out
    tc = _codes(t, "labels")
    if len(tc) != n:
        raise ValueError(f"cluster ids ({n}) and labels ({len(tc)}) differ in length")
    n_labels = int(tc.max()) + 1
    h_t = entropy_bits(np.bincount(tc))
    joint, _ = dense_rank(zc * n_labels + tc)
    h_zt = entropy_bits(np.bincount(joint))
    out.update(
        {
            "num_labels": float(n_labels),
            "h_t": h_t,
            "h_zt": h_zt,
            # Clamped at 0: rounding can leave -1e-16, printed as -0.0000.
            "h_z_given_t": max(h_zt - h_t, 0.0),
            "h_t_given_z": max(h_zt - h_z, 0.0),
            "i_zt": max(h_z + h_t - h_zt, 0.0),
            "i_zt_over_h_t": max(h_z + h_t - h_zt, 0.0) / h_t if h_t > 0 else float("nan"),
            "nmi": float(normalized_mutual_info_score(tc, zc)),
        }
    )
    if ami:
        out["ami"] = float(adjusted_mutual_info_score(tc, zc))
    return out
