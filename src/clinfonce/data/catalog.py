"""The built-in sources: importing this module registers them (the package does, once).

Adding a built-in source means writing its loader with
:func:`clinfonce.data.sources.register_source` and importing its module here.
"""

from clinfonce.data import custom_sources, fashion_mnist, synthetic  # noqa: F401
from clinfonce.data.official import sources  # noqa: F401
