"""Linear probes on a frozen encoder: logistic regression on features, or SGD on augmented views.

Two protocols, both reported as top-1 and top-5:

* :func:`logistic_probe` (the standard one): features of the un-augmented eval view,
  standardised, multinomial logistic regression (scikit-learn, L-BFGS). The inverse
  regularisation ``C`` is picked on a seeded, stratified validation split of the training
  set from a small grid, then the probe is refitted on the whole training set. scikit-learn
  minimises ``0.5 |w|^2 + C sum(loss)``, i.e. a mean loss with weight decay
  ``1 / (C n)``; the result reports both.
* :func:`sgd_probe` (for large data): a linear layer over the frozen encoder trained with
  SGD + cosine learning rate on random crop + flip views made on the fly (the usual
  protocol; the official Cl-InfoNCE probe used the full contrastive augmentation instead).
  Features pass a ``BatchNorm1d`` without affine parameters first, which standardises them
  as the logistic probe does and keeps one learning rate good for every encoder.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from clinfonce.evaluation.features import eval_mode
from clinfonce.evaluation.metrics import topk_accuracy

#: The ``C`` grid of the logistic probe (weight decay ``1 / (C n)``), strong to weak.
DEFAULT_CS: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)


@dataclass
class ProbeResult:
    """Outcome of a linear probe.

    Attributes:
        probe: ``"logistic"`` or ``"sgd"``.
        accuracy: test top-k accuracy, ``{k: fraction}``.
        scores: ``[Q, C]`` test class scores (probabilities or logits).
        params: the probe's settings and choices (e.g. the picked ``c`` and the validation
            accuracy of each candidate).
    """

    probe: str
    accuracy: dict[int, float]
    scores: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: ``probe``, ``top<k>`` accuracies and the params."""
        return {
            "probe": self.probe,
            **{f"top{k}": v for k, v in self.accuracy.items()},
            **self.params,
        }


def _numpy(values: torch.Tensor | np.ndarray) -> np.ndarray:
    return values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


def _class_codes(values: torch.Tensor | np.ndarray, where: str) -> np.ndarray:
    """Labels as int64 classes ``>= 0`` (whole-valued floats accepted)."""
    labels = _numpy(values)
    if labels.ndim != 1 or labels.dtype.kind not in "iuf":
        raise ValueError(f"{where} must be a 1-D array of integer classes, got {labels.dtype}")
    codes = labels.astype(np.int64)
    if not np.array_equal(codes, labels):
        raise ValueError(f"{where} must be whole numbers (class indices)")
    if len(codes) and codes.min() < 0:
        raise ValueError(f"{where} must be >= 0; drop unlabelled (-1) samples first")
    return codes


