"""The table and builder parameters a ``clusters build``/``sweep`` command line asks for."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clinfonce.cli.clusters.config_file import apply_config_file
from clinfonce.cli.clusters.options import BUILDER_OPTIONS, LABEL_DEFAULTS
from clinfonce.data.splits import split_mask


@dataclass
class BuilderInputs:
    table: pd.DataFrame
    path: Path
    builder: str
    params: dict[str, Any]
    label_column: str | None


def builder_inputs(args: argparse.Namespace, *, need_label: bool) -> BuilderInputs:
    from clinfonce.clusters import read_table
    from clinfonce.clusters.attributes import RESERVED_COLUMNS as RESERVED
    from clinfonce.clusters.builders import get_builder
    from clinfonce.clusters.tables import require_columns

    apply_config_file(args)
    if args.table is None:
        raise ValueError("no table given: pass TABLE or set 'table' in --config")
    if args.builder is None:
        raise ValueError("no builder given: pass --builder NAME (see --help for the list)")
    spec = get_builder(args.builder)
    path = Path(args.table)
    table = read_table(path, args.encoding or "utf-8")
    if args.split is not None:
        column = args.split_column or "split"
        keep = split_mask(table, column, str(args.split), where=str(path), option="--split-column")
        table = table[keep].reset_index(drop=True)
    label = args.label_column
    if label is None:
        label = next((c for c in LABEL_DEFAULTS if c in table.columns), None)
    elif label not in table.columns:
        require_columns(table, [label], "--label-column")
    if label is not None and table[label].isna().any():
        rows = np.flatnonzero(table[label].isna().to_numpy())
        raise ValueError(
            f"label column {label!r} has {len(rows)} missing value(s) (rows "
            f"{', '.join(map(str, rows[:5]))}); fill or drop those rows, or pick another "
            f"--label-column"
        )
    if need_label and label is None:
        raise ValueError(
            "the sweep needs labels: pass --label-column (available columns: "
            f"{', '.join(map(str, table.columns))})"
        )
    accepted = spec.parameters()
    params: dict[str, Any] = {}
    for option in BUILDER_OPTIONS:
        value = getattr(args, option.dest)
        if value is None or option.param is None:
            continue
        if option.param not in accepted:
            raise ValueError(
                f"{option.flag} does not apply to builder {args.builder!r}; its parameters: "
                f"{', '.join(accepted) or '(none)'}"
            )
        if option.param in params:
            raise ValueError(f"{option.flag} sets {option.param!r} a second time; give one")
        params[option.param] = value
    if "label_column" in accepted:
        if label is None:
            raise ValueError(f"builder {args.builder!r} needs --label-column")
        params["label_column"] = label
    # Never use the label as an attribute (reserved names are skipped anyway).
    uses_label = label is not None and label not in RESERVED
    if args.builder == "attributes" and "columns" not in params and uses_label:
        params["exclude"] = sorted({*params.get("exclude", []), label})
    if isinstance(params.get("k"), int):
        params["k"] = cap_k([params["k"]], table, args.builder, params)[0]
    return BuilderInputs(table, path, args.builder, params, label)


def cap_k(
    values: Sequence[Any], table: pd.DataFrame, builder: str, params: dict[str, Any]
) -> list[Any]:
    """Numbers of attributes (or tags) to combine, capped at how many the table has, with a
    note: ``--k 10`` on a table with two attribute columns means "all of them"."""
    if builder == "attributes":
        from clinfonce.clusters.attributes import candidate_columns

        what = "attribute columns"
        available = len(candidate_columns(table, params.get("columns"), params.get("exclude", ())))
    elif builder == "tags" and "column" in params:
        from clinfonce.clusters.tags import tag_matrix

        what = f"tags in {params['column']!r}"
        fmt, sep = params.get("tag_format", "auto"), params.get("sep", "|")
        available = len(tag_matrix(table, params["column"], fmt=fmt, sep=sep).vocabulary)
    else:
        return list(values)
    over = [v for v in values if isinstance(v, int) and v > available]
    if not over:
        return list(values)
    print(
        f"note: k = {', '.join(map(str, over))} capped at {available}, the number of {what}",
        flush=True,
    )
    return list(dict.fromkeys(min(v, available) if isinstance(v, int) else v for v in values))
