"""Cluster quality as printed by the clusters commands."""

from __future__ import annotations

from clinfonce.clusters.suggest import LOW_INFORMATION_RATIO


def metric_lines(metrics: dict[str, float]) -> list[str]:
    rows = [
        ("samples", f"{metrics['num_samples']:.0f}"),
        ("clusters K", f"{metrics['num_clusters']:.0f}"),
        ("H(Z)", f"{metrics['h_z']:.4f} bits"),
        (
            "cluster sizes",
            f"min {metrics['size_min']:.0f}, median {metrics['size_median']:g}, "
            f"max {metrics['size_max']:.0f}; singletons {metrics['singleton_fraction']:.1%} "
            f"of clusters",
        ),
    ]
    if "h_t" in metrics:
        rows += [
            ("H(T)", f"{metrics['h_t']:.4f} bits"),
            ("H(Z|T)", f"{metrics['h_z_given_t']:.4f} bits (lower: labels split less)"),
            ("H(T|Z)", f"{metrics['h_t_given_z']:.4f} bits"),
            ("I(Z;T)", f"{metrics['i_zt']:.4f} bits (higher: clusters tell more)"),
            (
                "I(Z;T)/H(T)",
                f"{metrics['i_zt_over_h_t']:.3f}"
                if metrics["h_t"] > 0
                else "undefined: the label has one value (H(T) = 0), nothing for clusters to tell",
            ),
            ("NMI / AMI", f"{metrics['nmi']:.4f} / {metrics.get('ami', float('nan')):.4f}"),
        ]
    return [f"  {name:<14} {value}" for name, value in rows]


def low_information_note(where: str, subject: str) -> str:
    """The advice printed for clusters with I(Z;T)/H(T) below LOW_INFORMATION_RATIO: pure
    Cl-InfoNCE pulls together samples the labels tell apart, and fell below SimCLR there."""
    return (
        f"note: {where} < {LOW_INFORMATION_RATIO}: {subject} little of the label information; "
        "a combined Cl-InfoNCE + InfoNCE objective is the safer choice "
        "(method.name=clinfonce-plus-simclr, what the default method.name=auto picks): pure "
        "method.name=clinfonce can fall below SimCLR on such clusters, or beat it; compare both"
    )
