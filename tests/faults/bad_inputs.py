"""Bad inputs through the command line, one table row each: the exit code and the one-line
message (or warning) a user sees.

Each case makes its own input in a shared :class:`Workspace` (a tiny trained run is made
once, on first need) and runs ``clinfonce`` in this process. A case passes when the exit
code is as expected, the expected text is on stderr, there is no traceback, and an error is
reported in exactly one ``clinfonce COMMAND: error:`` line. Successful cases (a warning,
or input that must be read right) expect exit code 0 and their text on stdout or stderr.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from fault_harness import TINY, experiment_spec, image_table, metadata_table, write_yaml

from clinfonce.cli import main


class Workspace:
    """Inputs shared by the cases, made on first use under ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._run: Path | None = None

    def config(self, name: str = "tiny", **sections: dict[str, object]) -> Path:
        values = {**TINY, "output": {"dir": str(self.folder / "runs"), "name": name}}
        for key, value in sections.items():
            values[key] = {**values.get(key, {}), **value}
        return write_yaml(self.folder / f"{name}.yaml", values)

    def run(self) -> Path:
        """A one-epoch run without the kNN monitor (so no best.ckpt)."""
        if self._run is None:
            config = self.config("trained", train={"epochs": 1}, monitor={"enabled": False})
            with contextlib.redirect_stdout(io.StringIO()):
                assert main(["train", "--config", str(config)]) == 0
            self._run = self.folder / "runs" / "trained"
        return self._run

    def copy_run(self, name: str) -> Path:
        target = self.folder / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.run(), target)
        return target

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path


NO_MONITOR = {"enabled": False}


@dataclass
class Case:
    """One bad input: how to make the command line, what the user must be told."""

    name: str
    argv: Callable[[Workspace], list[str]]
    expect: str
    code: int = 1
    #: After the command: empty when all is as it must be (inputs untouched, outputs right),
    #: else what is wrong.
    check: Callable[[Workspace], str] | None = None


def _truncated_run(ws: Workspace) -> list[str]:
    run = ws.copy_run("truncated-run")
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:5000])
    return ["train", "--resume", str(run)]


def _empty_last(ws: Workspace) -> list[str]:
    run = ws.copy_run("empty-run")
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    return ["train", "--resume", str(run)]


def _stale(ws: Workspace) -> list[str]:
    run = ws.copy_run("stale-run")
    (run / "run.json").write_text(json.dumps({"run_id": "0123456789ab"}))
    return ["embed", "--checkpoint", str(run), "--out", str(ws.folder / "stale-out")]


def _foreign_last(ws: Workspace) -> list[str]:
    """`train --resume RUN` with a last.ckpt copied from another run (once trained on and
    re-stamped with the directory's run id)."""
    run, other = ws.copy_run("foreign-run"), ws.copy_run("other-run")
    (other / "run.json").write_text(json.dumps({"run_id": "0123456789ab"}))
    shutil.copy(run / "checkpoints" / "last.ckpt", other / "checkpoints" / "last.ckpt")
    return ["train", "--resume", str(other)]


class _Holder:
    """Another process holding a run directory's lock (a second `--resume` of the run)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None

    def argv(self, ws: Workspace) -> list[str]:
        run = ws.copy_run("busy-run")
        code = (
            "import fcntl, os, sys, time\n"
            f"handle = open({str(run / '.lock')!r}, 'a+')\n"
            "fcntl.lockf(handle.fileno(), fcntl.LOCK_EX)\n"
            "handle.write(f'process {os.getpid()}'); handle.flush(); print('locked', flush=True)\n"
            "time.sleep(120)\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None and self.process.stdout.readline() == "locked\n"
        return ["train", "--resume", str(run)]

    def release(self, ws: Workspace) -> str:
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        return ""


_holder = _Holder()


def _edited_config(ws: Workspace, name: str, old: str, new: str) -> list[str]:
    """`train --resume RUN` after an edit of the run's config.yaml."""
    run = ws.copy_run(name)
    config = run / "config.yaml"
    assert old in config.read_text()
    config.write_text(config.read_text().replace(old, new))
    return ["train", "--resume", str(run)]


