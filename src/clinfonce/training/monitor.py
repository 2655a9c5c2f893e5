"""Online kNN monitor: top-1 of held-out labelled samples against training features."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback

from clinfonce.data.datasets import ContrastiveDataset
from clinfonce.evaluation import knn_accuracy
from clinfonce.training.base import EncoderModule
from clinfonce.training.distributed import extract_features_sharded

#: Logged metric name (also what the best checkpoint is chosen by).
KNN_METRIC = "monitor/knn_top1"


class KNNMonitor(Callback):
    """Log :data:`KNN_METRIC` every ``every_n_epochs`` epochs and after the last epoch.

    Features come from the encoder in eval mode on un-augmented images, without gradients,
    so the monitor never changes training. Under DDP every process embeds only its share of
    the bank and the queries and receives all features, so every process computes the same
    score (the best checkpoint needs it everywhere) without repeating the extraction.

    Args:
        bank: labelled training samples whose features vote.
        queries: labelled held-out samples to classify.
        num_classes: number of label classes.
        k: neighbours.
        temperature: vote temperature.
        every_n_epochs: interval.
        batch_size: extraction batch size.
    """

    def __init__(
        self,
        bank: ContrastiveDataset,
        queries: ContrastiveDataset,
        *,
        num_classes: int,
        k: int = 20,
        temperature: float = 0.07,
        every_n_epochs: int = 1,
        batch_size: int = 512,
    ) -> None:
        self.bank, self.queries = bank, queries
        self.num_classes, self.k, self.temperature = num_classes, k, temperature
        self.every_n_epochs, self.batch_size = every_n_epochs, batch_size

    def evaluate(self, module: EncoderModule) -> float:
        """kNN top-1 of the current encoder (every process must call this under DDP)."""
        bank_labels, query_labels = self.bank.labels, self.queries.labels
        if bank_labels is None or query_labels is None:
            raise ValueError("the kNN monitor needs labelled bank and query samples")
        bank, queries = (
            extract_features_sharded(module.embed, data, batch_size=self.batch_size, model=module)
            for data in (self.bank, self.queries)
        )
        return knn_accuracy(
            bank,
            bank_labels,
            queries,
            query_labels,
            k=self.k,
            temperature=self.temperature,
            num_classes=self.num_classes,
        )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        last = epoch >= (trainer.max_epochs or epoch)
        if epoch % self.every_n_epochs and not last:
            return
        assert isinstance(pl_module, EncoderModule)
        # Every process holds the same score: the mean over processes is that score, and
        # says so to Lightning (which otherwise warns about unsynchronised epoch metrics).
        pl_module.log(KNN_METRIC, self.evaluate(pl_module), prog_bar=True, sync_dist=True)
