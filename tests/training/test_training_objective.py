"""Learning-rate schedule values and the weighted objective against direct loss calls."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from clinfonce.losses import cl_infonce_loss
from clinfonce.training.config import MethodConfig
from clinfonce.training.methods.contrastive import method_terms
from clinfonce.training.objective import Objective, ObjectiveTerm
from clinfonce.training.schedule import warmup_cosine


def test_warmup_cosine_analytic_points() -> None:
    total, warm, final = 100, 10, 1e-3
    assert warmup_cosine(0, total, warm, final) == pytest.approx(0.1)
    assert warmup_cosine(4, total, warm, final) == pytest.approx(0.5)
    assert warmup_cosine(10, total, warm, final) == pytest.approx(1.0)
    mid = 10 + (total - 1 - 10) / 2
    assert warmup_cosine(int(mid), total, warm, final) == pytest.approx(
        final + (1 - final) * 0.5 * (1 + math.cos(math.pi * int(mid - 10) / 89))
    )
    assert warmup_cosine(99, total, warm, final) == pytest.approx(final)
    values = [warmup_cosine(s, total, warm, final) for s in range(10, 100)]
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert warmup_cosine(0, 5, 0, 0.0) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("name", "ids"), [("simclr", "instance"), ("supcon", "label"), ("clinfonce", "cluster")]
)
def test_methods_differ_only_in_ids(name: str, ids: str) -> None:
    (term,) = method_terms(MethodConfig(name=name, temperature=0.3))
    assert term.ids == ids and term.temperature == 0.3 and term.weight == 1.0


def test_weighted_sum_of_terms() -> None:
    torch.manual_seed(0)
    z = torch.randn(6, 2, 5, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    terms = [
        ObjectiveTerm("simclr", "instance", weight=0.5, temperature=0.2),
        ObjectiveTerm("supcon", "label", weight=2.0, temperature=0.1),
    ]
    total, parts = Objective(terms)({"main": z}, {"instance": None, "label": labels})
    simclr = cl_infonce_loss(z, None, temperature=0.2)
    supcon = cl_infonce_loss(z, labels, temperature=0.1)
    torch.testing.assert_close(parts["simclr"], simclr)
    torch.testing.assert_close(total, 0.5 * simclr + 2.0 * supcon)


def test_objective_rejects_duplicates_and_empty() -> None:
    with pytest.raises(ValueError, match="unique"):
        Objective([ObjectiveTerm("a", "instance"), ObjectiveTerm("a", "label")])
    with pytest.raises(ValueError, match="at least one"):
        Objective([])
