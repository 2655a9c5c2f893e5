"""clinfonce: weakly-supervised contrastive learning with auxiliary-information clusters.

Two stages: :mod:`clinfonce.clusters` turns auxiliary information into one cluster id per
sample, and :mod:`clinfonce.training` trains an encoder with the Cl-InfoNCE loss
(:mod:`clinfonce.losses`) on those clusters.
"""

__version__ = "0.1.0"
