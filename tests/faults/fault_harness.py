"""Fault injection for the clinfonce command line: kill a command at a chosen point, then
check that nothing it left is truncated or stale and that resuming (or rerunning) ends
exactly where an uninterrupted run ends.

Each command runs in a forked child of this (already importing) process, so a fault costs
no interpreter start-up; the child dies for real (``SIGKILL``) or stops on ``SIGTERM``.
Faults:

* :class:`SignalAtStep`: ``SIGTERM``, ``SIGINT`` or ``SIGKILL`` right after training step
  ``n``.
* :class:`SignalInEpochEnd`: a signal at the end of epoch ``n``, inside the end-of-epoch
  checkpoint save or the kNN monitor (the epoch boundary, where resuming is hardest).
* :class:`KillInTorchSave`: ``SIGKILL`` half-way through writing the ``n``-th checkpoint.
* :class:`KillInReplace`: ``SIGKILL`` with the ``n``-th file half-written, before it is
  moved into place (any atomically written output: clusters, embeddings, results).

Used by ``test_faults.py`` (a few seeded kill points, for CI) and ``summary.py`` (more).
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from clinfonce.cli import main
from clinfonce.training.checkpointing import LastCheckpoint, checkpoint_run_id, read_checkpoint
from clinfonce.training.monitor import KNNMonitor

TINY: dict[str, Any] = {
    "data": {"dataset": "synthetic-attributes", "options": {"n_samples": 80, "image_size": 12}},
    "clusters": {"builder": "attributes", "params": {"columns": ["maker"]}},
    "method": {"name": "clinfonce"},
    "model": {"head_hidden": 32, "head_out": 16},
    "optim": {"lr": 0.05},
    "train": {
        "epochs": 3,
        "batch_size": 16,
        "progress_bar": True,  # not a terminal: EpochLines, which a resume must survive
        "log_every_n_steps": 1,
        "checkpoint_every_n_steps": 2,
    },
    "monitor": {"max_bank": 40, "max_queries": 16},
}
#: Optimiser steps of a TINY run (3 epochs of 3 full batches of the 64 training rows...).
TINY_STEPS = 9


@dataclass
class Outcome:
    """One injected fault: what was done, whether the run survived it, and why not."""

    name: str
    survived: bool
    detail: str = ""


class Fault:
    """Installed in the child process before the command runs."""

    #: The signal the fault sends (``SIGKILL``: a hard kill, no checkpoint of its own).
    signum: int = signal.SIGKILL

    def install(self) -> None:
        raise NotImplementedError


@dataclass
class SignalAtStep(Fault):
    step: int
    signum: int

    def install(self) -> None:
        original = LastCheckpoint.on_train_batch_end
        step, signum = self.step, self.signum

        def hooked(self: LastCheckpoint, trainer: Any, *args: Any) -> None:
            original(self, trainer, *args)
            if trainer.global_step == step:
                os.kill(os.getpid(), signum)

        LastCheckpoint.on_train_batch_end = hooked  # type: ignore[method-assign]


@dataclass
class SignalInEpochEnd(Fault):
    """``signum`` when epoch ``epoch`` (1-based) ends, inside ``where``'s epoch-end hook:
    ``checkpoint`` (before the epoch's save, after the epoch's progress line) or ``monitor``
    (before the kNN monitor runs)."""

    epoch: int
    where: str
    signum: int

    def install(self) -> None:
        owner: Any = {"checkpoint": LastCheckpoint, "monitor": KNNMonitor}[self.where]
        original = owner.on_train_epoch_end
        epoch, signum = self.epoch, self.signum

        def hooked(self: Any, trainer: Any, module: Any) -> None:
            if trainer.current_epoch + 1 == epoch:
                os.kill(os.getpid(), signum)
            original(self, trainer, module)

        owner.on_train_epoch_end = hooked


@dataclass
class KillInTorchSave(Fault):
    nth: int

    def install(self) -> None:
        original, calls = torch.save, [0]

        def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
            calls[0] += 1
            if calls[0] == self.nth and isinstance(f, str | os.PathLike):
                buffer = io.BytesIO()
                original(obj, buffer)
                Path(f).write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
            original(obj, f, *args, **kwargs)

        torch.save = save


@dataclass
class KillInReplace(Fault):
    nth: int

    def install(self) -> None:
        original, calls = os.replace, [0]

        def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            if str(src).endswith(".tmp"):
                calls[0] += 1
                if calls[0] == self.nth:
                    size = Path(src).stat().st_size
                    os.truncate(src, size // 2)
                    os.kill(os.getpid(), signal.SIGKILL)
            original(src, dst, *args, **kwargs)

        os.replace = replace  # type: ignore[assignment]


def run_child(argv: Sequence[str], fault: Fault | None = None) -> int:
    """Run ``clinfonce argv`` in a forked child; its exit code, or ``-signal`` if killed."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller (pytest, the summary script)
        code = 99
        try:
            torch.set_num_threads(1)
            if fault is not None:
                fault.install()
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def write_yaml(path: Path, values: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def tiny_config(folder: Path, name: str = "tiny") -> Path:
    """A TINY training config file whose runs go to ``folder/runs``."""
    values = {**TINY, "output": {"dir": str(folder / "runs"), "name": name}}
    return write_yaml(folder / f"{name}.yaml", values)


def damaged_files(folder: Path) -> list[str]:
    """Files under ``folder`` that do not read back whole, or checkpoints of another run."""
    problems = []
    run_ids = {p.parent: json.loads(p.read_text())["run_id"] for p in folder.rglob("run.json")}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name.endswith(".tmp"):
            continue
        try:
            if path.suffix == ".ckpt":
                owner = run_ids.get(path.parent.parent)
                found = checkpoint_run_id(read_checkpoint(path))
                if owner is not None and found != owner:
                    problems.append(f"{path}: stale checkpoint of run {found}, not {owner}")
            elif path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".yaml":
                yaml.safe_load(path.read_text())
            elif path.suffix == ".csv":
                pd.read_csv(path)
            elif path.suffix == ".npy":
                np.load(path)
        except Exception as exc:
            problems.append(f"{path}: {type(exc).__name__}: {str(exc)[:80]}")
    return problems


def weights(checkpoint: Path) -> tuple[int, dict[str, torch.Tensor]]:
    loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
    return int(loaded["global_step"]), loaded["state_dict"]


def weight_difference(a: Path, b: Path) -> str:
    """Empty when two checkpoints hold the same step and identical weights, else why not."""
    (step_a, state_a), (step_b, state_b) = weights(a), weights(b)
    if step_a != step_b:
        return f"global step {step_b} != {step_a}"
    diff = max((state_a[k].float() - state_b[k].float()).abs().max().item() for k in state_a)
    return "" if diff == 0.0 else f"max weight difference {diff:g}"


def train_reference(folder: Path) -> Path:
    """An uninterrupted TINY run; its run directory."""
    assert run_child(["train", "--config", str(tiny_config(folder, "reference"))]) == 0
    return folder / "runs" / "reference"


def train_fault(folder: Path, reference: Path, name: str, fault: Fault) -> Outcome:
    """Train TINY with ``fault``, then resume (or retrain when no checkpoint was saved yet)
    and compare with ``reference``."""
    config = tiny_config(folder, name)
    run_dir = folder / "runs" / name
    code = run_child(["train", "--config", str(config)], fault)
    graceful = fault.signum != signal.SIGKILL
    expected = 128 + fault.signum if graceful else -signal.SIGKILL
    if code != expected:
        return Outcome(name, False, f"exit code {code}, expected {expected}")
    problems = damaged_files(run_dir)
    if problems:
        return Outcome(name, False, "; ".join(problems))
    last = run_dir / "checkpoints" / "last.ckpt"
    if isinstance(fault, SignalAtStep) and graceful and weights(last)[0] != fault.step:
        return Outcome(name, False, f"graceful stop: the checkpoint is of step {weights(last)[0]}")
    if last.is_file():
        code = run_child(["train", "--resume", str(run_dir)])
    else:  # killed before its first checkpoint: only a fresh start is left
        code = run_child(["train", "--config", str(config), "output.overwrite=true"])
    if code != 0:
        return Outcome(name, False, f"resume exit code {code}")
    why = weight_difference(reference / "checkpoints" / "last.ckpt", last)
    problems = damaged_files(run_dir)
    return Outcome(name, not why and not problems, "; ".join([why, *problems]).strip("; "))


def metadata_table(folder: Path) -> Path:
    """A small attribute table for ``clusters build``."""
    rng = np.random.default_rng(0)
    n = 300
    table = pd.DataFrame(
        {
            "id": [f"s{i}" for i in range(n)],
            "label": rng.integers(0, 4, n),
            "region": rng.choice(["NA", "EU", "AS"], n),
            "size": rng.integers(0, 5, n),
            "colour": rng.integers(0, 3, n),
        }
    )
    path = folder / "meta.csv"
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return path


def image_table(folder: Path, table: Path, count: int = 24, side: int = 12) -> Path:
    """``count`` small PNG files in ``folder`` and a table listing them (path, colour)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(count):
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
        rows.append(
            {
                "path": str((folder / f"img{i}.png").relative_to(table.parent)),
                "colour": ["red", "blue"][i % 2],
            }
        )
    table.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(table, index=False)
    return table


def _children() -> list[int]:
    """Process ids whose parent is this process (from /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if int(fields.get("PPid", "0")) == os.getpid():
            found.append(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        return "\tZ" not in Path(f"/proc/{pid}/status").read_text().split("State:")[1][:4]
    except (OSError, IndexError):
        return False


@dataclass
class KillWithWorkers(Fault):
    """``SIGKILL`` to ``clinfonce prepare`` once its first chunk is decoded, its workers
    running; their ids go to ``record``."""

    record: Path

    def install(self) -> None:
        from clinfonce.data import prepared

        original, record = prepared.wait, self.record

        def wait(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            record.write_text(" ".join(map(str, _children())))
            os.kill(os.getpid(), signal.SIGKILL)
            return result

        prepared.wait = wait


@dataclass
class FullDisk(Fault):
    """Files can grow to ``limit`` bytes only (``RLIMIT_FSIZE``: a write past it fails as on a
    full disk); the command's stderr goes to ``stderr``."""

    limit: int
    stderr: Path

    def install(self) -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing
        handle = open(self.stderr, "w", buffering=1)  # noqa: SIM115 - kept until the exit
        os.dup2(handle.fileno(), 2)
        sys.stderr = handle  # also where pytest had put its own capture
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.limit, resource.RLIM_INFINITY))


def one_line_error(stderr: Path, expect: str) -> str:
    """Empty when ``stderr`` holds exactly one error line, containing ``expect``, and no
    traceback; else what is wrong."""
    text = stderr.read_text()
    errors = [line for line in text.splitlines() if ": error: " in line]
    if "Traceback" in text or len(errors) != 1 or expect not in errors[0]:
        return f"not one clear line: {text[-600:]!r}"
    return ""


def full_disk_train_fault(folder: Path) -> Outcome:
    """The disk fills while the first checkpoint is written: one line, nothing torn."""
    name = "train, disk full while saving a checkpoint"
    config = tiny_config(folder, "full")
    stderr = folder / "stderr.txt"
    code = run_child(["train", "--config", str(config)], FullDisk(400_000, stderr))
    why = [f"exit code {code}, expected 1"] if code != 1 else []
    why += [w for w in [one_line_error(stderr, "is the disk full?")] if w]
    run_dir = folder / "runs" / "full"
    why += damaged_files(run_dir) + [f"left {p}" for p in run_dir.rglob("*.tmp")]
    return Outcome(name, not why, "; ".join(why))


def full_disk_embed_fault(folder: Path, run_dir: Path) -> Outcome:
    """The disk fills while ``embed`` replaces an earlier export: one line, and the earlier
    ``embeddings.npy`` and ``index.csv`` both kept (once the index was new, the array old)."""
    name = "embed, disk full while replacing an export"
    out, stderr = folder / "out", folder / "stderr.txt"
    command = ["embed", "--checkpoint", str(run_dir), "--out", str(out)]
    assert run_child(command) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "index.csv").write_text((out / "index.csv").read_text().replace(",", ", "))
    before["index.csv"] = (out / "index.csv").read_bytes()  # tell the old index from a new one
    code = run_child(command, FullDisk(20_000, stderr))
    why = [f"exit code {code}, expected 1"] if code != 1 else []
    why += [w for w in [one_line_error(stderr, "is the disk full?")] if w]
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    why += ["the earlier export changed"] if after != before else []
    return Outcome(name, not why, "; ".join(why))


@dataclass
class Bounded(Fault):
    """At most ``seconds`` (then ``SIGALRM`` kills) and 1 GiB more memory than at the start
    (then allocations fail); stderr goes to ``stderr``."""

    seconds: int
    stderr: Path

    def install(self) -> None:
        import resource

        size = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size + 2**30, resource.RLIM_INFINITY))
        FullDisk(2**40, self.stderr).install()
        signal.alarm(self.seconds)


