"""Contrastive losses: Cl-InfoNCE (clusters as positives), with SimCLR and SupCon as special cases.

Examples:
    >>> import torch
    >>> from clinfonce.losses import ClInfoNCELoss
    >>> loss_fn = ClInfoNCELoss(temperature=0.1)
    >>> loss = loss_fn(torch.randn(4, 2, 8), cluster_ids=torch.tensor([0, 0, 1, 1]))
"""

from clinfonce.losses.cl_infonce import ClInfoNCELoss, cl_infonce_loss, cl_infonce_loss_with_count

__all__ = ["ClInfoNCELoss", "cl_infonce_loss", "cl_infonce_loss_with_count"]
