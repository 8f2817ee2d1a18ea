"""The trained model of a result file: predictions, metrics, warm starts.

:func:`load_model` reads what a run learnt from its HDF5 result (or fallback
file): the weights ``/model/w``, the loss and lambda, ``model.fit_intercept``
(the last weight is then the intercept, the constant feature 1 appended by
:func:`distnewton.problem.add_intercept`), the feature count, whether indices
are zero-based, and the training label map (root attribute ``label_map``, the
Python literal of the dict :func:`distnewton.data.libsvm.map_labels` returns).

:meth:`Model.predict` / :meth:`Model.proba` give labels (raw training labels,
through the label map) and probabilities for a LIBSVM file read against the
model's feature count: a file with fewer features is padded, an index beyond
the model's is a UserError naming the file, line and index.  :func:`metrics`
computes accuracy, log-loss and AUC (logistic; squared_hinge: accuracy, the
mean squared hinge loss and AUC), MSE and R^2 (ridge) or the mean Poisson
deviance, D^2 and MSE of the mean exp(x.w) (poisson) with
numpy (scikit-learn is only a test dependency; the tests check them against
scikit-learn's metric functions).

``distnewton predict`` and ``evaluate`` (:mod:`distnewton.commands`) are thin
wrappers over this module; ``export`` is :mod:`distnewton.export`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from .errors import UserError
from .objectives import is_classification

#: why a model of this loss has no --proba (one line)
PROBA_WHY = {"squared_hinge": "an SVM has no probabilities; use --decision",
             "poisson": "predictions are the Poisson mean exp(x.w); --decision gives x.w"}


@dataclass
class Model:
    """A linear model read from a result file (:func:`load_model`)."""

    w: np.ndarray           # every weight, the intercept last when fit_intercept;
    #                         (classes x d) for ``model.multiclass: ovr``
    loss: str               # "logistic", "ridge", "squared_hinge" or "poisson"
    lam: float
    fit_intercept: bool
    zero_based: bool
    label_map: dict         # as map_labels returns it
    path: str
    regularize_intercept: bool = True
    status: str = ""        # the run's status (root attribute), "" when unknown
    label_column: object = None   # data.label_column as trained (csv, npy, parquet, ...)
    multinomial: bool = False     # ``model.multiclass: multinomial``: w (classes x d) is softmax

    @property
    def multiclass(self) -> bool:
        """One-vs-rest: one row of w per class (:mod:`distnewton.multiclass`)."""
        return self.w.ndim == 2

    @property
    def n_features(self) -> int:
        """Data features (the intercept column not counted)."""
        return self.w.shape[-1] - int(self.fit_intercept)

    @property
    def coef(self) -> np.ndarray:
        """The coefficients: (n_features,), or (classes, n_features) for ovr."""
        return self.w[..., :self.n_features]

    @property
    def intercept(self):
        """The intercept (0.0 without one): a float, or one per class for ovr."""
        if self.multiclass:
            return (self.w[:, -1].copy() if self.fit_intercept
                    else np.zeros(self.w.shape[0]))
        return float(self.w[-1]) if self.fit_intercept else 0.0

    @property
    def classes(self) -> list:
        """Logistic: the labels printed for the classes -1 and +1, in that order
        (scikit-learn's ``classes_`` order: the class of decision > 0 last).

        When each class is one raw training label (rules ``plus_minus_one`` and
        ``two_labels``), those labels; when several raw labels make up a class
        (``data.positive_labels``), the mapped values [-1, 1].  The same for
        squared_hinge; ridge: [].
        """
        if not is_classification(self.loss):
            return []
        if self.multiclass:                     # ovr: the sorted training labels
            return list(self.label_map["classes"])
        sides = [[k for k, v in self.label_map["map"].items() if float(v) == side]
                 for side in (-1.0, 1.0)]
        if all(len(raw) == 1 for raw in sides):
            return [_number(raw[0]) for raw in sides]
        return [-1, 1]

    def decision(self, X) -> np.ndarray:
        """x.w for the rows of X (n x n_features, without the intercept column);
        ovr: (n, classes), column i the decision value of class i."""
        if self.multiclass:
            return np.asarray(X @ self.coef.T) + self.intercept
        return X @ self.coef + self.intercept

    def predict(self, X) -> np.ndarray:
        """Ridge: x.w; poisson: the mean exp(x.w) (scikit-learn's
        ``PoissonRegressor.predict``, Spark's ``prediction`` column; ``decision`` gives
        the linear predictor x.w); logistic: the class label (+1 side when x.w > 0, as
        scikit-learn); ovr: the class of the largest decision value."""
        z = self.decision(X)
        if self.loss == "poisson":
            return poisson_mean(z)
        if not is_classification(self.loss):
            return z
        if self.multiclass:
            return np.asarray(self.classes)[np.argmax(z, axis=1)]
        neg, pos = self.classes
        return np.where(z > 0, pos, neg)

    def proba(self, X) -> np.ndarray:
        """Logistic: (n, 2) probabilities of the classes in :attr:`classes` order;
        ovr: (n, classes), each class's sigmoid normalised over the classes
        (scikit-learn's one-vs-rest rule); multinomial: the softmax of the scores.  Other losses: a UserError (ridge
        predicts x.w, an SVM has no probabilities)."""
        if self.loss != "logistic":
            raise UserError(f"probabilities: only for logistic models ({self.path} is "
                            f"{self.loss}: {PROBA_WHY.get(self.loss, 'predictions are x.w')})")
        return scores_proba(self.decision(X), self.multiclass, self.multinomial)

    def targets(self, y, source):
        """Raw labels of a data file as the model's targets (logistic: -1/+1
        through the training label map; ovr: the class index 0..C-1; a label it
        does not know is a UserError)."""
        if self.loss == "poisson":
            from .data.libsvm import check_counts
            y = np.asarray(y, dtype=np.float64)
            check_counts(y, source)
            return y
        if not is_classification(self.loss):
            return np.asarray(y, dtype=np.float64)
        if self.multiclass:
            from .multiclass import ovr_labels
            raw, _ = ovr_labels(y, source, reference=self.label_map)
            return np.searchsorted(np.asarray(self.classes, dtype=np.float64), raw)
        from .data import map_labels
        return map_labels(y, self.loss, source=source, reference=self.label_map)[0]


def _number(text):
    v = float(text)
    return int(v) if v.is_integer() else v


def scores_proba(z, multiclass, multinomial=False):
    """Class probabilities from decision values: (n, 2) of one binary model, the
    normalised sigmoids of one-vs-rest's (n, classes), or the softmax of a
    multinomial model's (n, classes)."""
    if multinomial:
        from .softmax import softmax_parts
        return softmax_parts(np.asarray(z, dtype=np.float64))[1]
    if multiclass:
        p = sigmoid(z)
        return p / p.sum(axis=1, keepdims=True)
    return np.column_stack([sigmoid(-z), sigmoid(z)])


