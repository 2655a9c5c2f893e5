"""Weighted k-nearest-neighbour classification on cosine similarity.

The instance-discrimination kNN protocol: features are L2-normalised, each query's ``k``
most similar bank samples vote for their label with weight ``exp(cosine / T)`` (T = 0.07).
Similarities are computed one block of queries at a time, sized so that a block of the
``[queries, bank]`` similarity matrix holds about 2^26 floats (256 MB): 60,000 x 10,000
features never need the whole matrix. Several ``k`` share one top-``max(k)`` search. The
search runs where the features are (the model's device): a matrix product and ``topk`` in
torch, or faiss's exact GPU search when the features are on CUDA and faiss is installed
with GPU support.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from clinfonce.evaluation.metrics import topk_correct

#: Elements of one block of the similarity matrix (float32: 256 MB).
BLOCK_ELEMENTS = 1 << 26
#: The largest k faiss's GPU search returns.
FAISS_GPU_MAX_K = 2048


def _faiss_gpu(device: torch.device, top: int) -> Any:
    """faiss, when it can search on ``device`` (CUDA, faiss built with GPUs, ``top`` within
    its limit); else ``None`` (torch searches)."""
    if device.type != "cuda" or top > FAISS_GPU_MAX_K:
        return None
    try:
        import faiss
        import faiss.contrib.torch_utils
    except ImportError:
        return None
    return faiss if faiss.get_num_gpus() > 0 else None


def _most_similar(
    queries: torch.Tensor, bank: torch.Tensor, top: int, faiss: Any, resources: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarity and bank index of each query's ``top`` nearest bank rows, most
    similar first (unit-norm inputs)."""
    if faiss is None:
        sim, idx = (queries @ bank.T).topk(top, dim=1)  # sorted: the first k are the top k
        return sim, idx
    sim, idx = faiss.knn_gpu(
        resources,
        queries,
        bank,
        top,
        metric=faiss.METRIC_INNER_PRODUCT,
        device=queries.device.index or 0,
    )
    return sim, idx.long()