def _table_lost_rows(ws: Workspace) -> list[str]:
    """`train --resume RUN` after rows of its table were deleted (once silently trained on,
    with the clusters rebuilt)."""
    work = ws.folder / "lost-rows"
    table = image_table(work / "images", work / "meta.csv")
    config = ws.config(
        "lost-rows",
        data={"dataset": "table", "options": {"table": str(table)}, "label_column": None},
        clusters={"builder": "attributes", "params": {"columns": ["colour"]}},
        train={"epochs": 1, "batch_size": 8},
        monitor={"enabled": False},
    )
    shutil.rmtree(ws.folder / "runs" / "lost-rows", ignore_errors=True)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["train", "--config", str(config)]) == 0
    lines = table.read_text().splitlines()
    table.write_text("\n".join(lines[:-4]) + "\n")
    return ["train", "--resume", str(ws.folder / "runs" / "lost-rows")]


def _simclr_one_view(ws: Workspace) -> list[str]:
    """SimCLR with train.views=1 (once loss 0.0000 and no word about why)."""
    values = {k: v for k, v in TINY.items() if k != "clusters"}
    values["method"] = {"name": "simclr"}
    values["train"] = {**TINY["train"], "epochs": 1, "views": 1}
    values["monitor"] = NO_MONITOR
    values["output"] = {"dir": str(ws.folder / "runs"), "name": "views1"}
    return ["train", "--config", str(write_yaml(ws.folder / "views1.yaml", values))]


def _latin1_table(ws: Workspace) -> Path:
    return ws.file("latin1.csv", "id,label,city\ns1,0,Paris\ns2,1,Montr\xe9al\n".encode("latin-1"))


def _latin1_build(ws: Workspace, *extra: str) -> list[str]:
    table, out = _latin1_table(ws), ws.folder / "l.csv"
    return ["clusters", "build", str(table), "--builder", "label", *extra, "--out", str(out)]


