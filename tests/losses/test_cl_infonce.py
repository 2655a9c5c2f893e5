"""Cl-InfoNCE against a plain float64 loop reference, closed forms, SimCLR and SupCon."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from clinfonce.losses import ClInfoNCELoss, cl_infonce_loss, cl_infonce_loss_with_count
from clinfonce.losses.logsumexp import masked_logsumexp


def reference_loss(
    features: torch.Tensor,
    cluster_ids: list[int] | None = None,
    mask: list[list[bool]] | None = None,
    temperature: float = 0.1,
    base_temperature: float | None = None,
    normalize: bool = True,
) -> tuple[float, int]:
    """Paper-notes section 1 written as loops over anchors and positives, in Python floats."""
    x = features.double().tolist()
    n, v = len(x), len(x[0])
    if normalize:
        x = [[[c / math.sqrt(sum(e * e for e in vec)) for c in vec] for vec in s] for s in x]

    def same_group(i: int, j: int) -> bool:
        if i == j:
            return True
        if mask is not None:
            return mask[i][j]
        if cluster_ids is not None:
            return cluster_ids[i] == cluster_ids[j]
        return False

    views = [(i, k) for i in range(n) for k in range(v)]
    losses = []
    for a in views:
        f = {}
        for b in views:
            if b != a:
                f[b] = (
                    sum(p * q for p, q in zip(x[a[0]][a[1]], x[b[0]][b[1]], strict=True))
                    / temperature
                )
        top = max(f.values())
        log_den = top + math.log(sum(math.exp(val - top) for val in f.values()))
        positives = [b for b in f if same_group(a[0], b[0])]
        if positives:
            losses.append(-sum(f[p] - log_den for p in positives) / len(positives))
    loss = sum(losses) / len(losses) if losses else 0.0
    if base_temperature is not None:
        loss *= temperature / base_temperature
    return loss, len(losses)


def _features(
    n: int, v: int, d: int, seed: int, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    return torch.randn(n, v, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


CLUSTERINGS = {
    "random": [0, 2, 1, 0, 2, 2, 1, 0, 3],
    "singletons": list(range(9)),
    "one_cluster": [7] * 9,
    "some_singletons": [5, 5, -3, 10**12, 5, 1, 1, 2, 3],
}


@pytest.mark.parametrize("views", [1, 2, 3])
@pytest.mark.parametrize("clustering", sorted(CLUSTERINGS))
@pytest.mark.parametrize(("temperature", "base"), [(0.1, None), (0.5, 0.07)])
def test_matches_loop_reference(
    views: int, clustering: str, temperature: float, base: float | None
) -> None:
    ids = CLUSTERINGS[clustering]
    features = _features(len(ids), views, 5, seed=views)
    expected, count = reference_loss(features, ids, temperature=temperature, base_temperature=base)
    for chunk in (None, 2):
        loss, valid = cl_infonce_loss_with_count(
            features,
            torch.tensor(ids),
            temperature=temperature,
            base_temperature=base,
            chunk_size=chunk,
        )
        assert valid == count
        assert loss.item() == pytest.approx(expected, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("views", [1, 2, 3])
def test_simclr_default_matches_reference(views: int) -> None:
    features = _features(6, views, 4, seed=10 + views)
    expected, count = reference_loss(features, None, temperature=0.2)
    loss, valid = cl_infonce_loss_with_count(features, temperature=0.2)
    assert valid == count == (0 if views == 1 else 6 * views)
    assert loss.item() == pytest.approx(expected, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("views", [1, 2, 3])
def test_mask_form_matches_reference(views: int) -> None:
    gen = torch.Generator().manual_seed(views)
    n = 7
    mask = torch.rand(n, n, generator=gen) < 0.3  # asymmetric, random diagonal
    mask[3] = False  # sample 3 relates to nobody else
    features = _features(n, views, 4, seed=20 + views)
    expected, count = reference_loss(features, mask=mask.tolist(), temperature=0.3)
    loss, valid = cl_infonce_loss_with_count(features, mask=mask, temperature=0.3, chunk_size=3)
    assert valid == count
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_mask_equal_to_cluster_relation_gives_cluster_loss() -> None:
    ids = torch.tensor(CLUSTERINGS["random"])
    features = _features(len(ids), 2, 6, seed=3)
    relation = ids[:, None] == ids[None, :]
    by_mask = cl_infonce_loss(features, mask=relation)
    torch.testing.assert_close(by_mask, cl_infonce_loss(features, ids), rtol=1e-12, atol=0)


def test_unnormalized_features_match_reference() -> None:
    features = _features(5, 2, 3, seed=4) * 0.3
    ids = [0, 1, 0, 1, 1]
    expected, _ = reference_loss(features, ids, temperature=0.5, normalize=False)
    loss = cl_infonce_loss(features, torch.tensor(ids), temperature=0.5, normalize=False)
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_module_records_valid_anchors_and_matches_functional() -> None:
    loss_fn = ClInfoNCELoss(temperature=0.2, base_temperature=0.07, chunk_size=4)
    features = _features(9, 1, 4, seed=5)
    ids = torch.tensor(CLUSTERINGS["some_singletons"])
    loss = loss_fn(features, cluster_ids=ids)
    assert loss_fn.last_num_valid_anchors == 5  # the three 5s and the two 1s
    expected = cl_infonce_loss(features, ids, temperature=0.2, base_temperature=0.07)
    torch.testing.assert_close(loss, expected)
    assert "temperature=0.2" in repr(loss_fn)


def test_no_valid_anchor_gives_connected_zero() -> None:
    features = _features(5, 1, 4, seed=6).requires_grad_()
    loss, valid = cl_infonce_loss_with_count(features, torch.arange(5))
    assert valid == 0 and loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert features.grad is not None
    assert torch.equal(features.grad, torch.zeros_like(features))


def _gradcheck(features: torch.Tensor, **kwargs: Any) -> None:
    features.requires_grad_()
    assert torch.autograd.gradcheck(lambda f: cl_infonce_loss(f, **kwargs), (features,))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cluster_ids": torch.tensor([0, 1, 0, 2, 1])},
        {"cluster_ids": None, "chunk_size": 2},
        {"mask": torch.tensor([[0, 1, 0, 0, 1]] * 5, dtype=torch.bool)},
        {"cluster_ids": torch.tensor([0, 1, 0, 2, 1]), "normalize": False},
    ],
    ids=["clusters", "simclr-chunked", "mask", "unnormalized"],
)
def test_gradcheck(kwargs: dict[str, Any]) -> None:
    _gradcheck(_features(5, 2, 3, seed=7), temperature=0.5, **kwargs)


def test_gradcheck_one_view_with_anchors_without_positives() -> None:
    _gradcheck(_features(5, 1, 3, seed=8), cluster_ids=torch.tensor([0, 0, 1, 2, 1]))


def test_masked_logsumexp_blocks_offsets_and_gradients() -> None:
    gen = torch.Generator().manual_seed(9)
    keys = torch.randn(11, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    anchors = torch.randn(4, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    offset = 5  # anchor a is key 5 + a, as for rank 1 of a gathered batch
    logits = anchors @ keys.T * 3.0
    own = torch.zeros_like(logits, dtype=torch.bool)
    own[torch.arange(4), offset + torch.arange(4)] = True
    expected = logits.masked_fill(own, float("-inf")).logsumexp(dim=1)
    for chunk in (1, 3, None):
        torch.testing.assert_close(masked_logsumexp(anchors, keys, 3.0, offset, chunk), expected)
    assert torch.autograd.gradcheck(
        lambda a, k: masked_logsumexp(a, k, 3.0, offset, 3), (anchors, keys)
    )


def _aligned_orthogonal(sizes: list[int], views: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All views of a sample equal; samples orthonormal; cluster c holds sizes[c] samples."""
    n = sum(sizes)
    features = torch.eye(n, dtype=torch.float64)[:, None, :].expand(n, views, n) * 2.5
    ids = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return features, ids


