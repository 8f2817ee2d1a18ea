"""The algorithm registry: name -> class (``algorithm.name`` in the YAML)."""

from .adaptive_localnewton import AdaptiveLocalNewton
from .gd import GD
from .giant import GIANT
from .localnewton import LocalNewton
from .newton import Newton

ALGORITHMS = {cls.name: cls for cls in (Newton, GD, GIANT, LocalNewton, AdaptiveLocalNewton)}
