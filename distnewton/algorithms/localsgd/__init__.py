"""Local SGD (:mod:`.localsgd`) and Local SGD with adaptive diagonal scaling
(:mod:`.scaled`, Chezhegov et al., arXiv 2406.00846; its rules in :mod:`.scaled_rules`)."""

from .localsgd import LocalSGD
from .scaled import ScaledLocalSGD

__all__ = ["LocalSGD", "ScaledLocalSGD"]
