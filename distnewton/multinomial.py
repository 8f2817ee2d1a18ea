"""``model.multiclass: multinomial``: the run around :mod:`distnewton.softmax`.

The labels: the sorted raw training labels are the classes (as one-vs-rest's
``classes``), each row's target its class index 0..C-1; a test or validation
file with a label the training set lacks is a one-line error (as for ovr).
One run of the configured algorithm solves the softmax problem on a vector of
d = p C floats; its outcome is written as one-vs-rest's is: ``/model/w`` of
shape (C, p), row i class ``classes[i]``, root attributes ``multiclass =
"multinomial"``, ``classes`` and ``n_features`` (p, the weights per class);
the history is the one run's.  Prediction is the argmax of the C scores,
probabilities their softmax.

The methods that take it declare ``Algorithm.multinomial = True`` (they use
only the shards' value / gradient / Hessian interface); the others (per-row
scalar margins, coordinate sketches) are refused before any worker starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import UserError
from .multiclass import ovr_labels
from .objectives import penalty_weights
from .problem import Problem
from .softmax import SoftmaxShard, softmax_parts

RULE = "multinomial"


def is_multinomial(cfg) -> bool:
    return cfg["model"].get("multiclass") == RULE


@dataclass
class MultinomialProblem(Problem):
    """The :class:`~distnewton.problem.Problem` of a multinomial run: ``d`` is the
    optimisation vector's length, features x ``classes`` (class-major), and the
    penalties are per class (a free intercept: every class's last entry unpenalised)."""

    classes: int = 2

    @property
    def features(self) -> int:
        """Weights per class (the intercept column counted)."""
        return self.d // self.classes

    def _per_class(self, value):
        if not self.free_intercept:
            return float(value)
        return np.tile(penalty_weights(value, self.features, True), self.classes)

    @property
    def penalty(self):
        return self._per_class(self.lam)

    @property
    def l1_weights(self):
        return self._per_class(self.l1)


def classes_of(problem) -> int:
    """C of a multinomial problem, 0 for any other."""
    return getattr(problem, "classes", 0)


def features_of(problem) -> int:
    """The weights per model row: d, or d / C for a multinomial problem."""
    return problem.d // classes_of(problem) if classes_of(problem) else problem.d


def multinomial_labels(y, source, reference=None):
    """(class indices, label map): the map lists the sorted classes, each class's
    row count and ``map`` label -> index; with ``reference`` (a test set) the
    training map is kept and an unknown label is a UserError naming ``source``."""
    if reference is None and len(np.unique(np.asarray(y, dtype=np.float64))) < 2:
        raise UserError(f"{source}: model.multiclass: multinomial needs at least 2 classes, "
                        "found 1")
    raw, lm = ovr_labels(y, source, reference, loss="logistic")
    if reference is None:
        lm = {**lm, "rule": RULE}
    classes = np.asarray(lm["classes"], dtype=np.float64)
    return np.searchsorted(classes, raw).astype(np.float64), lm


def check_algorithm(cls, resume=None) -> None:
    """UserError naming ``model.multiclass`` when ``cls`` cannot train the
    multinomial objective (:attr:`Algorithm.multinomial`), or naming ``--resume``
    for a resume: one line, exit 2."""
    if resume is not None:
        raise UserError("--resume: model.multiclass: multinomial runs are not "
                        "checkpointed (yet): start the run again")
    if not getattr(cls, "multinomial", False):
        raise UserError(f"model.multiclass: {cls.name} does not support multinomial "
                        "(it needs per-row scalar margins; use newton, gd, lbfgs, giant, "
                        "localnewton, adaptive_localnewton, dane, disco, owlqn or fednl)")


def softmax_shards(problem, pieces):
    """The :class:`~distnewton.softmax.SoftmaxShard` of each (X, y, weights) piece."""
    return [SoftmaxShard(X, y, problem.classes, problem.lam, problem.free_intercept,
                         weights=s) for X, y, s in pieces]


def run_multinomial(session):
    """The one run of a :class:`~distnewton.session.Session` (no warm start, no
    resume): its :class:`MultinomialOutcome`."""
    out = session.loop(session.setup.test).iterate()
    return MultinomialOutcome(out, session.setup.label_map, session.problem.free_intercept)


def test_metrics(test, w, classes):
    """(accuracy, mean log loss) of the class-major w on a test set whose targets
    are class indices."""
    Xt, t = test
    Z = np.asarray(Xt @ np.asarray(w).reshape(classes, -1).T)
    lse, _ = softmax_parts(Z)
    idx = t.astype(np.int64)
    loss = float(np.mean(lse - Z[np.arange(len(idx)), idx]))
    return float(np.mean(np.argmax(Z, axis=1) == idx)), loss


class MultinomialOutcome:
    """A finished run's :class:`~distnewton.io.record.Outcome` with ``w`` as the
    (C, p) matrix and the root attributes of the multinomial model.

    ``free_intercept``: the intercepts (the last column) are shifted to sum to
    zero.  The steps of every method keep that sum at zero up to rounding (the
    shards' rank-one term, :mod:`distnewton.softmax`); a drift along the null
    direction would change neither f, the predictions nor the probabilities:
    the stored model is the canonical one."""

    state = None                                   # multinomial runs are not checkpointed

    def __init__(self, outcome, label_map, free_intercept=False):
        self.alg, self.history = outcome.alg, outcome.history
        self.status, self.message = outcome.status, outcome.message
        C = len(label_map["classes"])
        self.w = np.array(outcome.w, dtype=np.float64).reshape(C, -1)
        if free_intercept:
            self.w[:, -1] -= self.w[:, -1].mean()
        self.attrs = {"multiclass": RULE,
                      "classes": np.array(label_map["classes"], dtype=np.float64),
                      "n_features": int(self.w.shape[1])}
