"""scikit-learn estimators over the Python API: :class:`DistNewtonClassifier`
(L2-regularised logistic regression), :class:`DistNewtonSVC` (the L2-loss SVM,
as ``LinearSVC(dual=False)``) and :class:`DistNewtonRegressor` (ridge).

``fit`` runs :func:`distnewton.solve` on the sim backend with ``workers``
simulated workers and the chosen ``algorithm`` (any name of ``distnewton
list``, with its parameters in ``params``), on the arrays in memory.  The
objective is distnewton's, f(w) = (1/n) sum_j l(x_j.w, y_j) + (lam/2)||w||^2
(``lam="1/n"``: lambda = 1/n, the same minimiser as scikit-learn's
``LogisticRegression(C=1)`` with ``fit_intercept=False``).  ``fit_intercept``
appends the constant feature, regularised as LIBLINEAR does unless
``regularize_intercept=False`` (then the minimiser is scikit-learn's with
``fit_intercept=True``).

What the config has, the estimators take: ``class_weight`` (classifier;
``model.class_weight``, as LogisticRegression's), ``warm_start`` (``model.w0``:
the previous fit's coefficients) and ``early_stopping``,
``validation_fraction``, ``n_iter_no_change`` (``data.validation`` and
``run.early_stopping``, in scikit-learn's SGDClassifier names) and ``l1_ratio``
(``model.l1_ratio``, the elastic net; ``owlqn`` then trains it).

More than two classes: one-vs-rest, one binary run per class (``n_iter_``,
``rounds_``, ``status_`` and ``converged_`` per class); ``predict_proba``
normalises the classes' sigmoids, as scikit-learn's one-vs-rest logistic
regression does.  ``multi_class="multinomial"`` trains the softmax loss over
every class in one run instead (``model.multiclass: multinomial``,
scikit-learn's LogisticRegression default for more than two classes);
``predict_proba`` is then the softmax.

A fit whose run (or one of whose class runs) ended ``max_rounds``,
``stalled`` or ``diverged`` issues :class:`ConvergenceWarning`, which is
scikit-learn's ``sklearn.exceptions.ConvergenceWarning`` (the class users and
scikit-learn's own tools filter on) and :class:`distnewton.ConvergenceWarning`
at once: a subclass of both, so a filter on either applies.  The runs are
made with ``solve(..., warn=False)`` and the estimator warns once per fit, in
its own parameter names ("Increase the number of communication rounds
(max_rounds=2)"), rather than translating the warnings of ``solve``: no
warnings filter is changed (filters are process-wide, not thread-safe) and a
one-vs-rest fit gives one warning that names every class that did not converge.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .api import solve
from .convergence import ConvergenceWarning as DistNewtonConvergenceWarning
from .convergence import algorithm_of
from .convergence import message as convergence_message
from .errors import UserError
from .model import scores_proba
from .sklearn_parts import (_plain, binary_class_weight, check_multi_class,  # noqa: F401
                            class_weight_rows, early_stopping_config, multinomial_coef,
                            warm_start_file)

#: The estimators' parameters that the warning's advice names (not the config keys).
ADVICE_KEYS = {"max_rounds": "max_rounds", "tol": "tol", "lambda": "lam"}


class ConvergenceWarning(DistNewtonConvergenceWarning, SklearnConvergenceWarning):
    """A fit did not converge: both scikit-learn's
    ``sklearn.exceptions.ConvergenceWarning`` and
    :class:`distnewton.ConvergenceWarning`, so ``warnings.simplefilter("error",
    sklearn.exceptions.ConvergenceWarning)`` (or pytest's ``-W
    error::sklearn.exceptions.ConvergenceWarning``) and a filter on
    distnewton's class both apply to it.  (``python -W`` itself ignores
    third-party classes: it reads its filters before any module is imported.)"""


class _DistNewton(BaseEstimator):
    """Shared by both estimators: the config of one run and the run itself."""

    _loss = ""

    def __init__(self, algorithm="newton", lam="1/n", fit_intercept=True,
                 regularize_intercept=True, workers=4, max_rounds=200, tol=1e-10,
                 params=None, seed=0, warm_start=False, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=5, l1_ratio=None,
                 standardize=False):
        self.algorithm = algorithm
        self.lam = lam
        self.fit_intercept = fit_intercept
        self.regularize_intercept = regularize_intercept
        self.workers = workers
        self.max_rounds = max_rounds
        self.tol = tol
        self.params = params
        self.seed = seed
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.l1_ratio = l1_ratio
        self.standardize = standardize

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True            # CSR is distnewton's own format
        return tags

    def _run(self, X, y, sample_weight=None, w0=None, class_weight=None, multiclass=None):
        """One distnewton run on (X, y): (w without intercept, intercept, Result).
        ``w0``: the warm start (with the intercept); ``class_weight``:
        ``model.class_weight`` of this binary problem; ``multiclass``:
        ``model.multiclass`` (then the Result's (C, d) model is returned whole,
        the intercept None)."""
        v = {name: _plain(getattr(self, name)) for name in self.get_params(deep=False)}
        for flag in ("fit_intercept", "regularize_intercept"):
            if isinstance(v[flag], int) and v[flag] in (0, 1):      # 0/1 as before
                v[flag] = bool(v[flag])
        if v["params"] is not None and not isinstance(v["params"], dict):
            raise UserError(f"params: expected a mapping of algorithm keys, got {v['params']!r}")
        name = v["algorithm"]
        if v["l1_ratio"] and name == "newton":   # the default cannot take an L1 term
            name = "owlqn"
        cfg = {"model": {"loss": self._loss, "lambda": v["lam"],
                         "fit_intercept": v["fit_intercept"],
                         "regularize_intercept": v["regularize_intercept"],
                         "l1_ratio": v["l1_ratio"], "standardize": v["standardize"]},
               "algorithm": {"name": name, **(v["params"] or {})},
               "run": {"max_rounds": v["max_rounds"], "grad_rtol": v["tol"],
                       "seed": v["seed"]}}
        cfg["model"]["class_weight"] = class_weight
        if multiclass is not None:
            cfg["model"]["multiclass"] = multiclass
        cfg["data"], stopping = early_stopping_config(v)
        cfg["run"].update(stopping)
        workers = v["workers"]                   # (checked as run.workers)
        if isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1:
            held = cfg["data"].get("validation") or 0.0
            workers = min(workers, X.shape[0] - int(round(held * X.shape[0])))
        data = (X, y) if sample_weight is None else (X, y, sample_weight)
        with warm_start_file(w0) as path:
            cfg["model"]["w0"] = path
            r = solve(cfg, workers=workers, data=data, warn=False)   # the fit warns
        w = np.asarray(r.w, dtype=np.float64)
        if multiclass is not None:
            return w, None, r
        if self.fit_intercept:
            return w[:-1], float(w[-1]), r
        return w, 0.0, r

    def _warn_unconverged(self, runs):
        """Issue :class:`ConvergenceWarning`, at the caller of ``fit``, when one of
        ``runs`` (``[(class label or None, Result)]``: one per binary run) did not
        converge."""
        results = [r for _, r in runs]
        text = convergence_message(
            algorithm_of(results[0], self.algorithm),
            [(label, r.status, r.rounds, r.iterations) for label, r in runs],
            detail=results[0].message if len(runs) == 1 else "", keys=ADVICE_KEYS,
            limits={"max_rounds": self.max_rounds, "tol": self.tol})
        if text is not None:
            warnings.warn(text, ConvergenceWarning, stacklevel=3)

    def _warm_starts(self, n_targets, n_features):
        """The previous fit's models (one per binary problem, the intercept
        appended) when ``warm_start`` applies, else Nones: scikit-learn's rule
        (start from the previous ``coef_``; a fit of another shape starts cold)."""
        coef = getattr(self, "coef_", None)
        if not self.warm_start or coef is None:
            return [None] * n_targets
        coef = np.atleast_2d(coef)
        if coef.shape != (n_targets, n_features):
            return [None] * n_targets
        icpt = np.atleast_1d(self.intercept_)
        return [np.append(c, b) if self.fit_intercept else np.array(c)
                for c, b in zip(coef, icpt)]

    def _scores(self, X):
        """X w + b for each fitted coefficient vector."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", reset=False)
        scores = X @ self.coef_.T + self.intercept_
        return np.asarray(scores).ravel() if scores.ndim > 1 and scores.shape[1] == 1 \
            else np.asarray(scores)


