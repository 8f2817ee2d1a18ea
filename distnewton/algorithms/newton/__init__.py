"""Newton's method on the global objective: ``newton`` with its solvers.

:mod:`.newton` (Cholesky or Newton-CG with a line search), :mod:`.tron` (the
trust-region Newton-CG of ``solver: tron``) and :mod:`.solver_cost` (the cost
model of ``solver: auto``).
"""

from .newton import Newton
from .tron import Tron

__all__ = ["Newton", "Tron"]