@pytest.mark.parametrize("views", [1, 2, 3])
def test_analytic_value_for_aligned_orthogonal_views(views: int) -> None:
    sizes, tau = [1, 2, 4], 0.25
    features, ids = _aligned_orthogonal(sizes, views)
    total = sum(sizes) * views
    # Anchor in a cluster of n samples: V-1 other views at similarity 1, the rest at 0.
    log_den = math.log((views - 1) * math.exp(1 / tau) + total - views)
    terms = []
    for n in sizes:
        positives = views * n - 1
        if positives:
            terms += [log_den - (views - 1) / tau / positives] * (n * views)
    expected = sum(terms) / len(terms)
    assert cl_infonce_loss(features, ids, temperature=tau).item() == pytest.approx(expected)


def test_simclr_equals_independent_nt_xent() -> None:
    features = _features(8, 2, 16, seed=11, dtype=torch.float32)
    tau = 0.2
    # NT-Xent in its usual layout: views stacked view-major, targets are the partner views.
    z = F.normalize(torch.cat([features[:, 0], features[:, 1]]), dim=1)
    logits = (z @ z.T / tau).fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(8, 16), torch.arange(8)])
    nt_xent = F.cross_entropy(logits, targets)
    torch.testing.assert_close(cl_infonce_loss(features, temperature=tau), nt_xent)