class DistNewtonClassifier(ClassifierMixin, _DistNewton):
    """L2-regularised logistic regression trained by a distnewton algorithm.

    Parameters
    ----------
    algorithm : a distnewton algorithm name (newton, giant, fednl, ...)
    lam : lambda, the L2 weight, or "1/n"
    fit_intercept : append a constant feature
    regularize_intercept : penalise it like the others (LIBLINEAR; default) or not
        (scikit-learn's and Spark's convention: ``model.regularize_intercept``)
    workers : simulated workers K (at most the number of rows)
    max_rounds, tol : ``run.max_rounds`` and ``run.grad_rtol``
    params : the algorithm's parameters (a dict, as in the YAML)
    seed : ``run.seed``
    warm_start : start ``fit`` from the previous fit's ``coef_`` and
        ``intercept_`` (``model.w0``; a fit of another shape starts from zeros)
    early_stopping, validation_fraction, n_iter_no_change : scikit-learn's
        SGDClassifier names: hold ``validation_fraction`` of the rows out
        (``data.validation``) and stop when their loss has not improved for
        ``n_iter_no_change`` iterations, keeping the best model
        (``run.early_stopping``)
    class_weight : None, "balanced" or ``{class: weight}``, as
        LogisticRegression's (``model.class_weight``; a mapping multiplies
        ``sample_weight``, "balanced" balances each binary problem)
    multi_class : "ovr" (default: one binary run per class beyond two) or
        "multinomial" (``model.multiclass: multinomial``: one run of the softmax
        loss over every class, as LogisticRegression's default for more than two
        classes; ``predict_proba`` is then the softmax; with two classes
        ``coef_`` is the one row w_2 - w_1; ``warm_start`` does not apply: each
        fit starts from zeros; not with ``early_stopping``)
    l1_ratio : None (L2 only) or alpha in [0, 1]: the elastic net
        lam (alpha ||w||_1 + (1 - alpha)/2 ||w||^2) (``model.l1_ratio``,
        scikit-learn's l1_ratio with C = 1/(n lam)); with alpha > 0 the default
        algorithm ``newton`` becomes ``owlqn``, the method that takes an L1 term
    standardize : Spark ML's ``standardization=True`` (``model.standardize``): the
        penalty acts on the coefficients of the features scaled to unit standard
        deviation; ``coef_`` stays in the original feature space (not with
        ``multi_class="multinomial"``)

    Attributes
    ----------
    classes_, coef_ (1 x d, or classes x d), intercept_, n_features_in_
    n_iter_ : ndarray of shape (1,) or (n_classes,)
        iterations of each binary problem (one-vs-rest: one per class), as
        LogisticRegression's ``n_iter_``
    rounds_ : ndarray, the communication rounds of each binary problem
    status_ : ndarray of str, how each binary run ended: ``converged``,
        ``max_rounds``, ``stalled`` or ``diverged`` (Result.status)
    converged_ : ndarray of bool, ``status_ == "converged"``

    A fit in which one binary run did not converge issues
    :class:`ConvergenceWarning` (scikit-learn's class, and distnewton's).
    """

    _loss = "logistic"

    def __init__(self, algorithm="newton", lam="1/n", fit_intercept=True,
                 regularize_intercept=True, workers=4, max_rounds=200, tol=1e-10,
                 params=None, seed=0, warm_start=False, early_stopping=False,
                 validation_fraction=0.1, n_iter_no_change=5, class_weight=None,
                 l1_ratio=None, multi_class="ovr", standardize=False):
        super().__init__(algorithm=algorithm, lam=lam, fit_intercept=fit_intercept,
                         regularize_intercept=regularize_intercept, workers=workers,
                         max_rounds=max_rounds, tol=tol, params=params, seed=seed,
                         warm_start=warm_start, early_stopping=early_stopping,
                         validation_fraction=validation_fraction,
                         n_iter_no_change=n_iter_no_change, l1_ratio=l1_ratio,
                         standardize=standardize)
        self.class_weight = class_weight
        self.multi_class = multi_class

    def fit(self, X, y, sample_weight=None):
        """``sample_weight``: per-row weights (the loss stays averaged over n, so
        lam = 1/n is scikit-learn's C = 1 with the same weights)."""
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64)
        check_classification_targets(y)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        classes = np.unique(y)
        if classes.size < 2:
            raise ValueError(f"DistNewtonClassifier needs samples of at least 2 classes; "
                             f"got 1 class ({classes[0]!r})")
        rows = class_weight_rows(self.class_weight, y, classes)
        if rows is not None:
            sample_weight = sample_weight * rows
        if check_multi_class(getattr(self, "multi_class", "ovr")) == "multinomial":
            return self._fit_multinomial(X, y, classes, sample_weight)
        targets = classes[1:] if classes.size == 2 else classes
        starts = self._warm_starts(len(targets), X.shape[1]) \
            if np.array_equal(getattr(self, "classes_", None), classes) else [None] * len(targets)
        self.classes_ = classes
        coef, icpt, runs = [], [], []
        for c, w0 in zip(targets, starts):       # binary: one run; else one-vs-rest
            w, b, r = self._run(X, np.where(y == c, 1.0, -1.0), sample_weight, w0=w0,
                                class_weight=binary_class_weight(self.class_weight))
            coef.append(w)
            icpt.append(b)
            runs.append((None if self.classes_.size == 2 else c, r))
        results = [r for _, r in runs]
        self.coef_, self.intercept_ = np.array(coef), np.array(icpt)
        self.n_iter_ = np.array([r.iterations for r in results])
        self.rounds_ = np.array([r.rounds for r in results])
        self.status_ = np.array([r.status for r in results])
        self.converged_ = self.status_ == "converged"
        self._warn_unconverged(runs)
        return self

    def _fit_multinomial(self, X, y, classes, sample_weight):
        """One ``model.multiclass: multinomial`` run over every class."""
        self.classes_ = classes
        index = np.searchsorted(classes, y).astype(np.float64)    # any label type
        W, _, r = self._run(X, index, sample_weight, multiclass="multinomial",
                            class_weight="balanced" if self.class_weight == "balanced" else None)
        self.coef_, self.intercept_ = multinomial_coef(W, self.fit_intercept)
        self.n_iter_ = np.array([r.iterations])
        self.rounds_ = np.array([r.rounds])
        self.status_ = np.array([r.status])
        self.converged_ = self.status_ == "converged"
        self._warn_unconverged([(None, r)])
        return self

    def decision_function(self, X):
        """x.w + b: one column per class beyond two, a vector for two classes."""
        return self._scores(X)

    def predict_proba(self, X):
        s = self.decision_function(X)
        if self.classes_.size == 2:
            p = 1.0 / (1.0 + np.exp(-s))
            return np.column_stack((1.0 - p, p))
        if getattr(self, "multi_class", "ovr") == "multinomial":
            return scores_proba(s, True, multinomial=True)
        p = 1.0 / (1.0 + np.exp(-s))
        return p / p.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    def predict(self, X):
        s = self.decision_function(X)
        if self.classes_.size == 2:
            return self.classes_[(s > 0).astype(int)]
        return self.classes_[np.argmax(s, axis=1)]


