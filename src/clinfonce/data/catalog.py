"""The built-in sources: importing this module registers them (the package does, once).

Adding a built-in source means writing its loader with
:func:`clinfonce.data.sources.register_source` and importing its module here.
"""

import clinfonce.data.custom_sources
import clinfonce.data.fashion_mnist
import clinfonce.data.official.sources
import clinfonce.data.synthetic  # noqa: F401