def alias_bomb_fault(folder: Path) -> Outcome:
    """A config of nested YAML aliases standing for 10^9 values: refused in one line (once
    memory grew without bound)."""
    name = "train, YAML alias bomb in the config"
    levels = ["&x0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"&x{n} [{', '.join([f'*x{n - 1}'] * 10)}]" for n in range(1, 9)]
    values = {**TINY, "clusters": {"builder": "attributes", "params": {"columns": "BOMB"}}}
    text = yaml.safe_dump(values, sort_keys=False).replace("BOMB", f"[{', '.join(levels)}]")
    config = folder / "bomb.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    config.write_text(text)
    stderr = folder / "stderr.txt"
    code = run_child(["train", "--config", str(config)], Bounded(30, stderr))
    why = [f"exit code {code}, expected 1"] if code != 1 else []
    why += [w for w in [one_line_error(stderr, "an alias bomb?")] if w]
    return Outcome(name, not why, "; ".join(why))


@dataclass
class Deadline(Fault):
    """``SIGALRM`` (which kills) after ``seconds``: a command that hangs fails instead."""

    seconds: int

    def install(self) -> None:
        signal.alarm(self.seconds)


def prepare_fault(folder: Path) -> Outcome:
    """``kill -9`` of ``clinfonce prepare`` with 2 workers: the workers must end with it and
    a rerun must finish (once, orphans held the lock and the rerun waited forever)."""
    name = "prepare, kill -9 with 2 workers running"
    table = image_table(folder / "images", folder / "meta.csv", count=200, side=24)
    record = folder / "workers.txt"
    command = ["prepare", str(table), "--size", "16", "--workers", "2"]
    code = run_child(command, KillWithWorkers(record))
    if code != -signal.SIGKILL:
        return Outcome(name, False, f"exit code {code}, expected -9")
    workers = [int(pid) for pid in record.read_text().split()]
    for _ in range(50):
        if not any(map(_alive, workers)):
            break
        time.sleep(0.1)
    orphans = [pid for pid in workers if _alive(pid)]
    code = run_child(command, Deadline(60))
    for pid in orphans:  # the harness's own children: end them so nothing is left behind
        os.kill(pid, signal.SIGKILL)
    why = [f"{len(orphans)} worker(s) outlived the killed command"] if orphans else []
    why += [f"rerun exit code {code} (-14: still waiting after 60 s)"] if code else []
    return Outcome(name, not why, "; ".join(why))


def clusters_fault(folder: Path, nth: int) -> Outcome:
    """Kill ``clusters build`` with its ``nth`` file half-written over an earlier build."""
    name = f"clusters build, kill -9 in write {nth}"
    table = metadata_table(folder)
    build = ["clusters", "build", str(table), "--builder", "attributes"]
    reference, out = folder / "reference.csv", folder / "out.csv"
    assert run_child([*build, "--k", "2", "--out", str(reference)]) == 0
    assert run_child([*build, "--k", "1", "--out", str(out)]) == 0  # the earlier result
    code = run_child([*build, "--k", "2", "--out", str(out)], KillInReplace(nth))
    if code != -signal.SIGKILL:
        return Outcome(name, False, f"exit code {code}, expected -9")
    problems = damaged_files(folder)
    if run_child([*build, "--k", "2", "--out", str(out)]) != 0:
        return Outcome(name, False, "rerun failed")
    same = out.read_text() == reference.read_text()
    sidecar = json.loads(Path(f"{out}.json").read_text())["num_clusters"]
    expected = json.loads(Path(f"{reference}.json").read_text())["num_clusters"]
    survived = same and sidecar == expected and not problems
    return Outcome(name, survived, "; ".join(problems) or ("" if same else "output differs"))


def experiment_spec(folder: Path) -> Path:
    base = {k: v for k, v in TINY.items() if k != "clusters"}
    base["method"] = {"name": "simclr"}
    base["train"] = {**TINY["train"], "epochs": 2}
    spec = {
        "base": base,
        "seeds": [0],
        "evaluation": {"knn_k": 5, "cs": [1.0]},
        "runs": [
            {
                "name": "cl",
                "set": {
                    "method.name": "clinfonce",
                    "clusters": {"builder": "attributes", "params": {"columns": ["maker"]}},
                },
            }
        ],
    }
    return write_yaml(folder / "experiment.yaml", spec)


def experiment_fault(folder: Path, reference: Path | None, fault: Fault, label: str) -> Outcome:
    """Interrupt ``clinfonce experiment`` while its cell trains, rerun it, compare."""
    name = f"experiment, {label}"
    spec = experiment_spec(folder)
    if reference is None:
        reference = folder / "reference"
        assert run_child(["experiment", "--config", str(spec), "--out", str(reference)]) == 0
    out = folder / "faulted"
    code = run_child(["experiment", "--config", str(spec), "--out", str(out)], fault)
    if code == 0:
        return Outcome(name, False, "the fault did not stop the experiment")
    problems = damaged_files(out)
    if run_child(["experiment", "--config", str(spec), "--out", str(out)]) != 0:
        return Outcome(name, False, "rerun failed")
    cell = Path("runs") / "cl-seed0" / "checkpoints" / "last.ckpt"
    why = weight_difference(reference / cell, out / cell)
    columns = ["knn_top1", "linear_top1"]
    a = pd.read_csv(reference / "results.csv")[columns]
    b = pd.read_csv(out / "results.csv")[columns]
    resumed = bool(pd.read_csv(out / "results.csv")["resumed"].iloc[0])
    if not a.equals(b):
        why = f"{why} results differ".strip()
    if not resumed and isinstance(fault, SignalAtStep) and fault.step > 2:
        why = f"{why} the cell was retrained instead of resumed".strip()
    return Outcome(name, not why and not problems, "; ".join([why, *problems]).strip("; "))


def embed_fault(folder: Path, run_dir: Path, nth: int) -> Outcome:
    """Kill ``embed`` with its ``nth`` output half-written, rerun it, compare."""
    name = f"embed, kill -9 in write {nth}"
    reference, out = folder / "reference", folder / "out"
    if not (reference / "embeddings.json").is_file():
        assert run_child(["embed", "--checkpoint", str(run_dir), "--out", str(reference)]) == 0
    code = run_child(["embed", "--checkpoint", str(run_dir), "--out", str(out)], KillInReplace(nth))
    if code != -signal.SIGKILL:
        return Outcome(name, False, f"exit code {code}, expected -9")
    problems = damaged_files(out) if out.exists() else []
    if run_child(["embed", "--checkpoint", str(run_dir), "--out", str(out)]) != 0:
        return Outcome(name, False, "rerun failed")
    same = np.array_equal(np.load(reference / "embeddings.npy"), np.load(out / "embeddings.npy"))
    same = same and (reference / "index.csv").read_text() == (out / "index.csv").read_text()
    return Outcome(name, same and not problems, "; ".join(problems) or ("" if same else "differ"))


_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGKILL)


