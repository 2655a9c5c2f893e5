"""Export the encoder features of a dataset's rows: the work behind ``clinfonce embed``."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from clinfonce.data.sources import ImageSource
from clinfonce.data.splits import split_mask
from clinfonce.evaluation.features import extract_features, use_tf32_matmul
from clinfonce.outputs import atomic_write, atomic_write_all, refuse_input_outputs
from clinfonce.runs.evaluate import Log, evaluation_data
from clinfonce.runs.load import LoadedRun


def embed_run(
    run: LoadedRun,
    out_dir: str | Path,
    *,
    splits: Sequence[str] | None = None,
    batch_size: int = 512,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    log: Log = print,
    progress: bool = False,
    source: ImageSource | None = None,
) -> dict[str, Any]:
    """Write the encoder features of a dataset's rows: ``embeddings.npy``, ``index.csv``,
    ``embeddings.json``.

    ``embeddings.npy`` is float32 ``[N, D]``; line ``i`` of ``index.csv`` (columns ``row``,
    ``id``, ``label``, ``split``) describes embedding ``i``: ``row`` is the sample's row in
    the dataset's metadata table, ``label`` its original label (empty when unknown). Without
    ``splits`` every row is embedded in table order, so the file lines up with the table.

    Args:
        run: from :func:`clinfonce.runs.load.load_run`.
        out_dir: output folder (created).
        splits: values of ``data.split_column`` to embed (``None``: all rows).
        batch_size: images per forward pass.
        num_workers: loader workers (image files).
        device: where the encoder runs.
        log: receives one-line progress messages.
        progress: show a progress bar.
        source: the already loaded data (default: loaded from the run's config).

    Returns:
        The sidecar's content (paths, counts, dimension, checkpoint, data settings).

    Examples:
        >>> from clinfonce.runs.load import load_run
        >>> embed_run(load_run("runs/demo/experiment/runs/clinfonce-seed0"), "emb", splits=["test"])
        ... # doctest: +SKIP
    """
    config = run.config
    prepared = evaluation_data(config, holdout=False, source=source)
    table = prepared.source.table
    split_column = config.data.split_column
    split = (
        table[split_column].astype(str).to_numpy()
        if split_column in table.columns
        else np.full(len(table), "", dtype=object)
    )
    rows = np.arange(len(table))
    if splits is not None:
        if split_column not in table.columns:
            raise ValueError(
                f"{prepared.source.name}: no split column {split_column!r} to pick "
                f"{', '.join(splits)} from; omit --split or set data.split_column"
            )
        rows = rows[
            split_mask(
                table,
                split_column,
                list(splits),
                where=prepared.source.name,
                option="data.split_column",
            )
        ]
    module = run.module.to(torch.device(device))
    use_tf32_matmul(device)
    log(f"embedding {len(rows)} images of {prepared.source.name}")
    features, _ = extract_features(
        module.embed,
        prepared.eval_dataset(rows),
        batch_size=batch_size,
        model=module,
        num_workers=num_workers,
        desc="embedding" if progress else None,
    )
    if prepared.labels is not None:
        names = np.asarray([str(n) for n in prepared.label_names] + [""], dtype=object)
        labels = names[prepared.labels[rows]]  # code -1 (unknown) picks the trailing ""
    else:
        labels = np.full(len(rows), "", dtype=object)
    table_rows = prepared.source.table_rows
    index = pd.DataFrame(
        {
            "row": table_rows[rows] if table_rows is not None else rows,
            "id": table[config.data.id_column].iloc[rows].astype(str).to_numpy(),
            "label": labels,
            "split": split[rows],
        }
    )
    folder = Path(out_dir)
    outputs = [folder / name for name in ("index.csv", "embeddings.npy", "embeddings.json")]
    refuse_input_outputs(outputs, prepared.source.inputs, "--out")
    folder.mkdir(parents=True, exist_ok=True)
    array = features.cpu().numpy().astype(np.float32)

    def save_array(temp: Path) -> None:
        with open(temp, "wb") as file:  # a file object: np.save would append ".npy" to a path
            np.save(file, array)

    # Index and array are replaced together (both written before either is renamed, so a
    # full disk leaves the old pair), the sidecar last (it is there once the others are).
    atomic_write_all(
        [
            (folder / "index.csv", lambda temp: index.to_csv(temp, index=False)),
            (folder / "embeddings.npy", save_array),
        ]
    )
    sidecar = {
        "embeddings": str(folder / "embeddings.npy"),
        "index": str(folder / "index.csv"),
        "count": len(rows),
        "dim": int(features.shape[1]),
        "features": "encoder output of the eval view (before the projection head)",
        "checkpoint": str(run.checkpoint),
        "splits": list(splits) if splits is not None else "all",
        "data": dataclasses.asdict(config.data),
    }
    text = json.dumps(sidecar, indent=2, default=str)
    atomic_write(folder / "embeddings.json", lambda temp: temp.write_text(text))
    return sidecar
