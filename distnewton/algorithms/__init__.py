"""The algorithm registry: name -> class (``algorithm.name`` in the YAML).

``ALGORITHMS`` is a read-only mapping over the built-in classes below, the
entry points of the group ``distnewton.algorithms`` and the classes plugin
modules (``run.plugins``) register with :func:`register_algorithm`; see
:mod:`distnewton.plugins`.  ``ALGORITHMS.origin(name)`` says which.
"""

from ..plugins import AlgorithmRegistry, load_plugins, register_algorithm  # noqa: F401
from .adaptive_localnewton import AdaptiveLocalNewton
from .base import Algorithm  # noqa: F401  (for plugin modules)
from .fednl import FedNL
from .gd import GD
from .giant import GIANT
from .ist import IST
from .lbfgs import LBFGS
from .localnewton import LocalNewton
from .localsgd import LocalSGD
from .newton import Newton
from .ranl import RANL
from .scaled_localsgd import ScaledLocalSGD

ALGORITHMS = AlgorithmRegistry((
    Newton, GD, GIANT, LocalNewton, AdaptiveLocalNewton, LBFGS, LocalSGD, RANL, IST,
    ScaledLocalSGD, FedNL,
))