def training_faults(rng: np.random.Generator, count: int) -> list[tuple[str, Fault]]:
    """``count`` training faults of each kind at seeded random points."""
    faults: list[tuple[str, Fault]] = []
    for step in rng.choice(np.arange(1, TINY_STEPS), size=count, replace=False).tolist():
        faults.append((f"train, SIGTERM after step {step}", SignalAtStep(step, signal.SIGTERM)))
    for step in rng.choice(np.arange(1, TINY_STEPS), size=count, replace=False).tolist():
        faults.append((f"train, SIGINT after step {step}", SignalAtStep(step, signal.SIGINT)))
    for step in rng.choice(np.arange(1, TINY_STEPS), size=count, replace=False).tolist():
        faults.append((f"train, kill -9 after step {step}", SignalAtStep(step, signal.SIGKILL)))
    # Epoch boundaries: the end of epoch 1 or 2, in its checkpoint save or kNN monitor.
    kinds = [(e, w, n) for e in (1, 2) for w in ("checkpoint", "monitor") for n in _SIGNALS]
    for i in rng.choice(len(kinds), size=count, replace=False).tolist():
        epoch, where, signum = kinds[i]
        label = f"train, {signal.Signals(signum).name} in the {where} at the end of epoch {epoch}"
        faults.append((label, SignalInEpochEnd(epoch, where, signum)))
    # Saves: every 2 steps and every epoch end (about 8 in a TINY run).
    for nth in rng.choice(np.arange(1, 8), size=count, replace=False).tolist():
        faults.append((f"train, kill -9 inside checkpoint save {nth}", KillInTorchSave(nth)))
    return faults