def _has_probabilities(est):
    """``predict_proba`` exists for logistic models only (an SVM has none, as
    scikit-learn's LinearSVC): :func:`~sklearn.utils.metaestimators.available_if`."""
    return est._loss == "logistic"


class DistNewtonSVC(DistNewtonClassifier):
    """The L2-regularised L2-loss SVM (LIBLINEAR ``-s 2``), f(w) = (1/n) sum_j
    max(0, 1 - y_j x_j.w)^2 + (lam/2)||w||^2, trained by a distnewton algorithm:
    scikit-learn's ``LinearSVC(loss="squared_hinge", dual=False, C=C)`` with
    lam = 1/(n C) (``lam="1/n"``: C = 1; ``fit_intercept=True`` with a
    regularised intercept is LinearSVC's intercept_scaling=1, as LIBLINEAR's bias).

    Parameters, attributes, one-vs-rest for more than two classes and the
    convergence warning as :class:`DistNewtonClassifier`; ``decision_function``
    and ``predict`` as LinearSVC's, and no ``predict_proba`` (an SVM gives no
    probabilities).
    """

    _loss = "squared_hinge"
    predict_proba = available_if(_has_probabilities)(DistNewtonClassifier.predict_proba)
    predict_log_proba = available_if(_has_probabilities)(DistNewtonClassifier.predict_log_proba)


class DistNewtonRegressor(RegressorMixin, _DistNewton):
    """Ridge regression, f(w) = (1/2n) ||X w - y||^2 + (lam/2) ||w||^2, trained by a
    distnewton algorithm (parameters as :class:`DistNewtonClassifier`, without
    ``class_weight``).

    Attributes: ``coef_`` (d,), ``intercept_``, ``n_features_in_``; ``n_iter_``
    and ``rounds_`` (ints: the run's iterations and communication rounds),
    ``status_`` (str: ``converged``, ``max_rounds``, ``stalled`` or
    ``diverged``) and ``converged_`` (bool).  A run that did not converge issues
    :class:`ConvergenceWarning` (scikit-learn's class, and distnewton's).
    """

    _loss = "ridge"

    def fit(self, X, y, sample_weight=None):
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64, y_numeric=True)
        sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
        w, b, r = self._run(X, y, sample_weight, w0=self._warm_starts(1, X.shape[1])[0])
        self.coef_, self.intercept_ = w, b
        self.n_iter_, self.rounds_ = r.iterations, r.rounds
        self.status_, self.converged_ = r.status, r.status == "converged"
        self._warn_unconverged([(None, r)])
        return self

    def predict(self, X):
        return self._scores(X)
