"""Newton systems: LAPACK Cholesky with a damping fallback, and CG.

``solve_spd(H, g)`` solves H p = g with ``scipy.linalg.cho_factor`` /
``cho_solve``.  If the Cholesky factorisation fails (H not numerically
positive definite, e.g. lambda = 0 with rank-deficient data), it retries with
H + tau I, tau = 1e-10 * max(1, mean diag(H)), multiplied by 100 on each
further failure (at most 8 tries), and logs a warning naming tau.

``cg(hvp, b, rtol, maxiter)`` is Hessian-free: conjugate gradients on the
operator v -> H v (``scipy.sparse.linalg.cg``), stopping when
||H x - b|| <= rtol ||b|| or after ``maxiter`` iterations.
"""

from __future__ import annotations

import logging
import os

import numpy as np

# scipy.linalg and scipy.sparse.linalg are imported on first use: workers of
# algorithms that never solve locally (and rank 0 before the data) skip them.
log = logging.getLogger("distnewton")

MAX_DAMPING_TRIES = 8
#: d x d float64 arrays a rank holds at once on a dense-Hessian path (the
#: reduced sums, the Hessian, its Cholesky factor)
DENSE_COPIES = 3


def check_dense_hessian(d, key, hint):
    """UserError naming ``key`` when DENSE_COPIES d x d arrays exceed this machine's RAM."""
    from .errors import UserError
    need = DENSE_COPIES * 8.0 * d * d
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if need > ram:
        raise UserError(f"{key}: this path forms d x d matrices: d = {d} needs "
                        f"{need / 2**30:.1f} GiB per rank, more than this machine's "
                        f"{ram / 2**30:.1f} GiB; {hint}")


def preload():
    """Import scipy.linalg and scipy.sparse.linalg now, outside any timed step."""
    import scipy.linalg  # noqa: F401
    import scipy.sparse.linalg  # noqa: F401


def cho_factor_damped(H):
    """Cholesky factor of H, adding damping tau*I if H is not positive definite.

    Returns (factor, tau) where tau = 0 when no damping was needed.
    """
    import scipy.linalg as sla
    tau = 0.0
    base = 1e-10 * max(1.0, float(np.mean(np.abs(np.diag(H)))))
    for attempt in range(MAX_DAMPING_TRIES + 1):
        M = H if tau == 0.0 else H + tau * np.eye(H.shape[0])
        try:
            return sla.cho_factor(M, lower=True, check_finite=False), tau
        except sla.LinAlgError:
            tau = base if tau == 0.0 else tau * 100.0
    raise np.linalg.LinAlgError(
        f"Hessian is not positive definite even with damping {tau:.3g}: "
        "increase model.lambda")


def solve_spd(H, g):
    """p = H^{-1} g by Cholesky (with the damping fallback above)."""
    factor, tau = cho_factor_damped(H)
    if tau:
        log.warning("Cholesky failed: Newton system damped with tau=%.3g", tau)
    import scipy.linalg as sla
    return sla.cho_solve(factor, g, check_finite=False)


def cg(hvp, b, rtol=1e-10, maxiter=None, diag=None):
    """Solve H x = b given only v -> H v; returns (x, iterations).

    ``diag``: diag(H) for a Jacobi preconditioner M^{-1} = diag(H)^{-1}
    (scipy's preconditioned CG; the stopping rule stays ||H x - b|| <= rtol ||b||).
    """
    import scipy.sparse.linalg as spla
    d = b.shape[0]
    op = spla.LinearOperator((d, d), matvec=hvp, dtype=np.float64)
    M = None if diag is None else spla.LinearOperator((d, d), matvec=lambda v: v / diag,
                                                      dtype=np.float64)
    count = [0]

    def callback(_):
        count[0] += 1

    x, _info = spla.cg(op, b, rtol=rtol, atol=0.0, maxiter=maxiter or 10 * d, M=M,
                       callback=callback)
    return x, count[0]
