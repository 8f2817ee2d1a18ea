"""The per-sample losses l(z, y) of the margin z = x.w: logistic, ridge, the L2-loss SVM
and Poisson regression (log link).

Each class gives ``value``, ``deriv`` (dl/dz), ``deriv2`` (d2l/dz2) and ``parts``
(all three from one pass), vectorised over rows; :class:`~distnewton.objectives.Shard`
sums them over a worker's rows.  The names stay importable from
:mod:`distnewton.objectives`, where they lived before Poisson was added.
"""

from __future__ import annotations

import math

import numpy as np


def _sigmoid_parts(m):
    """e = exp(-|m|) and 1/(1 + e): both bounded, no overflow for any m."""
    e = np.exp(-np.abs(m))
    return e, 1.0 / (1.0 + e)


class Logistic:
    """l(z, y) = log(1 + exp(-y z)), y in {-1, +1}.

    With m = y z and e = exp(-|m|) (never overflows):
    l = max(-m, 0) + log1p(e); dl/dz = -y sigma(-m) with sigma(-m) = e/(1+e)
    for m >= 0 and 1/(1+e) for m < 0; d2l/dz2 = sigma(m) sigma(-m) = e/(1+e)^2.
    :meth:`parts` gives all three from one exp (the gradient round needs the
    value and derivative, Newton's rounds the curvature at the same point).
    """

    name = "logistic"

    @staticmethod
    def value(z, y):
        m = y * z
        return np.maximum(-m, 0.0) + np.log1p(np.exp(-np.abs(m)))

    @staticmethod
    def parts(z, y):
        """(l, dl/dz, d2l/dz2) elementwise."""
        m = y * z
        e, inv = _sigmoid_parts(m)
        s = np.where(m >= 0, e * inv, inv)                 # sigma(-m)
        return np.maximum(-m, 0.0) + np.log1p(e), -y * s, e * inv * inv

    @staticmethod
    def deriv(z, y):
        """dl/dz = -y sigma(-y z) (a float for float arguments: per-sample SGD)."""
        if np.ndim(z) == 0:
            m = float(y) * float(z)
            e = math.exp(-abs(m))
            return -float(y) * (e / (1.0 + e) if m >= 0 else 1.0 / (1.0 + e))
        m = y * z
        e, inv = _sigmoid_parts(m)
        return -y * np.where(m >= 0, e * inv, inv)

    @staticmethod
    def deriv2(z, y):
        """d2l/dz2 = sigma(y z) sigma(-y z) (in (0, 1/4])."""
        if np.ndim(z) == 0:
            e = math.exp(-abs(float(y) * float(z)))
            return e / (1.0 + e) ** 2
        e, inv = _sigmoid_parts(y * z)
        return e * inv * inv


class Ridge:
    """l(z, y) = (z - y)^2 / 2."""

    name = "ridge"

    @staticmethod
    def value(z, y):
        r = z - y
        return 0.5 * r * r

    @staticmethod
    def deriv(z, y):
        return z - y

    @staticmethod
    def deriv2(z, y):
        return np.ones_like(z)

    @staticmethod
    def parts(z, y):
        r = z - y
        return 0.5 * r * r, r, np.ones_like(z)


class SquaredHinge:
    """l(z, y) = max(0, 1 - y z)^2, y in {-1, +1}: the L2-loss SVM (LIBLINEAR ``-s 2``).

    With m = y z and r = max(0, 1 - m): l = r^2, dl/dz = -2 y r (continuous),
    and the generalised second derivative 2 [m < 1] (l' is piecewise linear, so
    l'' jumps at m = 1; the rows with m < 1 are LIBLINEAR's active set, whose
    Hessian (2/n) X_A^T X_A + lambda I its TRON uses).  f is then convex,
    once continuously differentiable with a Lipschitz gradient (l'' <= 2), and
    Newton with this Hessian converges finitely near the optimum (Mangasarian 2002).
    """

    name = "squared_hinge"

    @staticmethod
    def value(z, y):
        r = np.maximum(1.0 - y * z, 0.0)
        return r * r

    @staticmethod
    def deriv(z, y):
        """dl/dz = -2 y max(0, 1 - y z) (a float for float arguments: per-sample SGD)."""
        if np.ndim(z) == 0:
            return -2.0 * float(y) * max(1.0 - float(y) * float(z), 0.0)
        return -2.0 * y * np.maximum(1.0 - y * z, 0.0)

    @staticmethod
    def deriv2(z, y):
        """2 on the active rows (y z < 1), else 0: the generalised Hessian's weights."""
        if np.ndim(z) == 0:
            return 2.0 if float(y) * float(z) < 1.0 else 0.0
        return np.where(y * z < 1.0, 2.0, 0.0)

    @staticmethod
    def parts(z, y):
        """(l, dl/dz, d2l/dz2) elementwise, from one margin pass."""
        r = np.maximum(1.0 - y * z, 0.0)
        return r * r, -2.0 * y * r, np.where(r > 0.0, 2.0, 0.0)


class Poisson:
    """l(z, y) = exp(z) - y z, y >= 0 (counts or rates): Poisson regression with the log link.

    The negative Poisson log-likelihood of y with mean mu = exp(z) is
    exp(z) - y z + log(y!); the constant log(y!) (log Gamma(y + 1) for rates) does not
    depend on w and is dropped, as scikit-learn's ``PoissonRegressor`` and Spark's
    ``GeneralizedLinearRegression(family="poisson")`` drop it from what they minimise.
    dl/dz = exp(z) - y, d2l/dz2 = exp(z) > 0: f is strictly convex, but l'' is
    unbounded, so the methods whose step sizes assume a bounded curvature refuse it.

    Far from the optimum exp(z) overflows to inf for z > ~709.78: the value is then
    +inf (never nan: exp(z) - y z with y z finite), which every line search counts
    as a failed trial (:func:`~distnewton.algorithms.primitives.armijo`, L-BFGS's
    Wolfe search and TRON's ratio); the overflow warning is silenced for that reason.
    """

    name = "poisson"

    @staticmethod
    def _exp(z):
        with np.errstate(over="ignore"):
            return np.exp(z)

    @staticmethod
    def value(z, y):
        return Poisson._exp(z) - y * z

    @staticmethod
    def deriv(z, y):
        """dl/dz = exp(z) - y (a float for float arguments: per-sample SGD)."""
        if np.ndim(z) == 0:
            return float(Poisson._exp(float(z))) - float(y)
        return Poisson._exp(z) - y

    @staticmethod
    def deriv2(z, y):
        """d2l/dz2 = exp(z), the mean mu of the fitted Poisson law."""
        if np.ndim(z) == 0:
            return float(Poisson._exp(float(z)))
        return Poisson._exp(z)

    @staticmethod
    def parts(z, y):
        """(l, dl/dz, d2l/dz2) elementwise, from one exp."""
        mu = Poisson._exp(z)
        return mu - y * z, mu - y, mu


LOSSES = {"logistic": Logistic, "ridge": Ridge, "squared_hinge": SquaredHinge,
          "poisson": Poisson}
#: the losses whose targets are classes -1/+1 (labels mapped, accuracy, class weights)
CLASSIFICATION_LOSSES = ("logistic", "squared_hinge")


def is_classification(loss) -> bool:
    """True for the losses of -1/+1 targets (logistic, squared_hinge): labels go
    through :func:`~distnewton.data.libsvm.map_labels` and predictions are classes."""
    return loss in CLASSIFICATION_LOSSES


#: the losses whose targets are the raw labels (regression): no label mapping
REGRESSION_LOSSES = ("ridge", "poisson")
