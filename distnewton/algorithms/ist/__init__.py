"""IST (Shulgin and Richtarik, arXiv 2306.16484): :mod:`.ist`, its diagonal
:mod:`.sketches`, its ridge :mod:`.analysis` and the exact sketch :mod:`.moments`
that analysis uses."""

from .ist import IST

__all__ = ["IST"]
