"""The algorithm registry: name -> class (``algorithm.name`` in the YAML)."""

from .gd import GD
from .giant import GIANT
from .newton import Newton

ALGORITHMS = {cls.name: cls for cls in (Newton, GD, GIANT)}
