"""One module per method family (:mod:`~clinfonce.training.methods.contrastive`, ...), listed in
:mod:`clinfonce.training.methods.registry`."""
