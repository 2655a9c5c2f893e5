"""The demo's experiment: four runs at one seed, evaluated on the images they trained on."""

from __future__ import annotations

from clinfonce.experiments.demo import demo_experiment, plan
from clinfonce.experiments.grid import expand_grid


def test_demo_is_an_experiment_of_four_runs() -> None:
    demo = plan("synthetic-attributes", quick=True)
    spec = demo_experiment(demo, seed=3, quick=True)
    cells = expand_grid(spec)
    assert [(c.run.name, c.seed) for c in cells] == [
        ("random-init", 3),
        ("simclr", 3),
        ("clinfonce", 3),
        ("supcon", 3),
    ]
    assert [c.run.untrained for c in cells] == [True, False, False, False]
    methods = [c.config.method.name for c in cells]
    assert methods == ["simclr", "simclr", "clinfonce", "supcon"]
    # Only Cl-InfoNCE trains on the clusters; the others have none.
    assert [c.config.clusters.defined for c in cells] == [False, False, True, False]
    assert not cells[1].config.monitor.enabled  # quick: no online monitor
    settings = spec.evaluation
    assert (settings.knn_ks, settings.cs, settings.topk) == ((20,), (1.0,), (1,))
    assert not settings.nmi
    # The probes see the seeded subset the runs trained on, drawn with the same seed.
    assert settings.max_train == cells[1].config.data.train_subset == 1024
    assert (settings.seed, settings.max_test) == (3, 1000)
