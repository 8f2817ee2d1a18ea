"""Compatibility module: the algorithm registry is :mod:`distnewton.algorithms.registry`.

Plugin modules import :func:`register_algorithm` from :mod:`distnewton.algorithms`
(or :mod:`distnewton.plugin`); the names below stay importable from here.
"""

from .algorithms.registry import (BUILTIN, GROUP, AlgorithmRegistry, load_plugins,  # noqa: F401
                                  one_line, register_algorithm)