def sigmoid(z):
    """1 / (1 + exp(-z)) without overflow for any z."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def parse_label_map(text, path):
    """The ``label_map`` attribute (a dict's Python literal) as a dict."""
    if isinstance(text, dict):
        return text
    from .io.validate import label_map_of
    value, _ = label_map_of(path, {"label_map": text})
    if value is None:
        raise UserError(f"{path}: attribute label_map: missing")
    return value


def load_model(path) -> Model:
    """The model of a result file (HDF5 or ``.fallback.npz``), checked
    (:func:`distnewton.io.validate.model_fields`): a file without a usable model
    (none, weights not finite or of the wrong shape, an unknown loss, a damaged
    label map or config) is a UserError naming the file and the field."""
    from .io.read import read_parts
    from .io.validate import model_fields
    path = os.fspath(path)
    attrs, _, w, w_attrs = read_parts(path)
    return Model(path=path, **model_fields(path, attrs, w, w_attrs))


#: The statuses of a run whose model may be far from the optimum: predict,
#: evaluate and export use it, with a warning (:func:`status_warning`).
DOUBTFUL = {"diverged": "the run diverged: the model is the best iterate it saw",
            "stopped": "the run was stopped before it finished (resume it with "
                       "distnewton run --resume)"}


def status_warning(model: Model) -> str | None:
    """The warning line for a model of a run that diverged or was stopped, else None."""
    why = DOUBTFUL.get(model.status)
    return None if why is None else f"distnewton: warning: {model.path}: status " \
        f"{model.status}: {why}"


def read_data(model: Model, path):
    """A data file's rows (any of :mod:`distnewton.data.formats`) against the model:
    (X, raw labels); X has the model's
    feature count (fewer in the file is fine; an index beyond is a UserError
    naming the file, line and index)."""
    from .data import formats
    from .data.registry import resolve_path
    path = resolve_path(os.fspath(path), "DATA")
    try:
        ds = formats.read(path, formats.detect(path, key="DATA"), n_features=model.n_features,
                          zero_based=model.zero_based, label_column=model.label_column)
    except UserError as exc:
        if "exceeds n_features" in str(exc):
            raise UserError(f"{exc} (the model in {model.path} has {model.n_features} "
                            "features)") from None
        raise
    return ds.X, ds.y


def metrics(loss, z, t, multinomial=False) -> dict:
    """Logistic (targets t in {-1, +1}, decision values z): accuracy, log_loss
    (mean -log p(t | x)), auc; ovr (z of shape (n, classes), t class indices):
    accuracy of the argmax, log_loss of the normalised probabilities and the
    macro one-vs-rest AUC of those probabilities (scikit-learn's
    ``roc_auc_score(multi_class="ovr")``); squared_hinge: accuracy,
    squared_hinge (mean max(0, 1 - t z)^2, no probabilities), auc (ovr: of the
    argmax, the mean over rows and classes, the macro AUC of the decision values); ridge
    (predictions z): mse, r2.  ``multinomial``: the probabilities are the softmax
    of z (log_loss is then the multinomial objective's data term)."""
    z, t = np.asarray(z, dtype=np.float64), np.asarray(t, dtype=np.float64)
    out = {"n_samples": int(len(t))}
    if z.ndim == 2 and loss == "squared_hinge":   # ovr SVM: no probabilities
        T = np.where(t[:, None] == np.arange(z.shape[1]), 1.0, -1.0)
        out["accuracy"] = float(np.mean(np.argmax(z, axis=1) == t))
        out["squared_hinge"] = float(np.mean(np.maximum(1.0 - T * z, 0.0) ** 2))
        out["auc"] = float(np.mean([roc_auc(z[:, c], T[:, c]) for c in range(z.shape[1])]))
    elif z.ndim == 2:                             # ovr: t holds class indices
        P = scores_proba(z, True, multinomial)
        out["accuracy"] = float(np.mean(np.argmax(z, axis=1) == t))
        out["log_loss"] = float(-np.mean(np.log(np.clip(
            P[np.arange(len(t)), t.astype(np.int64)], 1e-300, None))))
        aucs = [roc_auc(P[:, c], np.where(t == c, 1.0, -1.0)) for c in range(z.shape[1])]
        out["auc"] = float(np.mean(aucs))         # macro one-vs-rest, as scikit-learn's
    elif loss == "logistic":
        from .objectives import Logistic
        out["accuracy"] = float(np.mean(np.where(z > 0, 1.0, -1.0) == t))
        out["log_loss"] = float(np.mean(Logistic.value(z, t)))
        out["auc"] = roc_auc(z, t)
    elif loss == "poisson":
        out.update(poisson_metrics(z, t))
    elif loss == "squared_hinge":
        from .objectives import SquaredHinge
        out["accuracy"] = float(np.mean(np.where(z > 0, 1.0, -1.0) == t))
        out["squared_hinge"] = float(np.mean(SquaredHinge.value(z, t)))
        out["auc"] = roc_auc(z, t)
    else:
        r = z - t
        out["mse"] = float(np.mean(r * r))
        sst = float(np.sum((t - t.mean()) ** 2))
        out["r2"] = 1.0 - float(np.sum(r * r)) / sst if sst > 0 else math.nan
    return out


def poisson_mean(z):
    """mu = exp(z), +inf where it overflows (no warning: a prediction, not an error)."""
    with np.errstate(over="ignore"):
        return np.exp(z)


def poisson_deviance(mu, t) -> float:
    """scikit-learn's ``mean_poisson_deviance``: mean 2 (t log(t/mu) - t + mu), the
    term t log(t/mu) taken as 0 where t = 0.  A mean mu that overflowed to +inf has
    deviance +inf (mu outgrows t log(t/mu) -> -inf), not the NaN of inf - inf."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tlog = np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0) / mu), 0.0)
        unit = np.where(np.isposinf(mu), np.inf, 2.0 * (tlog - t + mu))
    return float(np.mean(unit))


def poisson_metrics(z, t) -> dict:
    """Poisson (decision values z = x.w, counts t): poisson_deviance (the mean Poisson
    deviance of mu = exp(z), scikit-learn's ``mean_poisson_deviance``), d2 (the
    fraction of the deviance explained against the constant mean(t), scikit-learn's
    ``d2_tweedie_score(power=1)`` and ``PoissonRegressor.score``) and mse (of mu)."""
    mu = poisson_mean(z)
    dev = poisson_deviance(mu, t)
    null = poisson_deviance(np.full_like(t, t.mean()), t) if len(t) else math.nan
    return {"poisson_deviance": dev, "d2": 1.0 - dev / null if null > 0 else math.nan,
            "mse": float(np.mean((mu - t) ** 2))}


def roc_auc(z, t) -> float:
    """Area under the ROC curve of scores z for targets t in {-1, +1}: the
    Mann-Whitney statistic with average ranks for ties; NaN with one class only."""
    from scipy.stats import rankdata
    pos = t > 0
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(z)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def evaluate(model: Model, path, strict=True):
    """(decision values, metrics or None, why no metrics) of a data file.

    ``strict``: a label unknown to the training label map is a UserError;
    otherwise the metrics are None and the reason is returned.
    """
    X, y = read_data(model, path)
    z = model.decision(X)
    try:
        t = model.targets(y, os.fspath(path))
    except UserError as exc:
        if strict:
            raise
        return X, z, None, str(exc)
    return X, z, metrics(model.loss, z, t, model.multinomial), ""


def format_metrics(m: dict) -> str:
    """``accuracy 0.91 log_loss 0.23 ...`` lines (%.10g)."""
    return "\n".join(f"{k} {v}" if isinstance(v, int) else f"{k} {v:.10g}"
                     for k, v in m.items())


def _label_text(v) -> str:
    return "%d" % v if float(v).is_integer() else "%.17g" % v


def prediction_lines(model: Model, X, proba=False, decision=False) -> list:
    """One text line per row: the label (logistic), x.w (ridge); with
    ``proba`` the class probabilities in :attr:`Model.classes` order; with
    ``decision`` the decision values x.w (+ the intercept): one per row for a
    binary model (> 0: the second of :attr:`Model.classes`, as scikit-learn's
    ``decision_function``), one per class in :attr:`Model.classes` order for
    one-vs-rest; ridge: its predictions.  Numbers are %.17g (they read back
    to the same doubles)."""
    if proba and decision:
        raise UserError("--proba, --decision: choose one")
    if proba:
        if model.loss != "logistic":
            raise UserError("--proba: only for logistic models (this one is "
                            f"{model.loss}: {PROBA_WHY.get(model.loss, 'predictions are x.w')})")
        return _number_lines(model.proba(X))
    if decision:
        return _number_lines(model.decision(X))
    pred = model.predict(X)
    if not is_classification(model.loss):
        return ["%.17g" % v for v in pred.tolist()]
    return [_label_text(v) for v in pred.tolist()]


def _number_lines(values) -> list:
    """Rows of a vector (one number each) or a matrix (space-separated), %.17g."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        return ["%.17g" % v for v in values.tolist()]
    return [" ".join("%.17g" % v for v in row) for row in values.tolist()]
