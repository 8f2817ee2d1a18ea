"""scikit-learn estimators of the generalised linear models beyond ridge:
:class:`DistNewtonPoissonRegressor` (Poisson regression, log link).

Kept apart from :mod:`distnewton.sklearn` (the classifiers and ridge) so that each
module stays small; it reuses that module's run machinery (``_DistNewton._run``:
the config, warm starts, early stopping, the convergence warning).

The objective is distnewton's ``model.loss: poisson``,
f(w) = (1/n) sum_j (exp(x_j.w) - y_j x_j.w) + (lam/2)||w||^2, the negative Poisson
log-likelihood without its constant log(y_j!).  scikit-learn's
``PoissonRegressor(alpha)`` minimises (1/(2n)) sum_j dev(y_j, exp(x_j.w)) +
(alpha/2)||w||^2 with the unit deviance dev(y, mu) = 2 (y log(y/mu) - y + mu),
which is (1/n) sum_j (mu_j - y_j log mu_j) plus a constant in w: the same
minimiser for ``lam = alpha`` and ``regularize_intercept=False`` (scikit-learn
never penalises the intercept).

With ``sample_weight`` s, scikit-learn averages the weighted deviance over sum(s), not
n: :func:`alpha_weights` rescales s to mean 1 for a numeric ``lam``, so that
``lam = alpha`` stays ``PoissonRegressor(alpha)`` for any weights (scaling them all
changes nothing, as there).  ``lam="1/n"`` keeps the raw weights: (1/n) sum_j s_j l_j
+ (1/(2n))||w||^2 is sum(s)/n times the objective of alpha = 1/sum(s), the fit on
the rows repeated s_j times for integer weights (scikit-learn's sample-weight
equivalence).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .sklearn import DistNewtonRegressor


def alpha_weights(sample_weight, lam):
    """``sample_weight`` scaled to mean 1 when ``lam`` is a number (scikit-learn's
    weighted mean over sum(s) with the same alpha); unchanged for ``lam="1/n"`` (then
    alpha = 1/sum(s)) or when the weights sum to 0 (nothing to fit: the run says so)."""
    total = float(np.sum(sample_weight))
    if isinstance(lam, str) or not total > 0:
        return sample_weight
    return sample_weight * (len(sample_weight) / total)


class DistNewtonPoissonRegressor(DistNewtonRegressor):
    """Poisson regression with the log link, trained by a distnewton algorithm
    (parameters as :class:`~distnewton.sklearn.DistNewtonRegressor`; ``algorithm``
    one that takes ``model.loss: poisson``: newton, lbfgs, giant, gd, owlqn, fednl).

    ``predict`` gives the mean exp(x.w + b) (as ``PoissonRegressor.predict``);
    ``score`` the fraction of Poisson deviance explained, D^2 (as
    ``PoissonRegressor.score``).  Targets must be counts or rates >= 0: a negative
    one is a ``ValueError``.  ``lam=alpha`` (a number) with ``regularize_intercept=False``
    is ``PoissonRegressor(alpha)``, with or without ``sample_weight``
    (:func:`alpha_weights`).  Attributes as the ridge regressor's.
    """

    _loss = "poisson"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True     # check_estimator feeds y >= 0
        return tags

    def fit(self, X, y, sample_weight=None):
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64, y_numeric=True)
        if np.any(y < 0):
            raise ValueError("y: Poisson regression needs counts or rates >= 0; "
                             f"{int(np.sum(y < 0))} targets are negative")
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        return super().fit(X, y, alpha_weights(sample_weight, self.lam))

    def predict(self, X):
        """The Poisson mean exp(X w + b) (overflow gives inf, without a warning)."""
        with np.errstate(over="ignore"):
            return np.exp(self._scores(X))

    def score(self, X, y, sample_weight=None):
        """D^2: 1 - deviance(y, predict(X)) / deviance(y, mean(y)) (weighted means
        with ``sample_weight``), scikit-learn's ``d2_tweedie_score(power=1)``."""
        check_is_fitted(self)
        from sklearn.metrics import d2_tweedie_score
        return d2_tweedie_score(y, self.predict(X), sample_weight=sample_weight, power=1)
