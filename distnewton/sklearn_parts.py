"""What the scikit-learn estimators (:mod:`distnewton.sklearn`) build their runs
from: estimator parameters as config values, early stopping, warm-start files,
class weights and the multinomial fit's model (``multi_class="multinomial"``).

Split from :mod:`distnewton.sklearn`, which re-exports every name it had.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager

import numpy as np

from .errors import UserError

#: ``multi_class`` values of :class:`~distnewton.sklearn.DistNewtonClassifier`
MULTI_CLASS = ("ovr", "multinomial")


def _plain(value):
    """An estimator parameter as the config takes it: numpy scalars as Python
    numbers; anything else as given (the config's validation names the key:
    ``lam`` is model.lambda, ``tol`` run.grad_rtol, ``workers`` run.workers)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def early_stopping_config(v):
    """(data section, run keys) of the early-stopping parameters ``v``:
    ``data.validation: validation_fraction`` and ``run.early_stopping:
    n_iter_no_change`` when ``early_stopping`` (scikit-learn's SGD names)."""
    if not isinstance(v["early_stopping"], (bool, np.bool_)):
        raise UserError(f"early_stopping: expected True or False, got {v['early_stopping']!r}")
    if not v["early_stopping"]:
        return {}, {}
    return ({"validation": v["validation_fraction"]},
            {"early_stopping": v["n_iter_no_change"]})


@contextmanager
def warm_start_file(w0):
    """``model.w0`` for the warm start ``w0``: a .npy file in a temporary folder
    for the run's duration (None: no warm start)."""
    if w0 is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="distnewton-w0-") as folder:
        path = os.path.join(folder, "w0.npy")
        np.save(path, np.asarray(w0, dtype=np.float64))
        yield path


def class_weight_rows(class_weight, y, classes):
    """Per-row factors of a ``{class: weight}`` mapping (classes it does not name
    weigh 1), as scikit-learn multiplies ``sample_weight`` by them; None for
    None or "balanced" (balanced is per binary problem: :func:`binary_class_weight`)."""
    if class_weight is None or isinstance(class_weight, str):
        if class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight: must be 'balanced', a dict or None, "
                             f"got {class_weight!r}")
        return None
    if not isinstance(class_weight, dict):
        raise ValueError(f"class_weight: must be 'balanced', a dict or None, "
                         f"got {class_weight!r}")
    unknown = [k for k in class_weight if k not in set(classes.tolist())]
    if unknown:
        raise ValueError(f"class_weight: the classes {unknown} are not in the data's "
                         f"classes {list(classes)}")
    out = np.ones(len(y))
    for label, weight in class_weight.items():
        out[y == label] = float(weight)
    return out


def binary_class_weight(class_weight):
    """``model.class_weight`` of each binary run: "balanced" (scikit-learn
    balances each one-vs-rest problem as its own binary one), else None (a
    mapping goes into the row weights: :func:`class_weight_rows`)."""
    return "balanced" if class_weight == "balanced" else None


def check_multi_class(value):
    """``multi_class``: "ovr" (one binary run per class) or "multinomial" (one softmax run)."""
    if not isinstance(value, str) or value not in MULTI_CLASS:
        raise ValueError(f"multi_class: must be one of {', '.join(MULTI_CLASS)}, got {value!r}")
    return value


def multinomial_coef(W, fit_intercept):
    """(coef_, intercept_) of a multinomial run's (C, d) model: its C rows; with two
    classes the single row w_2 - w_1 (and b_2 - b_1), whose sigmoid is the softmax's
    probability of the second class (scikit-learn's binary layout)."""
    W = np.asarray(W, dtype=np.float64)
    coef, icpt = (W[:, :-1], W[:, -1]) if fit_intercept else (W, np.zeros(W.shape[0]))
    if W.shape[0] == 2:
        return (coef[1] - coef[0])[None, :], np.array([icpt[1] - icpt[0]])
    return coef.copy(), icpt.copy()
