"""The one stride that derives independent seeds from a run's seed.

Every per-epoch or per-step random stream (data order, augmentation, K-means) is seeded
``seed * SEED_STRIDE + counter``: a prime larger than any counter, so two runs with different
seeds never share a stream, and a resumed run recomputes exactly the seeds it would have used.
"""

#: Multiplier of the run's seed in every derived seed.
SEED_STRIDE = 1_000_003