def _load_benchmark() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_loss.py"
    spec = importlib.util.spec_from_file_location("bench_loss", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_supcon_equivalence_with_label_clusters() -> None:
    """The benchmark's baseline is SupCon in its original dense form (view-major rows, float
    masks, exp then log), independent of the library; the official code scales by tau/0.07."""
    supcon_dense = _load_benchmark().dense_supcon_loss
    features = _features(12, 2, 8, seed=12, dtype=torch.float32)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 3, 3, 1, 2, 4])
    ours = cl_infonce_loss(features, labels, temperature=0.1, base_temperature=0.07)
    torch.testing.assert_close(ours, supcon_dense(features, labels, 0.1) * (0.1 / 0.07))
    one_view = features[:, :1]  # with one view, the label-4 anchor has no positive
    torch.testing.assert_close(
        cl_infonce_loss(one_view, labels, temperature=0.2), supcon_dense(one_view, labels, 0.2)
    )


@settings(max_examples=25, deadline=None, database=None)
@given(
    ids=st.lists(st.integers(0, 3), min_size=2, max_size=8),
    views=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_permutation_equivariance(ids: list[int], views: int, seed: int) -> None:
    """Reordering samples, reordering views and renaming clusters changes nothing."""
    gen = torch.Generator().manual_seed(seed)
    n = len(ids)
    features = torch.randn(n, views, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    cluster_ids = torch.tensor(ids)
    order, view_order = torch.randperm(n, generator=gen), torch.randperm(views, generator=gen)
    renamed = (cluster_ids * 7 + 100)[order]
    moved = features[order][:, view_order].detach().requires_grad_()

    loss = cl_infonce_loss(features, cluster_ids, temperature=0.3)
    loss_moved = cl_infonce_loss(moved, renamed, temperature=0.3)
    torch.testing.assert_close(loss_moved, loss, rtol=1e-12, atol=1e-12)
    loss.backward()
    loss_moved.backward()
    assert features.grad is not None and moved.grad is not None
    torch.testing.assert_close(moved.grad, features.grad[order][:, view_order])


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float16, 2e-3), (torch.bfloat16, 2e-2)])
def test_half_precision_inputs_are_computed_in_float32(dtype: torch.dtype, tol: float) -> None:
    exact = _features(32, 2, 16, seed=13)
    ids = torch.arange(32) % 5
    low = exact.to(dtype).requires_grad_()
    loss = cl_infonce_loss(low, ids, temperature=0.1)
    assert loss.dtype == torch.float32
    # Computed in float32 from the rounded inputs: as exact as float32 allows ...
    rounded = cl_infonce_loss(low.detach().double(), ids, temperature=0.1)
    assert loss.item() == pytest.approx(rounded.item(), rel=1e-5)
    # ... and within the input rounding of the float64 loss.
    assert loss.item() == pytest.approx(cl_infonce_loss(exact, ids).item(), rel=tol)
    loss.backward()
    assert low.grad is not None and low.grad.dtype == dtype
    assert torch.isfinite(low.grad.float()).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_tiny_temperature_identical_vectors_is_finite(dtype: torch.dtype) -> None:
    n, views = 16, 2
    features = torch.ones(n, views, 8, dtype=dtype, requires_grad=True)
    loss = cl_infonce_loss(features, torch.arange(n) % 3, temperature=1e-3)
    # All similarities are equal, so every anchor's loss is log(number of other views).
    assert loss.item() == pytest.approx(math.log(n * views - 1), abs=1e-2)
    loss.backward()
    assert features.grad is not None and torch.isfinite(features.grad.float()).all()


def test_tiny_temperature_float32_random_is_finite_and_accurate() -> None:
    features = _features(20, 2, 8, seed=14)
    ids = torch.arange(20) % 4
    expected, _ = reference_loss(features, ids.tolist(), temperature=1e-3)
    loss = cl_infonce_loss(features.float().requires_grad_(), ids, temperature=1e-3)
    assert loss.item() == pytest.approx(expected, rel=1e-4)


F3 = torch.zeros(4, 2, 3)


def test_non_finite_features_give_a_non_finite_loss() -> None:
    """Not scanned for (a scan waits for the device every call): the NaN reaches the loss,
    where the training loop stops on it."""
    features = torch.randn(4, 2, 3).index_fill_(0, torch.tensor([2]), math.nan)
    assert torch.isnan(cl_infonce_loss(features, torch.tensor([0, 0, 1, 1])))


