"""cluster_metrics against a plain float64 loop reference and analytic cases."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

from clinfonce.clusters import cluster_metrics
from clinfonce.clusters.metrics import entropy_bits


def _entropy(values: list) -> float:
    n = len(values)
    return -sum(c / n * math.log2(c / n) for c in Counter(values).values())


def _reference(z: list, t: list) -> dict[str, float]:
    """Plug-in quantities by counting tuples in Python, float64 throughout."""
    h_z, h_t = _entropy(z), _entropy(t)
    h_zt = _entropy(list(zip(z, t, strict=True)))
    return {
        "h_z": h_z,
        "h_t": h_t,
        "h_zt": h_zt,
        "h_z_given_t": h_zt - h_t,
        "h_t_given_z": h_zt - h_z,
        "i_zt": h_z + h_t - h_zt,
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_loop_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    t = rng.integers(0, 7, n)
    z = (t * 3 + rng.integers(0, 4, n)) % 11  # partly informative about t
    got = cluster_metrics(z, t)
    ref = _reference(z.tolist(), t.tolist())
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
    assert got["nmi"] == pytest.approx(normalized_mutual_info_score(t, z), abs=1e-12)
    assert got["ami"] == pytest.approx(adjusted_mutual_info_score(t, z), abs=1e-12)
    assert got["i_zt_over_h_t"] == pytest.approx(ref["i_zt"] / ref["h_t"])


def test_string_labels_and_ids_equal_integer_codes() -> None:
    z = ["b", "a", "b", "c", "a"]
    t = ["x", "y", "x", "x", "y"]
    as_ints = cluster_metrics([1, 0, 1, 2, 0], [0, 1, 0, 0, 1])
    assert cluster_metrics(z, t) == pytest.approx(as_ints)


def test_z_equals_t_is_fully_informative() -> None:
    t = np.repeat(np.arange(5), [1, 2, 3, 4, 6])
    m = cluster_metrics(t, t)
    assert m["h_z_given_t"] == pytest.approx(0.0, abs=1e-12)
    assert m["h_t_given_z"] == pytest.approx(0.0, abs=1e-12)
    assert m["i_zt"] == pytest.approx(m["h_t"], abs=1e-12)
    assert m["nmi"] == pytest.approx(1.0)
    assert m["ami"] == pytest.approx(1.0)


def test_independent_z_carries_no_information() -> None:
    # Every (z, t) pair appears equally often: exactly independent.
    z = np.tile(np.arange(4), 6)
    t = np.repeat(np.arange(3), 8)
    m = cluster_metrics(z, t)
    assert m["i_zt"] == pytest.approx(0.0, abs=1e-12)
    assert m["h_z_given_t"] == pytest.approx(2.0, abs=1e-12)
    assert m["h_t"] == pytest.approx(math.log2(3), abs=1e-12)


def test_constant_z() -> None:
    t = np.array([0, 1, 1, 2, 2, 2])
    m = cluster_metrics(np.zeros(6, dtype=int), t)
    assert m["h_z"] == 0.0
    assert m["i_zt"] == pytest.approx(0.0, abs=1e-12)
    assert m["h_t_given_z"] == pytest.approx(m["h_t"], abs=1e-12)
    assert m["num_clusters"] == 1


def test_instance_clusters_sizes_and_singletons() -> None:
    m = cluster_metrics(np.arange(8))
    assert m["h_z"] == pytest.approx(3.0)
    assert m["singleton_fraction"] == 1.0
    assert m["singleton_sample_fraction"] == 1.0
    assert m["size_max"] == 1.0
    assert "h_t" not in m


def test_size_statistics() -> None:
    z = [0] * 5 + [1] * 3 + [2] + [3]
    m = cluster_metrics(z)
    assert m["num_clusters"] == 4
    assert (m["size_min"], m["size_median"], m["size_max"]) == (1.0, 2.0, 5.0)
    assert m["singleton_fraction"] == 0.5
    assert m["singleton_sample_fraction"] == pytest.approx(0.2)
    assert m["size_mean"] == pytest.approx(2.5)


def test_entropy_bits_ties_are_exact() -> None:
    assert entropy_bits(np.array([3, 5, 9])) == entropy_bits(np.array([9, 3, 5]))
    assert entropy_bits(np.array([0, 0])) == 0.0


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        cluster_metrics([])
    with pytest.raises(ValueError, match="differ in length"):
        cluster_metrics([0, 1], [0])
    with pytest.raises(ValueError, match="missing"):
        cluster_metrics([0, 1, 1], [0.0, np.nan, 1.0])
