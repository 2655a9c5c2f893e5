"""Fault injection and bad inputs through the command line (see fault_harness.py and
bad_inputs.py; ``python tests/faults/summary.py`` runs more kill points and prints counts).

CI runs one kill point per kind of fault: SIGTERM, SIGINT and kill -9 during training and
at an epoch's end (in its checkpoint save, in the kNN monitor), kill -9 inside a checkpoint
save, kill -9 half-way through writing a cluster assignment, an
experiment interrupted while a cell trains, kill -9 while embeddings are written, kill -9
of ``prepare`` with its workers running.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from bad_inputs import CASES, Case, Workspace, run_case
from fault_harness import (
    KillInTorchSave,
    SignalAtStep,
    SignalInEpochEnd,
    alias_bomb_fault,
    clusters_fault,
    embed_fault,
    experiment_fault,
    full_disk_embed_fault,
    full_disk_train_fault,
    prepare_fault,
    train_fault,
    train_reference,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the harness forks")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_reference(tmp_path_factory.mktemp("faults"))


@pytest.mark.parametrize(
    ("name", "fault"),
    [
        ("sigterm", SignalAtStep(5, signal.SIGTERM)),  # mid-epoch: exact mid-epoch resume
        ("sigint", SignalAtStep(3, signal.SIGINT)),  # Ctrl-C at an epoch end
        ("kill", SignalAtStep(7, signal.SIGKILL)),  # resumes from the step-6 checkpoint
        ("kill-in-save", KillInTorchSave(3)),
        # Epoch boundaries: after the epoch's progress line, before its checkpoint (a kill
        # there once left a run that every --resume crashed on), and in the kNN monitor.
        ("kill-at-epoch-end", SignalInEpochEnd(2, "checkpoint", signal.SIGKILL)),
        ("sigterm-at-epoch-end", SignalInEpochEnd(1, "checkpoint", signal.SIGTERM)),
        ("sigint-in-monitor", SignalInEpochEnd(2, "monitor", signal.SIGINT)),
    ],
)
def test_training_survives(reference: Path, name: str, fault: object) -> None:
    outcome = train_fault(reference.parent.parent, reference, name, fault)  # type: ignore[arg-type]
    assert outcome.survived, outcome.detail


def test_clusters_build_survives_kill_while_writing(tmp_path: Path) -> None:
    outcome = clusters_fault(tmp_path, 1)
    assert outcome.survived, outcome.detail


def test_experiment_cell_resumes_after_sigterm(tmp_path: Path) -> None:
    outcome = experiment_fault(tmp_path, None, SignalAtStep(3, signal.SIGTERM), "SIGTERM")
    assert outcome.survived, outcome.detail


def test_embed_survives_kill_while_writing(reference: Path, tmp_path: Path) -> None:
    outcome = embed_fault(tmp_path, reference, 2)
    assert outcome.survived, outcome.detail


def test_prepare_leaves_no_orphans_and_no_stale_lock(tmp_path: Path) -> None:
    outcome = prepare_fault(tmp_path)
    assert outcome.survived, outcome.detail


def test_full_disk_in_a_checkpoint_save_is_one_line(tmp_path: Path) -> None:
    outcome = full_disk_train_fault(tmp_path)
    assert outcome.survived, outcome.detail


def test_full_disk_in_embed_keeps_the_earlier_export(reference: Path, tmp_path: Path) -> None:
    outcome = full_disk_embed_fault(tmp_path, reference)
    assert outcome.survived, outcome.detail


def test_yaml_alias_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    outcome = alias_bomb_fault(tmp_path)
    assert outcome.survived, outcome.detail


def test_the_checks_can_fail(reference: Path, tmp_path: Path) -> None:
    """A changed weight and a truncated checkpoint are both reported."""
    import torch
    from fault_harness import damaged_files, weight_difference

    last = reference / "checkpoints" / "last.ckpt"
    loaded = torch.load(last, map_location="cpu", weights_only=True)
    key = next(iter(loaded["state_dict"]))
    loaded["state_dict"][key] = loaded["state_dict"][key] + 1e-6
    changed = tmp_path / "checkpoints" / "changed.ckpt"
    changed.parent.mkdir()
    torch.save(loaded, changed)
    assert weight_difference(last, last) == ""
    assert weight_difference(last, changed).startswith("max weight difference")
    changed.write_bytes(changed.read_bytes()[:1000])
    assert damaged_files(tmp_path) and "changed.ckpt" in damaged_files(tmp_path)[0]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("bad-inputs"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_a_clear_message(case: Case, workspace: Workspace) -> None:
    verdict = run_case(case, workspace)
    assert verdict.clear, f"exit {verdict.code}, expected {case.code}; stderr:\n{verdict.stderr}"
