"""The algorithm registry: name -> class (``algorithm.name`` in the YAML)."""

from .adaptive_localnewton import AdaptiveLocalNewton
from .gd import GD
from .giant import GIANT
from .ist import IST
from .lbfgs import LBFGS
from .localnewton import LocalNewton
from .localsgd import LocalSGD
from .newton import Newton
from .ranl import RANL
from .scaled_localsgd import ScaledLocalSGD

ALGORITHMS = {cls.name: cls for cls in (
    Newton, GD, GIANT, LocalNewton, AdaptiveLocalNewton, LBFGS, LocalSGD, RANL, IST,
    ScaledLocalSGD,
)}
