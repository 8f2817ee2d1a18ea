"""The optimisation methods, by family, and their registry.

``ALGORITHMS`` (:mod:`.registry`) maps ``algorithm.name`` to the class: the
built-in ones below, the entry points of the group ``distnewton.algorithms``
and the classes plugin modules (``run.plugins``) register with
:func:`register_algorithm`; ``ALGORITHMS.origin(name)`` says which.

Every method is an :class:`Algorithm` (:mod:`.base`) whose ``step()`` is one
iteration on the master, talking to the workers through the shared
:mod:`.primitives`; the Newton-type ones share the hooks of
:class:`~.newton_type.NewtonType`.
"""

from .base import Algorithm
from .dane import DANE
from .disco import DiSCO
from .fednl import FedNL
from .gd import GD
from .giant import GIANT
from .ist import IST
from .lbfgs import LBFGS
from .localnewton import AdaptiveLocalNewton, LocalNewton
from .localsgd import LocalSGD, ScaledLocalSGD
from .newton import Newton
from .owlqn import OWLQN
from .ranl import RANL
from .registry import ALGORITHMS, AlgorithmRegistry, load_plugins, register_algorithm

__all__ = [
    "ALGORITHMS", "AlgorithmRegistry", "Algorithm", "load_plugins", "register_algorithm",
    "AdaptiveLocalNewton", "DANE", "DiSCO", "FedNL", "GD", "GIANT", "IST", "LBFGS",
    "LocalNewton", "LocalSGD", "Newton", "OWLQN", "RANL", "ScaledLocalSGD",
]
