"""Checkpoints that survive interruption, run ids, run-directory ownership, and the
degenerate-objective warnings (end-to-end kills: tests/faults)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from clinfonce.data.datasets import EpochShuffleSampler
from clinfonce.training import config_from_dict
from clinfonce.training.checkpointing import (
    AtomicCheckpointIO,
    TrainingInterrupted,
    checkpoint_run_id,
    read_checkpoint,
    read_run_id,
    write_run_id,
)
from clinfonce.training.distributed import DistributedBatchSampler
from clinfonce.training.run_directory import claim_run_directory, run_directory


def test_atomic_checkpoint_io_replaces_whole_files_with_the_umask_mode(tmp_path: Path) -> None:
    target = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}}, target)
    io.save_checkpoint({"state_dict": {"w": torch.zeros(2)}}, target)
    assert read_checkpoint(target)["state_dict"]["w"].tolist() == [0.0, 0.0]
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_read_checkpoint_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.ckpt: the checkpoint file is empty \(0 bytes"):
        read_checkpoint(empty)
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.randn(1000)}}, good)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(ValueError, match=r"cut\.ckpt: not a readable checkpoint, truncated"):
        read_checkpoint(cut)
    text = tmp_path / "text.ckpt"
    text.write_text("hello\n")
    with pytest.raises(ValueError, match=r"text\.ckpt: not a readable checkpoint"):
        read_checkpoint(text)
    other = tmp_path / "other.ckpt"
    torch.save({"weights": 1}, other)
    with pytest.raises(ValueError, match="not a clinfonce training checkpoint"):
        read_checkpoint(other)


def test_run_ids(tmp_path: Path) -> None:
    assert read_run_id(tmp_path) is None
    write_run_id(tmp_path, "abc")
    assert read_run_id(tmp_path) == "abc"
    assert checkpoint_run_id({"clinfonce_run_id": "abc"}) == "abc"
    assert checkpoint_run_id({}) is None


def test_skip_next_leaves_out_the_first_batches_once() -> None:
    batches = DistributedBatchSampler(EpochShuffleSampler(10, 0), 3, True, rank=0, world_size=1)
    full = list(batches)
    batches.skip_next(2)
    assert list(batches) == full[2:]
    assert list(batches) == full


def _config(tmp_path: Path, **output: Any) -> Any:
    return config_from_dict({"output": {"dir": str(tmp_path), "name": "run", **output}})


def test_run_directory_ownership(tmp_path: Path) -> None:
    run_dir = claim_run_directory(_config(tmp_path))
    assert run_dir == tmp_path / "run" and run_dir.is_dir()
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "best.ckpt").write_text("old")
    (run_dir / "marker.json").write_text("{}")
    with pytest.raises(ValueError, match=r"is not empty \(it holds .* and 1 more\)"):
        claim_run_directory(_config(tmp_path))
    claim_run_directory(_config(tmp_path, overwrite=True), keep=("marker.json",))
    assert [p.name for p in run_dir.iterdir()] == ["marker.json"]
    with pytest.raises(ValueError, match="must be a plain name"):
        run_directory(_config(tmp_path, name="../x"))


def test_overwrite_only_clears_run_directories(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="holds files but is not a clinfonce run directory"):
        claim_run_directory(_config(tmp_path, overwrite=True))
    assert (tmp_path / "run" / "thesis.tex").read_text() == "precious"


def test_overwrite_does_not_delete_the_runs_own_inputs(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    (run_dir / "my-clusters.csv").write_text("id,cluster\n")
    config = config_from_dict(
        {
            "clusters": {"assignment": str(run_dir / "my-clusters.csv")},
            "output": {"dir": str(tmp_path), "name": "run", "overwrite": True},
        }
    )
    with pytest.raises(ValueError, match=r"would delete .*my-clusters\.csv: this is an input"):
        claim_run_directory(config)
    assert (run_dir / "my-clusters.csv").is_file()


def test_overwrite_does_not_delete_the_image_files_of_the_table(tmp_path: Path) -> None:
    """`clinfonce run meta.csv --out imgs output.overwrite=true` once deleted every image."""
    images = tmp_path / "imgs"
    images.mkdir()
    (images / "config.yaml").write_text("a run was here\n")
    (images / "a.png").write_bytes(b"png")
    config = config_from_dict({"output": {"dir": str(tmp_path), "name": "imgs", "overwrite": True}})
    with pytest.raises(ValueError, match=r"would delete .*a\.png: this is an input of the run"):
        claim_run_directory(config, inputs=[tmp_path / "meta.csv", images / "a.png"])
    assert sorted(p.name for p in images.iterdir()) == ["a.png", "config.yaml"]


def test_training_interrupted_message(tmp_path: Path) -> None:
    error = TrainingInterrupted(signal.SIGTERM, tmp_path, 7)
    assert error.signum == 15
    assert str(error) == (
        f"stopped by SIGTERM at step 7; checkpoint saved, continue with "
        f"`clinfonce train --resume {tmp_path}`"
    )


class _FakeTrainer:
    """What :func:`stop_gracefully` touches: Lightning's SIGTERM flag and the rank."""

    def __init__(self) -> None:
        self._signal_connector = type("Connector", (), {"received_sigterm": False})()
        self.is_global_zero = True


def test_signals_request_a_stop_and_slurm_requeues(monkeypatch: pytest.MonkeyPatch) -> None:
    from clinfonce.training import checkpointing

    calls: list[list[str]] = []
    monkeypatch.setattr(checkpointing.subprocess, "run", lambda cmd, check: calls.append(cmd))
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    trainer = _FakeTrainer()
    before = signal.getsignal(signal.SIGINT)
    with checkpointing.stop_gracefully(trainer) as received:  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGINT)  # a first Ctrl-C asks; a second one interrupts
        assert trainer._signal_connector.received_sigterm
        os.kill(os.getpid(), signal.SIGUSR1)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert received == [signal.SIGINT, signal.SIGUSR1]
    assert calls == [["scontrol", "requeue", "4242"]]
    assert signal.getsignal(signal.SIGINT) is before


def test_a_requeued_slurm_job_resumes_its_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from clinfonce.training.run_directory import requeued_slurm_job

    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    assert not requeued_slurm_job()
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert requeued_slurm_job()
