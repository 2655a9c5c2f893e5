"""A trained run's encoder as a plain embedding function: :func:`load_encoder`.

The encoder comes with the run's own preprocessing: image files are decoded the way the run
decoded them (RGB or grayscale, shorter side resized to the input size, centre crop), pixels
are normalised with the run's mean and std, and the features are the encoder output before
the projection head, the ones the kNN and linear probes evaluate.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from clinfonce.data.augment import eval_transform
from clinfonce.data.custom_sources import read_metadata
from clinfonce.data.images import decode_resized, open_image
from clinfonce.evaluation.features import extract_features, resolve_device
from clinfonce.runs.evaluate import evaluation_data
from clinfonce.runs.load import LoadedRun, load_run
from clinfonce.training.config import ExperimentConfig, config_from_dict

Images = torch.Tensor | np.ndarray


class RunEncoder:
    """The encoder of a finished run (from :func:`load_encoder`).

    Attributes:
        run: the loaded run (checkpoint, config, module).
        channels: image channels the encoder takes (1 or 3).
        image_size: its input side in px.
        dim: the feature size.
    """

    def __init__(self, run: LoadedRun) -> None:
        self.run = run
        self.module = run.module.eval()
        self.channels = int(self.module.mean.shape[1])
        self.image_size = int(self.module.image_size)
        self.dim = int(getattr(self.module.encoder, "out_dim"))  # noqa: B009

    def embed(
        self,
        inputs: Images | Sequence[str | Path] | str | Path | pd.DataFrame,
        *,
        batch_size: int = 256,
        image_root: str | Path | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        """Features ``float32 [N, dim]`` of images, image files, or a table of image files.

        Args:
            inputs: images as an array or tensor (``[N, C, H, W]``, or ``[N, H, W, C]``
                with 1 or 3 channels last, or ``[N, H, W]`` grayscale; ``uint8`` pixels or
                floats in ``[0, 1]``; any size, resized and centre-cropped like the run's
                evaluation view); a list of image file paths; or a metadata table (a file
                or a data frame) whose path column lists images, embedded in table order.
            batch_size: images per forward pass.
            image_root: for a table, the folder its paths are relative to (default: the
                table's folder; the working folder for a data frame).
            progress: show a progress bar.

        Examples:
            >>> import clinfonce
            >>> encoder = clinfonce.load_encoder("runs/photos")  # doctest: +SKIP
            >>> encoder.embed(["a.jpg", "b.png"]).shape  # doctest: +SKIP
            (2, 512)
            >>> encoder.embed("new-photos.csv").shape  # doctest: +SKIP
            (1200, 512)
        """
        desc = "embedding" if progress else None
        if isinstance(inputs, (torch.Tensor, np.ndarray)):
            images = self._as_batch(inputs)
            features, _ = extract_features(
                self.module.embed, images, batch_size=batch_size, model=self.module, desc=desc
            )
        elif isinstance(inputs, (str, Path, pd.DataFrame)):
            features = self._embed_table(inputs, image_root, batch_size, desc)
        else:
            chunks = []
            for start in range(0, len(inputs), batch_size):
                files = inputs[start : start + batch_size]
                decoded = [self._decode(Path(p), start + i) for i, p in enumerate(files)]
                chunk, _ = extract_features(
                    self.module.embed, torch.stack(decoded), batch_size=batch_size
                )
                chunks.append(chunk)
            features = torch.cat(chunks) if chunks else torch.zeros(0, self.dim)
        return features.numpy().astype(np.float32)

    def _decode(self, path: Path, row: int) -> torch.Tensor:
        """An image file as the run saw it at evaluation: its eval view of a file when it
        read files while training, else decoded to the input size as its images were."""
        if streams_files(self.run.config):
            view: torch.Tensor = eval_transform(self.image_size)(
                open_image(path, self.channels, row=row)
            )
            return view
        return decode_resized(path, self.channels, self.image_size, row=row)

    def _as_batch(self, images: Images) -> torch.Tensor:
        """``[N, C, H, W]`` with the encoder's channels (gray is repeated for RGB)."""
        x = torch.as_tensor(images)
        if x.dim() == 3:
            x = x.unsqueeze(1)
        if x.dim() != 4:
            raise ValueError(f"images must be [N, C, H, W] or [N, H, W], got {tuple(x.shape)}")
        if x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
            x = x.permute(0, 3, 1, 2)
        if x.shape[1] == 1 and self.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[1] != self.channels:
            raise ValueError(
                f"images have {x.shape[1]} channels, the encoder takes {self.channels}; "
                "convert them (or pass the files, which are decoded as the run decoded them)"
            )
        if x.dtype != torch.uint8:
            x = x.float()
        return x.contiguous()

    def _embed_table(
        self,
        table: str | Path | pd.DataFrame,
        image_root: str | Path | None,
        batch_size: int,
        desc: str | None,
    ) -> torch.Tensor:
        if isinstance(table, pd.DataFrame):
            column = _path_column(table.columns, self.run.config)
            root = Path(image_root) if image_root is not None else Path.cwd()
            paths = [root / str(p) for p in table[column]]
            return torch.from_numpy(self.embed(paths, batch_size=batch_size))
        config = with_table(
            self.run.config, table, image_root, channels=self.channels, size=self.image_size
        )
        prepared = evaluation_data(config, holdout=False)
        features, _ = extract_features(
            self.module.embed,
            prepared.eval_dataset(np.arange(len(prepared.source.table))),
            batch_size=batch_size,
            model=self.module,
            desc=desc,
        )
        return features


def _path_column(columns: Any, config: ExperimentConfig) -> str:
    """The run's path column when the table has it, else ``path``."""
    own = str(config.data.options.get("path_column", "path"))
    if own in columns:
        return own
    if "path" in columns:
        return "path"
    raise ValueError(
        f"the table has no image path column ({own!r} or 'path'); its columns: "
        f"{', '.join(map(str, columns))}"
    )


def with_table(
    config: ExperimentConfig,
    table: str | Path,
    image_root: str | Path | None = None,
    *,
    channels: int,
    size: int,
) -> ExperimentConfig:
    """The run's config with its data replaced by a new table of image files: the run's
    decoding (``channels``; read as files when the run read files, else decoded once to
    ``size`` as its images were), its path column when present, the table's own id, label
    and split columns when it has the run's.

    Examples:
        >>> from clinfonce.training.config import config_from_dict
        >>> cfg = with_table(config_from_dict({}), "new.csv", channels=3, size=32)
        ... # doctest: +SKIP
        >>> cfg.data.dataset, cfg.data.options["table"]  # doctest: +SKIP
        ('table', '/home/me/new.csv')
    """
    path = Path(table).absolute()
    if not path.is_file():
        raise FileNotFoundError(f"table {table} not found")
    columns = read_metadata(path).columns
    own = config.data.options if config.data.dataset == "table" else {}
    options: dict[str, Any] = {key: own[key] for key in ("encoding", "missing") if key in own}
    options.update(
        table=str(path),
        image_root=str(Path(image_root).absolute() if image_root is not None else path.parent),
        path_column=_path_column(columns, config),
        channels=channels,
    )
    if not streams_files(config):
        options.update(cache=True, cache_size=size)
    values = config.to_dict()
    data = values["data"]
    data.update(dataset="table", options=options, train_subset=None)
    data["id_column"] = data["id_column"] if data["id_column"] in columns else "id"
    if data.get("label_column") not in columns:
        data["label_column"] = None
    return config_from_dict(values)


def streams_files(config: ExperimentConfig) -> bool:
    """Whether a run read its images from files while training (a table, neither cached in
    memory nor prepared): then its evaluation view is the one of files."""
    options = config.data.options
    prepared = options.get("prepare", False) not in (False, "false")
    return config.data.dataset == "table" and not options.get("cache") and not prepared


def load_encoder(
    run: str | Path,
    *,
    which: str = "last",
    device: str | torch.device = "cpu",
) -> RunEncoder:
    """The encoder of a finished run, ready to embed images, files or a table.

    Args:
        run: a run directory or a ``.ckpt`` file.
        which: ``last`` or ``best`` (a run directory's checkpoint).
        device: ``cpu``, ``cuda``, ``auto``, ...

    Examples:
        >>> import clinfonce
        >>> encoder = clinfonce.load_encoder("runs/photos")  # doctest: +SKIP
        >>> encoder.embed(images_uint8_nchw).shape  # doctest: +SKIP
        (64, 512)
    """
    return RunEncoder(load_run(run, which=which, device=resolve_device(str(device))))
