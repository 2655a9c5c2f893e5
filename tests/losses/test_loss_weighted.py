"""Weighted positives and memory keys against a float64 loop reference, and the partition case."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

from clinfonce.losses import cl_infonce_loss_with_count
from clinfonce.losses.positives import Overlap, Positives
from clinfonce.losses.weighted import MemoryKeys, weighted_cl_infonce_loss

Weight = Callable[[int, int], float]  # (anchor sample, key sample) -> weight, over all keys


def loop_reference(
    features: torch.Tensor,
    weight: Weight,
    memory: torch.Tensor | None = None,
    temperature: float = 0.1,
) -> tuple[float, int]:
    """Anchors are all views; keys are the other views, then the memory entries (key sample
    n + q for entry q); ``weight`` gets sample numbers in that joint numbering."""
    x = F.normalize(features.double(), dim=-1).tolist()
    n, v = len(x), len(x[0])
    keys = [((j, u), x[j][u]) for j in range(n) for u in range(v)]
    if memory is not None:
        keys += [((n + q, 0), vec) for q, vec in enumerate(memory.double().tolist())]
    losses = []
    for i in range(n):
        for a in range(v):
            f, w = [], []
            for (j, u), vec in keys:
                if (j, u) == (i, a):
                    continue
                f.append(sum(p * q for p, q in zip(x[i][a], vec, strict=True)) / temperature)
                w.append(weight(i, j))
            top = max(f)
            log_den = top + math.log(sum(math.exp(val - top) for val in f))
            if sum(w) > 0:
                losses.append(log_den - sum(wi * fi for wi, fi in zip(w, f, strict=True)) / sum(w))
    return (sum(losses) / len(losses) if losses else 0.0), len(losses)


TAGS = [{0, 1}, {1}, {2}, set(), {0, 1, 2}, {3}, {1, 2}]


def _tag_tensor(tag_sets: list[set[int]], width: int = 4) -> torch.Tensor:
    return torch.tensor([[t in s for t in range(width)] for s in tag_sets])


def _overlap_weight(kind: str, m: int, a: set[int], b: set[int]) -> float:
    shared = len(a & b)
    if kind == "jaccard":
        return shared / len(a | b) if a | b else 0.0
    return float(shared >= (1 if kind == "any" else m))


def _features(n: int, v: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, v, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("views", [1, 2])
@pytest.mark.parametrize(("kind", "m"), [("any", 1), ("at-least", 2), ("jaccard", 1)])
@pytest.mark.parametrize("chunk", [None, 2])
def test_tag_overlap_matches_loop_reference(
    views: int, kind: str, m: int, chunk: int | None
) -> None:
    features = _features(len(TAGS), views, 5, seed=views)
    rule = Overlap(kind, m)  # type: ignore[arg-type]

    def weight(i: int, j: int) -> float:
        return 1.0 if i == j else _overlap_weight(kind, m, TAGS[i], TAGS[j])

    expected, count = loop_reference(features, weight, temperature=0.2)
    loss, valid = weighted_cl_infonce_loss(
        features,
        Positives(tags=_tag_tensor(TAGS), overlap=rule),
        temperature=0.2,
        chunk_size=chunk,
    )
    assert int(valid) == count
    assert loss.item() == pytest.approx(expected, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("views", [1, 2, 3])
@pytest.mark.parametrize("ids", [[0, 2, 1, 0, 2, 2, 1, 0, 3], list(range(9)), [4] * 9])
def test_partition_as_tags_is_todays_loss(views: int, ids: list[int]) -> None:
    features = _features(len(ids), views, 6, seed=3 + views)
    today, today_valid = cl_infonce_loss_with_count(features, torch.tensor(ids), temperature=0.3)
    one_hot = F.one_hot(torch.tensor(ids)).bool()
    for positives in (Positives(cluster_ids=torch.tensor(ids)), Positives(tags=one_hot)):
        for chunk in (None, 4):
            loss, valid = weighted_cl_infonce_loss(
                features, positives, temperature=0.3, chunk_size=chunk
            )
            assert int(valid) == today_valid
            assert loss.item() == pytest.approx(today.item(), rel=1e-12, abs=1e-14)


def _memory_case(
    views: int, seed: int
) -> tuple[torch.Tensor, list[int], list[int], torch.Tensor, list[int], list[int]]:
    gen = torch.Generator().manual_seed(seed)
    batch_ids, batch_index = [0, 1, 1, 2, 3], [10, 11, 12, 13, 14]
    memory_ids, memory_index = [1, 2, 0, 5, 3, 1], [11, 20, 21, 22, 10, 23]  # 11, 10: own past
    features = torch.randn(5, views, 4, generator=gen, dtype=torch.float64)
    memory = F.normalize(torch.randn(6, 4, generator=gen, dtype=torch.float64), dim=-1)
    return features, batch_ids, batch_index, memory, memory_ids, memory_index


@pytest.mark.parametrize("views", [1, 2])
@pytest.mark.parametrize("chunk", [None, 2])
def test_memory_keys_match_loop_reference(views: int, chunk: int | None) -> None:
    features, ids, index, memory, memory_ids, memory_index = _memory_case(views, seed=views)
    all_ids, all_index = ids + memory_ids, index + memory_index

    def weight(i: int, j: int) -> float:  # own past entries: positives; else same cluster
        return float(all_index[i] == all_index[j] or all_ids[i] == all_ids[j])

    expected, count = loop_reference(features, weight, memory, temperature=0.1)
    loss, valid = weighted_cl_infonce_loss(
        features,
        Positives(cluster_ids=torch.tensor(ids)),
        sample_index=torch.tensor(index),
        memory=MemoryKeys(
            memory, Positives(cluster_ids=torch.tensor(memory_ids)), torch.tensor(memory_index)
        ),
        chunk_size=chunk,
    )
    assert int(valid) == count
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_memory_with_instance_ids_gives_own_past_entries_as_only_queue_positives() -> None:
    features, _, index, memory, _, memory_index = _memory_case(1, seed=5)
    all_index = index + memory_index

    def weight(i: int, j: int) -> float:
        return float(all_index[i] == all_index[j])

    expected, count = loop_reference(features, weight, memory, temperature=0.1)
    loss, valid = weighted_cl_infonce_loss(
        features,
        Positives(cluster_ids=torch.tensor(index)),
        sample_index=torch.tensor(index),
        memory=MemoryKeys(
            memory, Positives(cluster_ids=torch.tensor(memory_index)), torch.tensor(memory_index)
        ),
    )
    assert int(valid) == count == 2  # with one view only samples 10 and 11 have a past entry
    assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_tags_with_memory_match_loop_reference() -> None:
    features = _features(4, 2, 5, seed=9)
    memory_tags = [{1}, {3}, set(), {0, 2}]
    memory = F.normalize(_features(4, 1, 5, seed=10)[:, 0], dim=-1)
    all_tags, all_index = TAGS[:4] + memory_tags, [0, 1, 2, 3, 2, 7, 3, 8]

    def weight(i: int, j: int) -> float:
        if all_index[i] == all_index[j]:
            return 1.0
        return _overlap_weight("jaccard", 1, all_tags[i], all_tags[j])

    expected, count = loop_reference(features, weight, memory, temperature=0.5)
    rule = Overlap("jaccard")
    loss, valid = weighted_cl_infonce_loss(
        features,
        Positives(tags=_tag_tensor(TAGS[:4]), overlap=rule),
        sample_index=torch.arange(4),
        memory=MemoryKeys(
            memory,
            Positives(tags=_tag_tensor(memory_tags), overlap=rule),
            torch.tensor(all_index[4:]),
        ),
        temperature=0.5,
        chunk_size=3,
    )
    assert int(valid) == count
    assert loss.item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("kind", ["any", "jaccard"])
def test_gradcheck_with_tags_and_memory(kind: str) -> None:
    features = _features(5, 2, 3, seed=11).requires_grad_()
    memory = F.normalize(_features(3, 1, 3, seed=12)[:, 0], dim=-1)
    tags = _tag_tensor(TAGS[:5])
    rule = Overlap(kind)  # type: ignore[arg-type]
    keys = MemoryKeys(
        memory, Positives(tags=_tag_tensor(TAGS[4:7]), overlap=rule), torch.tensor([4, 30, 31])
    )

    def loss(x: torch.Tensor) -> torch.Tensor:
        return weighted_cl_infonce_loss(
            x,
            Positives(tags=tags, overlap=rule),
            sample_index=torch.arange(5),
            memory=keys,
            chunk_size=2,
        )[0]

    assert torch.autograd.gradcheck(loss, (features,))


def test_no_positive_gives_connected_zero() -> None:
    features = _features(3, 1, 4, seed=1).requires_grad_()
    loss, valid = weighted_cl_infonce_loss(features, Positives(cluster_ids=torch.arange(3)))
    loss.backward()
    assert int(valid) == 0 and loss.item() == 0.0
    assert features.grad is not None and not features.grad.any()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Positives(), "exactly one"),
        (lambda: Positives(tags=torch.ones(3, 2)), "boolean"),
        (lambda: Overlap("some"), "overlap kind"),  # type: ignore[arg-type]
        (lambda: Overlap("at-least", 0), "min_shared"),
        (
            lambda: weighted_cl_infonce_loss(
                torch.randn(3, 2, 4), Positives(cluster_ids=torch.arange(4))
            ),
            "expected 3 samples",
        ),
        (
            lambda: weighted_cl_infonce_loss(
                torch.randn(2, 1, 4),
                Positives(cluster_ids=torch.arange(2)),
                memory=MemoryKeys(
                    torch.randn(1, 4), Positives(cluster_ids=torch.arange(1)), torch.arange(1)
                ),
            ),
            "sample_index",
        ),
    ],
)
def test_bad_input_raises_clear_error(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