def _validation_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of row indices into (fit, validation), stratified when every class has
    at least two samples."""
    from sklearn.model_selection import train_test_split

    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 else None
    rows = np.arange(len(labels))
    try:
        fit, val = train_test_split(rows, test_size=fraction, random_state=seed, stratify=stratify)
    except ValueError:  # too few rows per class for a stratified validation set
        fit, val = train_test_split(rows, test_size=fraction, random_state=seed)
    return np.sort(fit), np.sort(val)


def _fit_logistic(x: np.ndarray, y: np.ndarray, c: float, max_iter: int, tol: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter, tol=tol))
    probe.fit(x, y)
    return probe


def logistic_probe(
    train_features: torch.Tensor | np.ndarray,
    train_labels: torch.Tensor | np.ndarray,
    test_features: torch.Tensor | np.ndarray,
    test_labels: torch.Tensor | np.ndarray,
    *,
    cs: Sequence[float] = DEFAULT_CS,
    val_fraction: float = 0.2,
    topk: Sequence[int] = (1, 5),
    num_classes: int | None = None,
    seed: int = 0,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> ProbeResult:
    """Multinomial logistic regression on standardised frozen features, ``C`` by validation.

    With one ``C`` there is nothing to pick and the whole training set is fitted at once.
    Ties in validation accuracy go to the smaller ``C`` (the stronger regularisation).

    Args:
        train_features: ``[N, D]``.
        train_labels: ``[N]`` classes ``>= 0``.
        test_features: ``[Q, D]``.
        test_labels: ``[Q]`` classes ``>= 0``.
        cs: candidate inverse regularisation strengths.
        val_fraction: share of the training set held out to pick ``C``.
        topk: the reported top-k accuracies.
        num_classes: columns of the returned scores (default: largest label + 1).
        seed: seed of the validation split.
        max_iter: L-BFGS iterations.
        tol: L-BFGS tolerance.

    Returns:
        A :class:`ProbeResult` whose scores are test class probabilities (0 for classes
        absent from the training set) and whose params hold ``c``, ``weight_decay`` and
        ``validation`` (``{c: accuracy}``).

    Examples:
        >>> x = np.array([[0.0], [0.1], [0.2], [1.0], [1.1], [1.2]])
        >>> y = np.array([0, 0, 0, 1, 1, 1])
        >>> logistic_probe(x, y, x, y, cs=(1.0,), topk=(1,)).accuracy
        {1: 1.0}
    """
    x_train, x_test = _numpy(train_features), _numpy(test_features)
    y_train = _class_codes(train_labels, "train labels")
    y_test = _class_codes(test_labels, "test labels")
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError(
            f"{len(x_train)} train features for {len(y_train)} labels, {len(x_test)} test "
            f"features for {len(y_test)} labels"
        )
    if len(np.unique(y_train)) < 2:
        raise ValueError("the linear probe needs at least two classes in the training labels")
    if not cs or min(cs) <= 0:
        raise ValueError(f"the C grid must hold positive values, got {list(cs)}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    grid = sorted(cs)
    validation: dict[float, float] = {}
    if len(grid) > 1:
        fit, val = _validation_split(y_train, val_fraction, seed)
        for c in grid:
            model = _fit_logistic(x_train[fit], y_train[fit], c, max_iter, tol)
            validation[c] = float((model.predict(x_train[val]) == y_train[val]).mean())
    best = max(grid, key=lambda c: (validation.get(c, 0.0), -c))
    model = _fit_logistic(x_train, y_train, best, max_iter, tol)
    classes = num_classes if num_classes is not None else int(max(y_train.max(), y_test.max())) + 1
    scores = np.zeros((len(x_test), classes))
    scores[:, model.classes_] = model.predict_proba(x_test)
    params = {
        "c": best,
        "weight_decay": 1 / (best * len(x_train)),
        "validation": {str(c): acc for c, acc in validation.items()},
        "val_fraction": val_fraction if validation else 0.0,
    }
    return ProbeResult("logistic", topk_accuracy(scores, y_test, topk), scores, params)


def linear_probe(
    train_features: torch.Tensor | np.ndarray,
    train_labels: torch.Tensor | np.ndarray,
    test_features: torch.Tensor | np.ndarray,
    test_labels: torch.Tensor | np.ndarray,
    *,
    c: float = 1.0,
    max_iter: int = 1000,
) -> float:
    """Top-1 test accuracy of :func:`logistic_probe` with one fixed ``C`` (no validation).

    Examples:
        >>> x = np.array([[0.0], [0.1], [1.0], [1.1]])
        >>> linear_probe(x, np.array([0, 0, 1, 1]), x, np.array([0, 0, 1, 1]))
        1.0
    """
    result = logistic_probe(
        train_features,
        train_labels,
        test_features,
        test_labels,
        cs=(c,),
        topk=(1,),
        max_iter=max_iter,
    )
    return result.accuracy[1]


def sgd_probe(
    embed: Callable[[torch.Tensor], torch.Tensor],
    train: Dataset[dict[str, torch.Tensor]],
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    num_classes: int,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    epochs: int = 100,
    lr: float = 0.3,
    batch_size: int = 128,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    topk: Sequence[int] = (1, 5),
    seed: int = 0,
    model: nn.Module | None = None,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
    log: Callable[[str], None] | None = None,
) -> ProbeResult:
    """Train ``BatchNorm1d(affine=False) -> Linear`` on frozen features of augmented views.

    Every step draws fresh views: ``augment`` turns a loaded image batch into the encoder's
    input (e.g. random crop + flip of in-memory images, seeded by the probe's generator);
    ``None`` uses the images as the dataset gives them (files augmented by the dataset's
    own transform). The encoder runs in eval mode without gradients; only the layer learns,
    with cross-entropy, SGD (momentum) and a per-step cosine learning rate from ``lr`` to 0
    (docs/method.md §4: 100 epochs, lr 0.3, batch 128).

    Args:
        embed: images -> ``[B, D]`` features.
        train: labelled training samples (``{"image", "label"}`` dicts, labels ``>= 0``).
        test_features: ``[Q, D]`` features of un-augmented test images.
        test_labels: ``[Q]``.
        num_classes: output classes.
        augment: ``(images, generator) -> encoder input``, or ``None``.
        epochs: passes over ``train``.
        lr: peak learning rate.
        batch_size: samples per step.
        momentum: SGD momentum.
        weight_decay: SGD weight decay of the layer.
        topk: the reported top-k accuracies.
        seed: seeds the layer's initialisation, the data order and the augmentation.
        model: the encoder's module, held in eval mode while the probe trains.
        device: where the layer trains (and ``augment`` runs).
        num_workers: loader workers.
        log: called with a one-line progress message after every epoch.

    Examples:
        >>> data = [{"image": torch.tensor([float(i % 2)]), "label": torch.tensor(i % 2)}
        ...         for i in range(8)]
        >>> result = sgd_probe(lambda x: x, data, torch.tensor([[0.0], [1.0]]),
        ...                    torch.tensor([0, 1]), num_classes=2, epochs=5, topk=(1,))
        >>> result.accuracy
        {1: 1.0}
    """
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(
            f"the SGD probe needs epochs >= 1, batch_size >= 1 and lr > 0; got {epochs}, "
            f"{batch_size}, {lr}"
        )
    if len(train) == 0:  # type: ignore[arg-type]
        raise ValueError("the SGD probe has no training samples")
    dim = test_features.shape[1]
    with torch.random.fork_rng(devices=[]):  # seed the layer without touching global state
        torch.manual_seed(seed)
        head = nn.Sequential(nn.BatchNorm1d(dim, affine=False), nn.Linear(dim, num_classes))
    head.to(device)
    optimizer = torch.optim.SGD(
        head.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
    )
    order = torch.Generator().manual_seed(seed)
    views = torch.Generator(device=device).manual_seed(seed)
    pinned = torch.device(device).type == "cuda"  # the copies to the GPU overlap its work
    loader = DataLoader(
        train,
        batch_size=batch_size,
        shuffle=True,
        generator=order,
        num_workers=num_workers,
        pin_memory=pinned,
    )
    total = epochs * len(loader)
    loss_fn = nn.CrossEntropyLoss()
    step = 0
    with eval_mode(model):
        for epoch in range(epochs):
            head.train()
            running = torch.zeros((), device=device)  # summed there: no wait on each step
            for batch in loader:
                images = batch["image"].to(device, non_blocking=pinned)
                if augment is not None:
                    images = augment(images, views)
                with torch.no_grad():
                    features = embed(images).float().to(device)
                for group in optimizer.param_groups:
                    group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
                loss = loss_fn(head(features), batch["label"].to(device).long())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                running += loss.detach()
                step += 1
            if log is not None:
                mean = float(running) / len(loader)
                log(f"sgd probe epoch {epoch + 1}/{epochs}: loss {mean:.4f}")
    head.eval()
    with torch.no_grad():
        scores = head(test_features.to(device).float()).cpu().numpy()
    params = {
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "momentum": momentum,
        "weight_decay": weight_decay,
    }
    labels = _class_codes(test_labels, "test labels")
    return ProbeResult("sgd", topk_accuracy(scores, labels, topk), scores, params)
