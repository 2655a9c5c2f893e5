"""Learning-rate schedule: linear warm-up then cosine decay (docs/method.md §4)."""

from __future__ import annotations

import math


def warmup_cosine(step: int, total_steps: int, warmup_steps: int, final_ratio: float) -> float:
    """Multiplier of the peak learning rate at optimisation step ``step`` (0-based).

    Rises linearly to 1 over ``warmup_steps`` (``(step + 1) / warmup_steps``, so the first
    step is not wasted at zero), then follows a half cosine from 1 down to ``final_ratio``,
    reached at the last step.

    Examples:
        >>> warmup_cosine(0, 100, 10, 1e-3), warmup_cosine(9, 100, 10, 1e-3)
        (0.1, 1.0)
        >>> round(warmup_cosine(99, 100, 10, 1e-3), 6)
        0.001
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - 1 - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