def _knn_votes(
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    queries: torch.Tensor,
    *,
    ks: Sequence[int],
    temperature: float,
    num_classes: int | None,
    chunk_size: int | None,
    device: torch.device | str | None,
) -> Iterator[tuple[int, dict[int, torch.Tensor]]]:
    """Per block of queries: its start and, for each ``k``, the ``[block, C]`` vote sums."""
    if len(bank) != len(bank_labels):
        raise ValueError(f"{len(bank)} bank features but {len(bank_labels)} bank labels")
    if len(bank) == 0:
        raise ValueError("the kNN bank is empty")
    if bank.shape[1:] != queries.shape[1:]:
        raise ValueError(
            f"bank features have dimension {tuple(bank.shape[1:])} but queries "
            f"{tuple(queries.shape[1:])}"
        )
    if temperature <= 0:
        raise ValueError(f"the kNN temperature must be > 0, got {temperature}")
    if not ks or min(ks) < 1:
        raise ValueError(f"kNN needs k >= 1, got {list(ks)}")
    if int(bank_labels.min()) < 0:
        raise ValueError("kNN bank labels must be >= 0; drop unlabelled (-1) samples first")
    device = torch.device(device) if device is not None else bank.device
    classes = num_classes if num_classes is not None else int(bank_labels.max()) + 1
    bank = F.normalize(bank.to(device, torch.float32), dim=1)
    labels = bank_labels.to(device).long()
    top = min(max(ks), len(bank))
    faiss = _faiss_gpu(device, top)
    resources = faiss.StandardGpuResources() if faiss is not None else None
    step = chunk_size if chunk_size is not None else max(1, BLOCK_ELEMENTS // len(bank))
    for start in range(0, len(queries), step):
        q = F.normalize(queries[start : start + step].to(device, torch.float32), dim=1)
        sim, idx = _most_similar(q, bank, top, faiss, resources)
        # float64 weights: exp(1 / T) overflows float32 below T = 0.0113.
        weight = (sim.double() / temperature).exp()
        neighbour_labels = labels[idx]
        votes = {}
        for k in ks:
            v = torch.zeros(len(q), classes, dtype=torch.float64, device=device)
            votes[k] = v.scatter_add_(1, neighbour_labels[:, :k], weight[:, :k])
        yield start, votes


def knn_predict(
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    queries: torch.Tensor,
    *,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Class scores of each query from its ``k`` most similar bank samples.

    Args:
        bank: ``[M, D]`` reference features.
        bank_labels: ``[M]`` integer labels ``0..C-1``.
        queries: ``[Q, D]`` features to classify.
        k: neighbours (capped at ``M``).
        temperature: vote temperature.
        num_classes: ``C`` (default: ``max(bank_labels) + 1``).
        chunk_size: queries per similarity block (default: a 2^26-element block).
        device: where to compute (default: the bank's device, e.g. the GPU the features
            were computed on); results come back on the CPU.

    Returns:
        float64 ``[Q, C]`` summed vote weights ``exp(cosine / T)``; ``argmax`` is the
        prediction.

    Examples:
        >>> bank = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
        >>> scores = knn_predict(bank, torch.tensor([0, 0, 1]), torch.tensor([[1.0, 0.05]]), k=2)
        >>> scores.argmax(1)
        tensor([0])
    """
    chunks = [
        votes[k].cpu()
        for _, votes in _knn_votes(
            bank,
            bank_labels,
            queries,
            ks=(k,),
            temperature=temperature,
            num_classes=num_classes,
            chunk_size=chunk_size,
            device=device,
        )
    ]
    classes = num_classes if num_classes is not None else int(bank_labels.max()) + 1
    return torch.cat(chunks) if chunks else torch.zeros(0, classes, dtype=torch.float64)


def knn_evaluate(
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    *,
    ks: Sequence[int] = (20, 200),
    temperature: float = 0.07,
    topk: Sequence[int] = (1, 5),
    num_classes: int | None = None,
    chunk_size: int | None = None,
    device: torch.device | str | None = None,
) -> dict[int, dict[int, float]]:
    """Top-``topk`` accuracy of the weighted kNN vote for every ``k`` in ``ks``, in one pass.

    Accuracies follow :func:`clinfonce.evaluation.metrics.topk_correct` (a class tied with
    the label ranks ahead of it). Arguments as :func:`knn_predict`.

    Returns:
        ``{k: {t: accuracy}}``, e.g. ``result[200][5]`` is the top-5 accuracy with 200
        neighbours.

    Examples:
        >>> bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
        >>> knn_evaluate(bank, torch.tensor([0, 1, 1]), bank, torch.tensor([0, 1, 1]),
        ...              ks=(1,), topk=(1,))
        {1: {1: 1.0}}
    """
    if len(queries) != len(query_labels):
        raise ValueError(f"{len(queries)} queries but {len(query_labels)} query labels")
    if len(queries) == 0:
        raise ValueError("kNN evaluation needs at least one query")
    if num_classes is None:
        num_classes = max(int(bank_labels.max()), int(query_labels.max())) + 1
    correct = {k: dict.fromkeys(topk, 0) for k in ks}
    for start, votes in _knn_votes(
        bank,
        bank_labels,
        queries,
        ks=ks,
        temperature=temperature,
        num_classes=num_classes,
        chunk_size=chunk_size,
        device=device,
    ):
        for k, v in votes.items():
            labels = query_labels[start : start + len(v)]
            for t, c in topk_correct(v, labels, topk).items():
                correct[k][t] += c
    return {k: {t: c / len(queries) for t, c in per.items()} for k, per in correct.items()}


def knn_accuracy(
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    *,
    k: int = 20,
    temperature: float = 0.07,
    num_classes: int | None = None,
    chunk_size: int | None = None,
) -> float:
    """Top-1 accuracy of :func:`knn_predict` (the online monitor's metric).

    Examples:
        >>> bank = torch.eye(2)
        >>> knn_accuracy(bank, torch.tensor([0, 1]), bank, torch.tensor([0, 1]), k=1)
        1.0
    """
    result = knn_evaluate(
        bank,
        bank_labels,
        queries,
        query_labels,
        ks=(k,),
        temperature=temperature,
        topk=(1,),
        num_classes=num_classes,
        chunk_size=chunk_size,
    )
    return result[k][1]
