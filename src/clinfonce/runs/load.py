"""A trained encoder back from a checkpoint, with the config of the run that made it.

A checkpoint written by :func:`clinfonce.training.train` sits at
``<run dir>/checkpoints/<name>.ckpt`` next to ``<run dir>/config.yaml``, and also carries the
resolved config in its hyperparameters (what the method's module, a
:class:`~clinfonce.training.methods.contrastive.ContrastiveModule` or a baseline module, is rebuilt
from). The model always comes from the checkpoint; the config, which says what data to
embed, comes from (in this order) an explicit file, the run directory, or the checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from clinfonce.training.base import EncoderModule
from clinfonce.training.build import module_from_checkpoint
from clinfonce.training.checkpointing import check_same_run, read_checkpoint
from clinfonce.training.config import ExperimentConfig, config_from_dict, load_config
from clinfonce.training.run_directory import (
    checkpoint_run_dir,
    load_run_config,
    resolve_checkpoint,
)


@dataclass
class LoadedRun:
    """A checkpoint loaded for evaluation.

    Attributes:
        checkpoint: the ``.ckpt`` file.
        run_dir: its run directory, or ``None`` for a checkpoint outside one.
        config: the run's config (overrides applied).
        module: the model in eval mode, on the requested device.
    """

    checkpoint: Path
    run_dir: Path | None
    config: ExperimentConfig
    module: EncoderModule


def check_run_id(loaded: dict[str, Any], checkpoint: Path, run_dir: Path) -> None:
    """Refuse a checkpoint that another run left in ``run_dir``.

    The run directory's ``run.json`` and every checkpoint of the run carry the same run id;
    a different id means the checkpoint is stale (left from an earlier run) and the
    directory's ``config.yaml`` does not describe it. Runs from before run ids pass.
    """
    check_same_run(
        loaded,
        checkpoint,
        run_dir,
        "the checkpoint is stale and its config is gone; delete it, or pass --config with the "
        "config it was trained with",
    )


def load_module(checkpoint: str | Path, *, device: torch.device | str = "cpu") -> EncoderModule:
    """The module of a training checkpoint, in eval mode on ``device``: a
    :class:`ContrastiveModule` or, for a baseline method, its module (the ``module`` of
    its :class:`~clinfonce.training.methods.spec.Method`).

    Examples:
        >>> module = load_module("runs/demo/checkpoints/last.ckpt")  # doctest: +SKIP
        >>> module.embed(images).shape  # doctest: +SKIP
        torch.Size([64, 128])
    """
    return _module_of(read_checkpoint(checkpoint), checkpoint).to(device)


def _module_of(loaded: dict[str, Any], checkpoint: str | Path) -> EncoderModule:
    try:
        module = module_from_checkpoint(loaded)
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(
            f"{checkpoint}: not a clinfonce training checkpoint (no model config or weights "
            f"that fit it: {exc})"
        ) from exc
    module.eval()
    return module


def load_run(
    path: str | Path,
    *,
    which: str = "last",
    config: str | Path | None = None,
    overrides: Sequence[str] = (),
    device: torch.device | str = "cpu",
) -> LoadedRun:
    """Load a checkpoint (or a run directory's ``which`` checkpoint) and its config.

    Args:
        path: a run directory or a ``.ckpt`` file.
        which: ``last`` or ``best`` when ``path`` is a run directory.
        config: a config file to use instead of the run's (e.g. to embed other data).
        overrides: ``key=value`` changes to the config (e.g. ``data.options.root=...``).
        device: where the model goes.

    Examples:
        >>> run = load_run("runs/fashion-mnist-clinfonce")  # doctest: +SKIP
        >>> run.config.data.dataset, run.checkpoint.name  # doctest: +SKIP
        ('fashion-mnist', 'last.ckpt')
    """
    checkpoint = resolve_checkpoint(path, which)
    loaded = read_checkpoint(checkpoint)
    run_dir = checkpoint_run_dir(checkpoint)
    if run_dir is not None and config is None:
        check_run_id(loaded, checkpoint, run_dir)
    module = _module_of(loaded, checkpoint).to(device)
    if config is not None:
        cfg = load_config(config, list(overrides))
    elif run_dir is not None:
        cfg = load_run_config(run_dir, overrides)
    else:
        # the module's config, bound once from the checkpoint; rebound only to change it
        cfg = config_from_dict(module.cfg.to_dict(), overrides) if overrides else module.cfg
    return LoadedRun(checkpoint, run_dir, cfg, module)