@pytest.mark.parametrize("ids", [None, [3, 3, -1, 8, 8, 8, 0, 3, 2, 2, 5, 5]])
def test_loss_under_bf16_autocast_is_float32_accurate(ids: list[int] | None) -> None:
    """A surrounding autocast does not lower the loss's precision: its value and gradient
    under CPU bfloat16 autocast match the float64 loop reference as a float32 computation
    does (with the denominator in bfloat16 the value was off by 8e-4 at B=512)."""
    features = _features(12, 2, 16, seed=21)
    expected, _ = reference_loss(features, ids, temperature=0.1)
    x32 = features.float().requires_grad_()
    cluster_ids = None if ids is None else torch.tensor(ids)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = cl_infonce_loss(x32, cluster_ids, temperature=0.1)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected, rel=2e-6)
    loss.backward()
    x64 = features.clone().requires_grad_()
    cl_infonce_loss(x64, cluster_ids, temperature=0.1).backward()
    assert x32.grad is not None and x64.grad is not None
    torch.testing.assert_close(x32.grad.double(), x64.grad, rtol=1e-4, atol=1e-6)


def test_bf16_inputs_are_computed_in_float32() -> None:
    features = _features(6, 2, 8, seed=22)
    rounded = features.to(torch.bfloat16)
    expected, _ = reference_loss(rounded.double(), [0, 1, 0, 1, 2, 2])
    loss = cl_infonce_loss(rounded, torch.tensor([0, 1, 0, 1, 2, 2]))
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected, rel=2e-6)


def _ids(*shape: int, dtype: torch.dtype = torch.long) -> torch.Tensor:
    return torch.zeros(*shape, dtype=dtype)


BAD_INPUTS = [
    ({"features": torch.zeros(4, 3)}, r"features: expected shape \[N, V, D\].*\(4, 3\).*unsqueeze"),
    ({"features": torch.zeros(2, 4, 2, 3)}, r"features: expected shape .*\(2, 4, 2, 3\)"),
    ({"features": torch.zeros(4, 0, 3)}, r"features: expected N, V, D >= 1.*\(4, 0, 3\)"),
    ({"features": _ids(4, 2, 3)}, r"features: .*floating.*torch.int64"),
    ({"features": torch.zeros(1, 1, 3)}, r"features: need at least 2 views.*N=1, V=1"),
    ({"features": F3, "cluster_ids": _ids(5)}, r"cluster_ids: .*\[N\] = \[4\].*\(5,\)"),
    ({"features": F3, "cluster_ids": _ids(4, 1)}, r"cluster_ids: .*\[4\].*\(4, 1\)"),
    ({"features": F3, "cluster_ids": torch.zeros(4)}, r"cluster_ids: .*integer.*torch.float32"),
    ({"features": F3, "cluster_ids": _ids(4, dtype=torch.bool)}, r"cluster_ids: .*torch.bool"),
    ({"features": F3, "mask": torch.zeros(4, 4)}, r"mask: expected a boolean.*torch.float32"),
    ({"features": F3, "mask": _ids(4, 3, dtype=torch.bool)}, r"mask: .*\[4, 4\].*\(4, 3\)"),
    ({"features": F3, "mask": _ids(3, 4, dtype=torch.bool)}, r"mask: .*N = 4.*\(3, 4\)"),
    ({"features": F3, "mask": _ids(4, dtype=torch.bool)}, r"mask: expected shape.*\(4,\)"),
    (
        {"features": F3, "cluster_ids": _ids(4), "mask": _ids(4, 4, dtype=torch.bool)},
        r"cluster_ids and mask were both given",
    ),
    ({"features": F3, "temperature": 0.0}, r"temperature: expected a finite number > 0; got 0.0"),
    ({"features": F3, "temperature": math.inf}, r"temperature: .*inf"),
    ({"features": F3, "base_temperature": -1.0}, r"base_temperature: .*got -1.0"),
    ({"features": F3, "chunk_size": 0}, r"chunk_size: expected None or a positive integer; got 0"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_INPUTS)
def test_bad_input_raises_clear_value_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cl_infonce_loss(**kwargs)  # type: ignore[arg-type]


def test_module_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="temperature"):
        ClInfoNCELoss(temperature=-0.1)
    with pytest.raises(ValueError, match=r"features: expected a torch\.Tensor"):
        ClInfoNCELoss()([[1.0, 2.0]])
