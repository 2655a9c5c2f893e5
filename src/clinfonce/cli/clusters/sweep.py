"""``clusters sweep``: cluster quality over a range of granularities."""

from __future__ import annotations

import argparse
import fnmatch
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from clinfonce.cli.clusters.inputs import builder_inputs, cap_k
from clinfonce.cli.clusters.options import comma_list
from clinfonce.cli.clusters.report import low_information_note
from clinfonce.clusters.suggest import LOW_INFORMATION_RATIO

SWEEP_EPILOG = """examples:
  # k = 1..14 ranked attributes, against the labels in 'label'
  clinfonce clusters sweep meta.csv --builder attributes --values 1:14 --out-dir sweep/
  # the official UT-Zappos50K clusters (precomputed columns), as in the paper
  clinfonce clusters sweep UT-zappos50K/rank_H/meta_data_train.csv --builder column \\
      --values 'label_gran_*' --label-column class --out-dir sweep-zappos/
  # K-means over several K
  clinfonce clusters sweep meta.csv --builder kmeans --columns f1,f2,f3 \\
      --values 10,100,1000 --out-dir sweep-kmeans/

Writes sweep.csv, sweep.md and sweep.png (I(Z;T) and H(Z|T) against K) to --out-dir.
Values: a comma list (3,5,7), an inclusive range (1:14 or 1:14:2), or for the column
builder column names and shell patterns (label_gran_*, expanded in natural order).
"""


#: What ``clusters sweep`` writes into ``--out-dir``.
SWEEP_FILES: tuple[str, ...] = ("sweep.csv", "sweep.md", "sweep.png")


def natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def parse_values(text: str, builder: str, columns: Sequence[str]) -> list[Any]:
    """Granularity values from ``--values``: ints, inclusive ranges, or column names.

    Examples:
        >>> parse_values("1:3,7", "attributes", [])
        [1, 2, 3, 7]
        >>> parse_values("g_*", "column", ["g_10", "x", "g_3"])
        ['g_3', 'g_10']
    """
    values: list[Any] = []
    for token in comma_list(text):
        if builder == "column":
            if any(ch in token for ch in "*?["):
                matched = sorted(fnmatch.filter(columns, token), key=natural_key)
                if not matched:
                    raise ValueError(f"--values: no column matches {token!r}")
                values += matched
            else:
                values.append(token)
            continue
        ranged = re.fullmatch(r"(\d+):(\d+)(?::(\d+))?", token)
        if ranged:
            start, stop, step = int(ranged[1]), int(ranged[2]), int(ranged[3] or 1)
            if step < 1 or stop < start:
                raise ValueError(f"--values: bad range {token!r} (use start:stop[:step])")
            values += list(range(start, stop + 1, step))
        elif re.fullmatch(r"\d+", token):
            values.append(int(token))
        else:
            raise ValueError(f"--values: {token!r} is not an integer or a start:stop range")
    if not values:
        raise ValueError("--values is empty")
    return values


def run_sweep(args: argparse.Namespace) -> int:
    from clinfonce.clusters.sweep import plot_sweep, sweep_metrics, to_markdown
    from clinfonce.outputs import check_output_folder, existing_paths

    prep = builder_inputs(args, need_label=True)
    if args.values is None or args.out_dir is None:
        raise ValueError("the sweep needs --values and --out-dir")
    assert prep.label_column is not None
    values = parse_values(args.values, prep.builder, [str(c) for c in prep.table.columns])
    from clinfonce.clusters.builders import get_builder

    if get_builder(prep.builder).granularity(prep.params) == "k":
        values = cap_k(values, prep.table, prep.builder, prep.params)
    out = Path(args.out_dir)
    check_output_folder(out, SWEEP_FILES, existing_paths([args.table, args.config]), "--out-dir")
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"sweeping {prep.builder} over {len(values)} values on {len(prep.table)} rows of "
        f"{prep.path} (labels: {prep.label_column!r})",
        flush=True,
    )

    def progress(row: dict[str, Any]) -> None:
        first = next(iter(row))
        print(
            f"  {first}={row[first]}: K={row['num_clusters']}, H(Z|T)={row['h_z_given_t']:.4f}, "
            f"I(Z;T)={row['i_zt']:.4f}",
            flush=True,
        )

    frame = sweep_metrics(
        prep.table,
        prep.builder,
        values,
        labels=prep.table[prep.label_column],
        ami=not args.no_ami,
        progress=progress,
        **prep.params,
    )
    frame.to_csv(out / "sweep.csv", index=False)
    (out / "sweep.md").write_text(to_markdown(frame))
    plot_sweep(frame, out / "sweep.png", title=f"{prep.path.name}: {prep.builder} sweep")
    with pd.option_context("display.width", 160, "display.max_columns", None):
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    param = frame.columns[0]
    low = frame.loc[frame["i_zt_over_h_t"] < LOW_INFORMATION_RATIO, param].tolist()
    if low:
        values_text = ", ".join(map(str, low))
        print(low_information_note(f"I(Z;T)/H(T) at {param} = {values_text}", "they carry"))
    print(f"wrote {out / 'sweep.csv'}, {out / 'sweep.md'}, {out / 'sweep.png'}")
    sys.stdout.flush()
    return 0
