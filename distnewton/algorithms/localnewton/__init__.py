"""LocalNewton and Adaptive LocalNewton (Gupta et al., UAI 2021): :mod:`.localnewton`
(Algorithm 1) and :mod:`.adaptive` (Algorithm 2)."""

from .adaptive import AdaptiveLocalNewton
from .localnewton import LocalNewton

__all__ = ["AdaptiveLocalNewton", "LocalNewton"]