def run_all(
    folder: Path, seed: int, count: int, log: Callable[[str], None] = print
) -> list[Outcome]:
    """Every kind of fault, ``count`` seeded points of each; one :class:`Outcome` per fault."""
    rng = np.random.default_rng(seed)
    outcomes: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        log(f"{'survived' if outcome.survived else 'FAILED  '}  {outcome.name}  {outcome.detail}")

    reference = train_reference(folder / "train")
    for i, (name, fault) in enumerate(training_faults(rng, count)):
        outcome = train_fault(folder / "train", reference, f"f{i}", fault)
        record(Outcome(name, outcome.survived, outcome.detail))
    for nth in rng.choice([1, 2], size=min(count, 2), replace=False).tolist():
        record(clusters_fault(folder / f"clusters{nth}", nth))
    experiment_reference = None
    for step in rng.choice(np.arange(3, 6), size=count, replace=False).tolist():
        work = folder / f"experiment{step}"
        signum = signal.SIGTERM if step % 2 else signal.SIGKILL
        label = f"{signal.Signals(signum).name} after step {step}"
        record(experiment_fault(work, experiment_reference, SignalAtStep(step, signum), label))
        experiment_reference = experiment_reference or work / "reference"
    for nth in rng.choice([1, 2, 3], size=min(count, 3), replace=False).tolist():
        record(embed_fault(folder / "embed", reference, nth))
    record(prepare_fault(folder / "prepare"))
    record(full_disk_train_fault(folder / "full-disk-train"))
    record(alias_bomb_fault(folder / "alias-bomb"))
    record(full_disk_embed_fault(folder / "full-disk-embed", reference))
    return outcomes
