"""Which auxiliary information to cluster by: rank candidate sources before training.

Each candidate (a column, the joint value of the top-k attributes, a hierarchy level, a
set of top tags) becomes cluster ids over the table's rows and is judged in two steps:

1. Without labels: K, the cluster sizes and the expected number of *in-batch positives*
   per anchor at the training batch size. With none the Cl-InfoNCE loss has no positive
   pairs between samples and degenerates to SimCLR (too fine); when nearly the whole batch
   is positive the loss can no longer tell samples apart (too coarse).
2. Where some rows carry labels: I(Z;T), H(Z|T) and I(Z;T)/H(T) on those rows, corrected
   for the small-sample bias (the mean over label permutations is subtracted), with
   bootstrap intervals. A permutation test marks sources that tell nothing about the
   labels (a collector, a batch number): they rank last, since pure Cl-InfoNCE on such
   clusters pulls apart what the labels share.

Candidates are scored by ``(I(Z;T) - H(Z|T)) / H(T)``: information about the labels, minus
how much the clusters split the label classes (docs/method.md explains the trade-off).

Without any label, an embedding of the rows (from an instance-discrimination model such as
SimCLR, or even an untrained encoder) gives a label-free signal: how much more often a
sample's nearest neighbours share its cluster than chance (:func:`neighbour_lift`). On
Fashion-MNIST it put the label, level-2 and level-1 groups at 5.4, 3.2 and 1.8 and random
columns at 1.0 (docs/method.md §10).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from clinfonce.clusters._codes import encode_labels
from clinfonce.clusters.assess import (
    INFORMATION_NOTE,
    MIN_LIFT,
    MIN_POSITIVES,
    Assessment,
    Candidate,
    assess,
    overlap_positives,
    recodes_labels,
)
from clinfonce.clusters.builders import run_builder
from clinfonce.clusters.tags import tag_matrix
from clinfonce.losses.positives import Overlap

#: I(Z;T)/H(T) below this: clusters much coarser than (or unrelated to) the labels, where
#: pure Cl-InfoNCE can fall below SimCLR; the combined objective is the safer choice.
LOW_INFORMATION_RATIO = 0.5
#: Joints of the top-k attributes are tried up to this k.
MAX_JOINT = 4
#: Top tags tried for a tag column.
TAG_KS: tuple[int, ...] = (1, 2, 4, 8)


@dataclass
class Suggestion:
    """The ranked candidates and the recommendation.

    Attributes:
        ranked: best first.
        batch_size: the batch size the positives were counted at.
        method: recommended ``method.name``: ``clinfonce`` or ``clinfonce-plus-simclr``.
        reason: why that source and that objective, in a sentence or two.
        skipped: columns that could not be candidates, with the reason.
        overlap: with a tag column, the positives an ``overlap`` term would give and
            whether it or tag-set clusters are recommended (docs/method.md §11).
    """

    ranked: list[Assessment]
    batch_size: int
    method: str
    reason: str
    skipped: dict[str, str] = field(default_factory=dict)
    overlap: str | None = None

    @property
    def best(self) -> Assessment:
        return self.ranked[0]


def _sort_key(item: Assessment) -> tuple[int, float, float]:
    # Informative and usable first, then informative but badly sized, then the rest, then
    # the label itself in disguise (never weak supervision). Without labels, an embedding's
    # neighbour lift stands in for the information, else nothing does.
    informative = item.informative
    if informative is None and np.isfinite(item.lift):
        informative = item.lift > MIN_LIFT
    group = (0 if item.usable else 1) if informative is not False else 2
    if item.label_copy:
        group = 3
    score = item.score if np.isfinite(item.score) else 0.0
    if item.informative is None and np.isfinite(item.lift):
        score = item.lift
    # Ties (no labels, no embedding): the source that distinguishes most (highest K) first.
    return group, -score, -np.log2(max(item.k, 1))


def candidates_from_table(
    table: pd.DataFrame,
    exclude: Sequence[str],
    *,
    columns: Sequence[str] | None = None,
    hierarchy: tuple[str, str, Sequence[int] | None] | None = None,
    tags: str | None = None,
    labels: np.ndarray | None = None,
) -> tuple[list[Candidate], dict[str, str]]:
    """Candidates of a table: each attribute column, joints of the top-k attributes (by
    entropy, k up to :data:`MAX_JOINT`), hierarchy levels and top-k tag sets.

    Args:
        table: one row per sample.
        exclude: columns that are not auxiliary information (path, id, label, split).
        columns: the attribute columns to consider (default: all others). A column of tag
            sets among them (too many distinct values to be an attribute, but fewer tags)
            becomes a tag candidate, as ``tags`` does.
        hierarchy: ``(parents file, leaf column, levels)`` for hierarchy candidates;
            levels ``None``: every level above the leaves (the leaf level is the leaf
            column itself, usually the label).
        tags: a tag column.
        labels: label codes per row (``-1``: unknown); a column that recodes them stays a
            candidate (to be flagged) but never joins a joint of attributes.

    Returns:
        The candidates and, for columns that could not be one, why.
    """
    from clinfonce.clusters.attributes import attribute_sweep
    from clinfonce.clusters.tags import looks_like_tags

    skipped: dict[str, str] = {}
    found: list[Candidate] = []
    names = list(columns) if columns is not None else [str(c) for c in table.columns]
    usable_columns = []
    tag_columns = [tags] if tags is not None else []
    for name in names:
        if name in exclude or name == tags:
            continue
        clusters = {"builder": "attributes", "params": {"columns": [name]}}
        try:
            ids = run_builder(table, "attributes", columns=[name]).ids
        except ValueError as exc:
            if looks_like_tags(table[name]):
                tag_columns.append(name)
            else:
                text = table[name].dtype == object
                hint = "; tags would be found if written as '#a #b', 'a|b' or a JSON list"
                skipped[name] = str(exc).split(";")[0] + (hint if text else "")
            continue
        if labels is None or not recodes_labels(ids, labels):
            usable_columns.append(name)
        found.append(Candidate(name, clusters, ids))
    if len(usable_columns) > 1:
        ks = list(range(2, min(MAX_JOINT, len(usable_columns)) + 1))
        for _, ids, details in attribute_sweep(table, ks, columns=usable_columns):
            used = list(details["attributes"])
            clusters = {"builder": "attributes", "params": {"columns": used}}
            found.append(Candidate("+".join(used), clusters, ids))
    if hierarchy is not None:
        found += _hierarchy_candidates(table, *hierarchy, skipped)
    for column in tag_columns:
        for k in TAG_KS:
            params = {"column": column, "k": k}
            try:
                ids = run_builder(table, "tags", **params).ids
            except ValueError:
                break  # fewer tags than k: the larger k fail too
            found.append(
                Candidate(f"{column} top-{k} tags", {"builder": "tags", "params": params}, ids)
            )
    if not found:
        listing = "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "none left"
        raise ValueError(
            f"no auxiliary column to cluster by (columns other than {', '.join(exclude)}: "
            f"{listing}); add attribute columns, or pass --hierarchy or --tags"
        )
    return found, skipped


def _hierarchy_candidates(
    table: pd.DataFrame,
    parents: str,
    leaf: str,
    levels: Sequence[int] | None,
    skipped: dict[str, str],
) -> list[Candidate]:
    from clinfonce.clusters.hierarchy import hierarchy_depth

    chosen = levels
    if chosen is None:
        chosen = range(1, hierarchy_depth(table, label_column=leaf, parents=parents) + 1)
    found = []
    leaves = table[leaf].nunique()
    for level in chosen:
        params = {"label_column": leaf, "parents": parents, "level": level}
        ids = run_builder(table, "hierarchy", **params).ids
        name = f"hierarchy level {level}"
        if levels is None and len(np.unique(ids)) == leaves:
            skipped[name] = f"the leaf column {leaf!r} itself (one cluster per value)"
            continue
        found.append(Candidate(name, {"builder": "hierarchy", "params": params}, ids))
    return found


def suggest(
    table: pd.DataFrame,
    exclude: Sequence[str],
    *,
    label_column: str | None = None,
    batch_size: int = 256,
    columns: Sequence[str] | None = None,
    hierarchy: tuple[str, str, Sequence[int] | None] | None = None,
    tags: str | None = None,
    embeddings: np.ndarray | None = None,
    seed: int = 0,
    per_cluster: int | Literal["auto"] = 0,
    memory: int = 0,
) -> Suggestion:
    """Rank the candidate sources of ``table`` and recommend one source and objective.

    Args:
        table: the rows training will use (one per sample).
        exclude: columns that are not auxiliary information.
        label_column: labels, where known (missing values are rows without a label).
        batch_size: the training batch size (capped at the number of rows).
        columns: attribute columns to consider (default: all but ``exclude``).
        hierarchy: ``(parents file, leaf column, levels)``; levels ``None``: every level
            above the leaves.
        tags: a tag column (tag columns among ``columns`` are found without it).
        embeddings: one row per table row (e.g. from ``clinfonce embed``), for the
            label-free neighbour lift.
        seed: seeds the permutations and bootstrap resamples.
        per_cluster: cluster-balanced batches of this many cluster mates
            (``train.per_cluster``), counted in the positives per anchor; ``"auto"``: the
            batches ``clinfonce run`` trains each candidate with (balanced only for
            candidates too fine for a random batch).
        memory: memory size (``method.memory.size``), counted in the positives per anchor.

    Examples:
        >>> t = pd.DataFrame({"group": [0, 0, 1, 1] * 25, "batch": [0, 1, 2, 3, 4] * 20,
        ...                   "code": ["b", "a", "d", "c"] * 25, "label": [0, 1, 2, 3] * 25})
        >>> s = suggest(t, ["label"], label_column="label", batch_size=32)
        >>> [a.candidate.name for a in s.ranked], s.method
        (['group', 'batch+group', 'batch', 'code'], 'clinfonce-plus-simclr')
        >>> s.ranked[-1].why
        'the label itself (recoded): training on it is SupCon'
    """
    batch = min(batch_size, len(table))
    if embeddings is not None and len(embeddings) != len(table):
        raise ValueError(
            f"the embeddings have {len(embeddings)} rows but the table {len(table)}; give one "
            "embedding per table row, in table order"
        )
    labels = None
    if label_column is not None:
        known = table[label_column].notna().to_numpy()
        labels = np.full(len(table), -1, dtype=np.int64)
        if known.any():
            labels[known] = encode_labels(table.loc[known, label_column]).codes
    found, skipped = candidates_from_table(
        table, exclude, columns=columns, hierarchy=hierarchy, tags=tags, labels=labels
    )
    ranked = sorted(
        (
            assess(
                c,
                batch,
                labels,
                embeddings=embeddings,
                seed=seed,
                per_cluster=per_cluster,
                memory=memory,
            )
            for c in found
        ),
        key=_sort_key,
    )
    method, reason = _recommend(ranked[0], labels is not None and bool((labels >= 0).any()))
    overlap = None if tags is None else _overlap_advice(table, tags, ranked, batch, memory, seed)
    return Suggestion(ranked, batch, method, reason, skipped, overlap)


def _overlap_advice(
    table: pd.DataFrame,
    column: str,
    ranked: Sequence[Assessment],
    batch: int,
    memory: int,
    seed: int,
) -> str:
    """Overlap positives on the tags beside the best tag-set clusters, and which to use:
    tag-set clusters while one is well sized (on Fashion-MNIST's made tags the best tag sets
    beat overlap positives by 0.5 to 1 linear points, docs/results.md), else overlap
    positives with Jaccard weights (the better of the two rules there)."""
    matrix = tag_matrix(table, column)
    presence = matrix.dense()
    figures = {
        kind: overlap_positives(presence, batch, Overlap(kind), memory=memory, seed=seed)
        for kind in ("any", "jaccard")
    }
    text = (
        f"overlap positives on {column!r} ({len(matrix.vocabulary)} tags): "
        f"{figures['any']:.1f} positives per anchor with any shared tag, a total weight of "
        f"{figures['jaccard']:.1f} with Jaccard weights"
    )
    tag_sets = [a for a in ranked if a.candidate.clusters.get("builder") == "tags" and a.usable]
    if tag_sets:
        return f"{text}. Tag-set clusters ({tag_sets[0].candidate.name}) are well sized: use them."
    if figures["jaccard"] >= MIN_POSITIVES:
        return (
            f"{text}. Recommended over tag-set clusters (none is well sized): `--overlap jaccard`."
        )
    return (
        f"{text}. No tag-set clustering is well sized, and too few tags are shared for "
        "overlap positives."
    )


#: The rule for the objective, as the start summary of ``clinfonce run`` states it.
METHOD_RULE = (
    "pure Cl-InfoNCE when labelled training rows show the clusters carry at least half the "
    f"label information (lower 90% bound of I(Z;T)/H(T) >= {LOW_INFORMATION_RATIO}) and are "
    "well sized, else Cl-InfoNCE + InfoNCE (measured: the combined objective never fell below "
    "SimCLR; pure Cl-InfoNCE did on coarse or useless clusters)"
)


def default_method(best: Assessment, has_labels: bool) -> tuple[str, str]:
    """The objective for clusters judged as ``best`` and why: one rule for every source,
    whether ``auto`` picked it or it was named (:data:`METHOD_RULE`).

    Returns:
        ``clinfonce`` or ``clinfonce-plus-simclr``, and the reason in a sentence or two.
    """
    name = best.candidate.name
    if not has_labels and np.isfinite(best.lift):
        return "clinfonce-plus-simclr", (
            f"{name}: {best.why}; its clusters agree most with the embedding's neighbourhoods "
            f"(lift {best.lift:.2f}, 1 = chance). Without labels the combined objective "
            "(Cl-InfoNCE + InfoNCE) is the safe choice."
        )
    if not has_labels:
        return "clinfonce-plus-simclr", (
            f"{name}: {best.why}, K = {best.k}. Without labels nothing tells whether a source "
            "is informative, so the combined objective (Cl-InfoNCE + InfoNCE) is the safe choice."
        )
    if best.label_copy:
        return "clinfonce", (
            f"{name}: {best.information_text()}. These clusters are the labels under other "
            "names, so this is supervised contrastive learning (SupCon), not weak supervision."
        )
    text = f"{name}: {best.information_text()}, {best.why}."
    if not best.informative:
        return "clinfonce-plus-simclr", (
            f"{text} No measurable information about the labels (permutation p = "
            f"{best.p_value:.2f}); the combined objective keeps SimCLR's instance term, so it "
            "stays near SimCLR."
        )
    if best.usable and best.ratio_low >= LOW_INFORMATION_RATIO:
        return "clinfonce", f"{text} Informative enough for pure Cl-InfoNCE."
    return "clinfonce-plus-simclr", (
        f"{text} Not clearly informative or well sized, so the combined objective "
        "(Cl-InfoNCE + InfoNCE), which stays near SimCLR when the clusters mislead."
    )


def _recommend(best: Assessment, has_labels: bool) -> tuple[str, str]:
    if best.label_copy:
        return "supcon", (
            f"every candidate is the label itself (recoded), {best.candidate.name} included: "
            "there is no weak supervision to use; train SupCon (method.name=supcon) or give "
            "another source of auxiliary information."
        )
    if has_labels and not best.informative:
        method, reason = default_method(best, has_labels)
        return method, f"no source tells measurably about the labels; the least bad is {reason}"
    return default_method(best, has_labels)


def _cell(text: str) -> str:
    """Text from the user's table in a Markdown table cell: shown as written, never rendered
    as HTML, and a ``|`` in it does not split the cell.

    Examples:
        >>> print(_cell("<b>size|fit</b>"))
        &lt;b&gt;size\\|fit&lt;/b&gt;
    """
    return html.escape(text, quote=False).replace("|", "\\|")


def suggestion_markdown(suggestion: Suggestion) -> str:
    """The ranking as a Markdown table, then the recommendation."""
    with_labels = any(a.informative is not None for a in suggestion.ranked)
    with_lift = any(np.isfinite(a.lift) for a in suggestion.ranked)
    header = ["rank", "source", "K", "median size", "largest", "positives/anchor"]
    if with_lift:
        header.append("kNN lift")
    if with_labels:
        header += ["I(Z;T)", "H(Z|T)", "I(Z;T)/H(T) [90% CI]", "score"]
    header.append("verdict")
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
    for rank, a in enumerate(suggestion.ranked, 1):
        row = [
            str(rank),
            _cell(a.candidate.name),
            str(a.k),
            f"{a.size_median:g}",
            f"{a.size_max_share:.0%}",
            f"{a.positives:.1f}" + (f" (groups of {a.per_cluster})" if a.per_cluster > 1 else ""),
        ]
        if with_lift:
            row.append(f"{a.lift:.2f}")
        if with_labels:
            row += [
                f"{a.i_zt:.2f}",
                f"{a.h_z_given_t:.2f}",
                f"{a.ratio:.2f} [{a.ratio_low:.2f}, {a.ratio_high:.2f}]",
                f"{a.score:+.2f}",
            ]
        row.append(_cell(a.why))
        lines.append("| " + " | ".join(row) + " |")
    if with_labels:
        labelled = max(a.labelled for a in suggestion.ranked)
        lines += ["", f"Information in bits over {labelled} labelled rows, {INFORMATION_NOTE}."]
    if suggestion.overlap:
        lines += ["", suggestion.overlap]
    return "\n".join(lines) + "\n"
