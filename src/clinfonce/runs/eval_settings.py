"""What evaluating a trained encoder measures, and how: one settings object shared by
``clinfonce evaluate``, the experiment runner and ``clinfonce run``."""

from __future__ import annotations

from dataclasses import dataclass

from clinfonce.evaluation.linear import DEFAULT_CS

PROBES: tuple[str, ...] = ("logistic", "sgd", "none")


@dataclass
class EvalSettings:
    """What ``clinfonce evaluate`` measures and how.

    Attributes:
        probe: ``logistic`` (features of the eval view, ``C`` picked on validation),
            ``sgd`` (linear layer on crop + flip views), or ``none``.
        cs: the logistic probe's ``C`` grid.
        val_fraction: training share held out to pick ``C``.
        sgd_epochs: SGD probe epochs.
        sgd_lr: SGD probe peak learning rate (cosine to 0).
        sgd_batch_size: SGD probe batch size.
        sgd_weight_decay: SGD probe weight decay.
        knn_ks: neighbour counts of the weighted kNN.
        knn_temperature: kNN vote temperature.
        topk: reported top-k accuracies.
        nmi: K-means of the test embedding (K = number of labels) against the labels.
        tsne: write the two-panel t-SNE PNG.
        tsne_points: points in the t-SNE map.
        train_split: the probe's training split (default: ``data.train_split``).
        test_split: the test split (default: ``monitor.split``).
        max_train: seeded subset of the training rows (``None``: all).
        max_test: seeded subset of the test rows (``None``: all).
        batch_size: feature-extraction batch size.
        num_workers: loader workers (image files).
        seed: seeds subsets, the validation split, the probes, K-means and t-SNE.
    """

    probe: str = "logistic"
    cs: tuple[float, ...] = DEFAULT_CS
    val_fraction: float = 0.2
    sgd_epochs: int = 100
    sgd_lr: float = 0.3
    sgd_batch_size: int = 128
    sgd_weight_decay: float = 0.0
    knn_ks: tuple[int, ...] = (20, 200)
    knn_temperature: float = 0.07
    topk: tuple[int, ...] = (1, 5)
    nmi: bool = True
    tsne: bool = False
    tsne_points: int = 2000
    train_split: str | None = None
    test_split: str | None = None
    max_train: int | None = None
    max_test: int | None = None
    batch_size: int = 512
    num_workers: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.probe not in PROBES:
            raise ValueError(f"probe must be one of {', '.join(PROBES)}, got {self.probe!r}")
        for name in ("max_train", "max_test"):
            value = getattr(self, name)
            if value is not None and value < 2:
                raise ValueError(f"{name} must be at least 2, got {value}")
