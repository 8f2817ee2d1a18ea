"""RANL (Chen et al., arXiv 2308.10154): :mod:`.ranl` and its regions and :mod:`.masks`."""

from .ranl import RANL

__all__ = ["RANL"]