def _latin1_image_table(ws: Workspace) -> Path:
    """A Latin-1 image table (a city with an accent) with its colour column."""
    table = image_table(ws.folder / "latin1-images", ws.folder / "latin1-images.csv")
    frame = pd.read_csv(table)
    frame["city"] = ["Montr\xe9al", "Paris"] * (len(frame) // 2)
    frame.to_csv(table, index=False, encoding="latin-1")
    return table


def _latin1_run(ws: Workspace, *extra: str) -> list[str]:
    out = ws.folder / f"latin1-run{len(extra)}"
    shutil.rmtree(out, ignore_errors=True)
    table = _latin1_image_table(ws)
    return _run_argv(table, "city", out, *extra)


def _run_argv(table: Path, aux: str, out: Path, *extra: str) -> list[str]:
    """`clinfonce run TABLE --aux AUX` for one short epoch, into ``out``."""
    return ["run", str(table), "--aux", aux, "--epochs", "1", "--batch-size", "8",
            "--out", str(out), *extra]  # fmt: skip


def _html_column_run(ws: Workspace) -> list[str]:
    """`clinfonce run` on a table whose auxiliary column is named `<b>colour</b>`."""
    work = ws.folder / "html-column"
    table = image_table(work / "images", work / "meta.csv")
    table.write_text(table.read_text().replace("path,colour", "path,<b>colour</b>"))
    shutil.rmtree(work / "run", ignore_errors=True)
    return _run_argv(table, "<b>colour</b>", work / "run")


def _long_cell_run(ws: Workspace) -> list[str]:
    """`clinfonce run` on a table with a 300-character text cell (once `file name too long`
    while looking for the path column)."""
    work = ws.folder / "long-cell"
    table = image_table(work / "images", work / "meta.csv")
    frame = pd.read_csv(table)
    frame.insert(0, "note", "n" * 300)
    frame.to_csv(table, index=False)
    shutil.rmtree(work / "run", ignore_errors=True)
    return _run_argv(table, "colour", work / "run")


def _escaping_path_run(ws: Workspace) -> list[str]:
    """`clinfonce run` on a table with a row whose path leaves the image folder for a file
    that is no image (once dropped as "1 unreadable image(s)", without its name)."""
    work = ws.folder / "escaping-path"
    table = image_table(work / "images", work / "meta.csv")
    (ws.folder / "notes.txt").write_text("not an image\n")
    with table.open("a") as handle:
        handle.write("../notes.txt,red\n")
    shutil.rmtree(work / "run", ignore_errors=True)
    return _run_argv(table, "colour", work / "run")


def _val_split_run(ws: Workspace) -> list[str]:
    """`clinfonce run` on a table with train, test and val rows (val once counted in "none
    dropped" though never used)."""
    work = ws.folder / "val-split"
    table = image_table(work / "images", work / "meta.csv")
    frame = pd.read_csv(table)
    frame["split"] = (["train"] * 4 + ["test", "val"]) * (len(frame) // 6)
    frame.to_csv(table, index=False)
    shutil.rmtree(work / "run", ignore_errors=True)
    return _run_argv(table, "colour", work / "run")


def _report_shows_the_name(ws: Workspace) -> str:
    report = (ws.folder / "html-column" / "run" / "report.md").read_text()
    return "report.md renders the column name as HTML" if "<b>" in report else ""


def _one_epoch(ws: Workspace, name: str, *overrides: str) -> list[str]:
    config = ws.config(name, train={"epochs": 1}, monitor=NO_MONITOR)
    return ["train", "--config", str(config), *overrides]


def _non_empty(ws: Workspace) -> list[str]:
    run = ws.folder / "runs" / "occupied"
    run.mkdir(parents=True, exist_ok=True)
    (run / "notes.txt").write_text("mine")
    return ["train", "--config", str(ws.config("occupied"))]


def _files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


class _Untouched:
    """Records a folder's files when the command line is made; the check says what changed."""

    def __init__(self) -> None:
        self.before: dict[Path, dict[str, bytes]] = {}

    def keep(self, folder: Path) -> Path:
        self.before[folder] = _files_of(folder)
        return folder

    def __call__(self, ws: Workspace) -> str:
        changed = [
            str(folder)
            for folder, files in self.before.items()
            if not folder.is_dir() or _files_of(folder) != files
        ]
        return ", ".join(changed)


_run_images = _Untouched()


def _run_over_its_images(ws: Workspace) -> list[str]:
    """`clinfonce run meta.csv --out imgs output.overwrite=true`, imgs/ holding the images
    and a config.yaml (so it looks like a run directory)."""
    work = ws.folder / "run-over-images"
    table = image_table(work / "imgs", work / "meta.csv")
    (work / "imgs" / "config.yaml").write_text("an old run's config\n")
    _run_images.keep(work / "imgs")
    return _run_argv(table, "colour", work / "imgs", "output.overwrite=true")


_embed_table = _Untouched()


def _embed_over_its_table(ws: Workspace, *extra: str) -> list[str]:
    """`embed --config tbl.yaml --out tbl`, the config's table being tbl/index.csv."""
    work = ws.folder / f"embed-over-table{len(extra)}"
    table = image_table(work / "tbl" / "images", work / "tbl" / "index.csv")
    config = ws.config(
        f"tbl{len(extra)}",
        data={"dataset": "table", "options": {"table": str(table)}, "image_size": 12},
    )
    _embed_table.keep(work / "tbl")
    return [
        "embed",
        "--checkpoint",
        str(ws.run()),
        "--config",
        str(config),
        "--out",
        str(work / "tbl"),
        *extra,
    ]


def _deep_images(ws: Workspace, float_range: tuple[float, float] = (0.0, 1.0)) -> Path:
    """A table of a 16-bit PNG (mean 132 of 255) and a float TIFF (values in ``float_range``,
    mean at its middle), 8 x 8 px."""
    from PIL import Image

    work = ws.folder / f"deep-{float_range[1]:g}"
    work.mkdir(parents=True, exist_ok=True)
    sixteen = 132 * 257 + 2570 * np.tile([-1, 1], 32).reshape(8, 8)  # 8-bit: 122 and 142
    Image.fromarray(sixteen.astype(np.uint16)).save(work / "sixteen.png")
    low, high = float_range
    floats = np.linspace(low + (high - low) / 4, high - (high - low) / 4, 64, dtype=np.float32)
    floats = floats.reshape(8, 8)
    Image.fromarray(floats).save(work / "float.tiff")
    table = work / "meta.csv"
    table.write_text("path\nsixteen.png\nfloat.tiff\n")
    return table


def _prepared_means(ws: Workspace) -> str:
    """Empty when the prepared pixels have the files' real means (132 and 128 of 255)."""
    (array,) = (ws.folder / "deep-1" / ".clinfonce-prepared").glob("*/images.npy")
    means = np.load(array).reshape(2, -1).mean(axis=1)
    ok = abs(means[0] - 132) < 3 and abs(means[1] - 127.5) < 3
    return "" if ok else f"prepared means {means.round(1).tolist()}, expected [132, 127.5]"


def _embed_with_a_missing_image(ws: Workspace) -> list[str]:
    """Embed a table whose row 3 lists a missing file (data.options.missing=skip)."""
    work = ws.folder / "missing-row"
    table = image_table(work / "images", work / "meta.csv")
    (work / "images" / "img3.png").unlink()
    options = {"table": str(table), "missing": "skip"}
    config = ws.config("missing-row", data={"dataset": "table", "options": options})
    return ["embed", "--checkpoint", str(ws.run()), "--config", str(config), "--out", str(work)]


def _index_rows_are_table_rows(ws: Workspace) -> str:
    rows = pd.read_csv(ws.folder / "missing-row" / "index.csv")["row"].tolist()
    expected = [0, 1, 2, *range(4, 24)]
    return "" if rows == expected else f"index.csv rows {rows}, expected {expected}"


def _build(ws: Workspace, *extra: str) -> list[str]:
    table = metadata_table(ws.folder)
    return ["clusters", "build", str(table), "--builder", "attributes", *extra]


CASES: list[Case] = [
    Case(
        "run: --out is the folder of the table's images, output.overwrite=true",
        _run_over_its_images,
        "img0.png and 23 more: this is an input of the run",
        check=_run_images,
    ),
    Case(
        "embed: --out holds the config's table (index.csv)",
        _embed_over_its_table,
        "index.csv is also an input of this command",
        check=_embed_table,
    ),
    Case(
        "embed: --out holds the config's table (index.csv), with --force",
        lambda ws: _embed_over_its_table(ws, "--force"),
        "index.csv is also an input of this command",
        check=_embed_table,
    ),
    Case(
        "config: malformed YAML",
        lambda ws: ["train", "--config", str(ws.file("broken.yaml", "train: {epochs: 2\n"))],
        "broken.yaml, line 2 column 1: invalid YAML",
    ),
    Case(
        "config: !!python tag",
        lambda ws: [
            "train",
            "--config",
            str(ws.file("tag.yaml", "train:\n  epochs: !!python/object/apply:os.getpid []\n")),
        ],
        "tag.yaml, line 2 column 11: the YAML tag !!python/object/apply:os.getpid is not allowed",
    ),
    Case(
        "override: malformed YAML value",
        lambda ws: ["train", "--config", str(ws.config()), "train.epochs=[1"],
        "override 'train.epochs=[1', line 1 column 3: invalid YAML",
    ),
    Case(
        "experiment spec: !!python tag",
        lambda ws: [
            "experiment",
            "--config",
            str(ws.file("spec.yaml", "seeds: !!python/tuple [0]\nruns: []\n")),
        ],
        "the YAML tag !!python/tuple is not allowed",
    ),
    Case(
        "clusters --config: malformed YAML",
        lambda ws: ["clusters", "build", "--config", str(ws.file("cl.yaml", "k: [1,\n"))],
        "cl.yaml, line 2 column 1: invalid YAML",
    ),
    Case(
        "evaluate: zero-byte checkpoint",
        lambda ws: ["evaluate", "--checkpoint", str(ws.file("empty.ckpt", b""))],
        "the checkpoint file is empty (0 bytes",
    ),
    Case(
        "embed: zero-byte checkpoint",
        lambda ws: [
            "embed",
            "--checkpoint",
            str(ws.file("empty.ckpt", b"")),
            "--out",
            str(ws.folder / "e"),
        ],
        "the checkpoint file is empty (0 bytes",
    ),
    Case("train --resume: zero-byte last.ckpt", _empty_last, "the checkpoint file is empty"),
    Case(
        "train --resume: truncated checkpoint",
        _truncated_run,
        "not a readable checkpoint, truncated or not written by torch",
    ),
    Case(
        "embed: a text file as checkpoint",
        lambda ws: [
            "embed",
            "--checkpoint",
            str(ws.file("notes.ckpt", "epoch 3 was fine\n")),
            "--out",
            str(ws.folder / "e"),
        ],
        "not a readable checkpoint",
    ),
    Case(
        "clusters build: --out is the input table",
        lambda ws: _build(ws, "--out", str(ws.folder / "meta.csv")),
        "is also an input of this command",
    ),
    Case(
        "clusters build: --out is someone else's file",
        lambda ws: _build(ws, "--out", str(ws.file("mine.csv", "a,b\n1,2\n"))),
        "exists and was not written by clinfonce; choose another output path, or pass --force",
    ),
    Case(
        "clusters build: non-UTF-8 table",
        lambda ws: _latin1_build(ws),
        "line 3 column 11: byte 0xe9 is not valid utf-8; pass the file's encoding",
    ),
    Case(
        "clusters build: the same table with --encoding latin-1",
        lambda ws: _latin1_build(ws, "--encoding", "latin-1"),
        "wrote",
        code=0,
    ),
    Case(
        "clusters build: 'NA' (North America) is a value, not missing",
        lambda ws: _build(ws, "--columns", "region", "--k", "1", "--out", str(ws.folder / "r.csv")),
        "clusters K     3",
        code=0,
    ),
    Case(
        "clusters build: unknown --encoding",
        lambda ws: _latin1_build(ws, "--encoding", "klingon"),
        "unknown text encoding 'klingon'",
    ),
    Case(
        "embed: index.csv's row is the table's row after a skipped one",
        _embed_with_a_missing_image,
        "wrote 23 x",
        code=0,
        check=_index_rows_are_table_rows,
    ),
    Case(
        "run: --encoding latin-1",
        lambda ws: _latin1_run(ws, "--encoding", "latin-1"),
        "run directory:",
        code=0,
    ),
    Case(
        "run: data.options.encoding=latin-1 as an override",
        lambda ws: _latin1_run(ws, "data.options.encoding=latin-1"),
        "run directory:",
        code=0,
    ),
    Case(
        "run: HTML in a column name is shown in report.md, not rendered",
        _html_column_run,
        "run directory:",
        code=0,
        check=_report_shows_the_name,
    ),
    Case(
        "run: a dropped row is named (a path leaving the image folder)",
        _escaping_path_run,
        "1 unreadable image(s)); e.g. row 24: ",
        code=0,
    ),
    Case(
        "run: rows of a split neither trained on nor evaluated are said unused",
        _val_split_run,
        "none dropped; 4 of them in split(s) val, which neither train (train) nor evaluate",
        code=0,
    ),
    Case(
        "run: a 300-character text cell",
        _long_cell_run,
        "run directory:",
        code=0,
    ),
    Case(
        "train: a Latin-1 table names data.options.encoding (train has no --encoding)",
        lambda ws: _one_epoch(
            ws,
            "latin1-train",
            "data.dataset=table",
            f"data.options={{table: {_latin1_image_table(ws)}}}",
            "clusters.params={columns: [city]}",
        ),
        "pass the file's encoding (e.g. data.options.encoding=latin-1 or cp1252)",
    ),
    Case(
        "prepare: --encoding latin-1",
        lambda ws: [
            "prepare",
            str(_latin1_image_table(ws)),
            "--size",
            "8",
            "--workers",
            "1",
            "--encoding",
            "latin-1",
        ],
        "prepared 24 images at 8 px",
        code=0,
    ),
    Case(
        "clusters suggest: --encoding latin-1",
        lambda ws: ["clusters", "suggest", str(_latin1_table(ws)), "--encoding", "latin-1"],
        "recommended:",
        code=0,
    ),
    Case(
        "clusters build: a label with one value (once I(Z;T)/H(T) nan)",
        lambda ws: [
            "clusters",
            "build",
            str(
                ws.file(
                    "one-label.csv",
                    "id,label,colour\n"
                    + "".join(f"s{i},cat,{'red' if i % 2 else 'blue'}\n" for i in range(20)),
                )
            ),
            "--builder",
            "attributes",
            "--columns",
            "colour",
            "--out",
            str(ws.folder / "o.csv"),
        ],
        "I(Z;T)/H(T)    undefined: the label has one value",
        code=0,
    ),
    Case(
        "clusters sweep: k beyond the attributes",
        lambda ws: [
            "clusters",
            "sweep",
            str(metadata_table(ws.folder)),
            "--builder",
            "attributes",
            "--values",
            "1:10",
            "--out-dir",
            str(ws.folder / "sweep"),
        ],
        "note: k = 4, 5, 6, 7, 8, 9, 10 capped at 3, the number of attribute columns",
        code=0,
    ),
    Case(
        "experiment: --out would replace the experiment file",
        lambda ws: [
            "experiment",
            "--config",
            str(experiment_spec(ws.folder / "exp")),
            "--out",
            str(ws.folder / "exp"),
        ],
        "experiment.yaml is also an input of this command",
    ),
    Case(
        "train: optim.lr=.inf",
        lambda ws: _one_epoch(ws, "lr-inf", "optim.lr=.inf"),
        "optim.lr must be a finite number > 0, got inf",
    ),
    Case(
        "train: optim.lr=.nan",
        lambda ws: _one_epoch(ws, "lr-nan", "optim.lr=.nan"),
        "optim.lr must be a finite number > 0, got nan",
    ),
    Case(
        "train: a 300-character column name",
        lambda ws: _one_epoch(ws, "long-column", "clusters.params={columns: [" + "c" * 300 + "]}"),
        "' not found in the table; available columns: id, label, maker",
    ),
    Case(
        "train: train.devices=0",
        lambda ws: _one_epoch(ws, "devices0", "train.devices=0"),
        "train.devices must be a count >= 1, -1 (all) or auto, got 0",
    ),
    Case(
        "prepare: a 16-bit PNG and a float TIFF are read at their real bit depth",
        lambda ws: ["prepare", str(_deep_images(ws)), "--size", "8", "--workers", "1"],
        "prepared 2 images at 8 px",
        code=0,
        check=_prepared_means,
    ),
    Case(
        "prepare: a float TIFF of values no 8-bit scale fits is refused by name",
        lambda ws: [
            "prepare",
            str(_deep_images(ws, (-3.0, 700.0))),
            "--size",
            "8",
            "--workers",
            "1",
        ],
        "1 unreadable image(s), e.g. row 1: ",
    ),
    Case(
        "train: output.name escapes output.dir",
        lambda ws: ["train", "--config", str(ws.config()), "output.name=../../x"],
        "output.name='../../x' must be a plain name",
    ),
    Case(
        "train: non-empty run directory",
        _non_empty,
        "is not empty (it holds notes.txt); continue it with `clinfonce train --resume",
    ),
    Case(
        "evaluate --which best: the monitor was off",
        lambda ws: ["evaluate", "--run", str(ws.run()), "--which", "best"],
        "best.ckpt is only written when the kNN monitor ran",
    ),
    Case("embed: stale checkpoint of another run", _stale, "the checkpoint is stale"),
    Case(
        "train --resume: the run is being trained by another process",
        _holder.argv,
        "is in use: process ",
        check=_holder.release,
    ),
    Case(
        "train --resume: optim.lr edited in config.yaml (once silently ignored)",
        lambda ws: _edited_config(ws, "lr-edited", "lr: 0.05", "lr: 0.1"),
        "the config changed since the run started: optim.lr 0.05 -> 0.1",
    ),
    Case(
        "train --resume: train.batch_size edited in config.yaml (once silently used)",
        lambda ws: _edited_config(ws, "batch-edited", "batch_size: 16", "batch_size: 8"),
        "train.batch_size 16 -> 8;",
    ),
    Case(
        "train --resume: train.epochs raised in config.yaml is applied, and said",
        lambda ws: _edited_config(ws, "epochs-edited", "\n  epochs: 1\n", "\n  epochs: 2\n"),
        "resuming with changed settings (applied): train.epochs 1 -> 2",
        code=0,
    ),
    Case(
        "train --resume: the table lost rows since the run started",
        _table_lost_rows,
        "the training data changed since the run started (24 rows, ids",
    ),
    Case(
        "train --resume: last.ckpt copied from another run",
        _foreign_last,
        "holds run 0123456789ab: copied from another run?",
    ),
    Case(
        "train: batch of one (warning)",
        lambda ws: [
            "train",
            "--config",
            str(
                ws.config(
                    "batch1", train={"epochs": 1, "batch_size": 1}, monitor={"enabled": False}
                )
            ),
        ],
        "warning: train.batch_size=1: each step sees one sample",
        code=0,
    ),
    Case(
        "train: one cluster (warning)",
        lambda ws: _one_epoch(
            ws, "one", "clusters.builder=column", "clusters.params={column: split}"
        ),
        "warning: the cluster assignment puts all 58 training samples in 1 cluster",
        code=0,
    ),
    Case(
        "train: SimCLR with one view (warning)",
        _simclr_one_view,
        "warning: train.views=1: the simclr term's positives are the other views",
        code=0,
    ),
    Case(
        "train: clusters too fine (warning)",
        lambda ws: _one_epoch(ws, "fine", "clusters.builder=instance", "clusters.params={}"),
        "warning: clusters too fine for the batch: 58 clusters over 58 samples leave about 100%",
        code=0,
    ),
]


@dataclass
class Verdict:
    """What a case printed and whether the message was the clear one expected."""

    case: Case
    clear: bool
    code: int
    stderr: str


def run_case(case: Case, ws: Workspace) -> Verdict:
    argv = case.argv(ws)
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except BaseException as exc:  # a traceback is what the suite exists to catch
            err.write(f"Traceback: {type(exc).__name__}: {exc}\n")
            code = -1
    text = err.getvalue()
    error_lines = [line for line in text.splitlines() if ": error: " in line]
    damage = case.check(ws) if case.check is not None else ""
    clear = (
        code == case.code
        and case.expect in text + out.getvalue()
        and "Traceback" not in text
        and len(error_lines) == (1 if case.code else 0)
        and not damage
    )
    return Verdict(case, clear, code, text + (f"\nafter the command: {damage}" if damage else ""))
