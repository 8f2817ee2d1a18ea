"""``distnewton export``: a result's model in a file another tool reads.

- ``liblinear``: LIBLINEAR's model file (what its ``save_model`` writes and its
  ``predict`` / ``load_model`` read).  Logistic is ``solver_type L2R_LR``, the
  L2-loss SVM (``squared_hinge``) ``L2R_L2LOSS_SVC`` (LIBLINEAR ``-s 2``, the same
  objective with C = 1/(lambda n)); the ``label`` line lists the class of w.x > 0
  first (LIBLINEAR predicts ``label[0]`` when w.x > 0).  Ridge is
  ``L2R_L2LOSS_SVR``: LIBLINEAR has no ridge solver, but its L2-loss SVR with
  epsilon p = 0 minimises ||w||^2/2 + C sum_j (y_j - x_j.w)^2, the ridge objective times 1/lambda
  with C = 1/(2 lambda n), and predicts x.w, so the file means the same model.
  ``bias`` is 1 with ``model.fit_intercept`` (the last w row is the intercept,
  LIBLINEAR's constant feature), else -1.  Values are written ``%.17g``.
  A one-vs-rest model (``model.multiclass: ovr``) of C > 2 classes is
  LIBLINEAR's own one-vs-rest layout: ``nr_class C``, the labels in the model's
  class order, and one w line per feature holding the C classes' weights
  (LIBLINEAR predicts the label of the largest w_i.x, as distnewton does); with
  C = 2, LIBLINEAR's binary layout of the single vector (w_2 - w_1)/2, whose sign
  is that of w_2.x - w_1.x, so the predictions are the argmax's.
  LIBLINEAR has no Poisson regression: a ``poisson`` model is refused (one line).
- ``npz`` / ``json``: ``w`` (the coefficients, without the intercept; ovr:
  classes x features), ``intercept`` (0.0 without one; ovr: one per class),
  ``labels`` (logistic: the -1 class's label then the +1 class's; ovr: the
  classes in the rows' order; ridge, poisson: empty), ``objective`` (logistic |
  ridge | squared_hinge | poisson; poisson's prediction is exp(x.w + intercept)),
  ``lam``, ``fit_intercept``, ``regularize_intercept``, ``n_features``.

A multinomial model (``model.multiclass: multinomial``) is written in the
one-vs-rest layout (``solver_type L2R_LR``, ``nr_class C``, the label line, C
columns per feature): LIBLINEAR's ``predict`` gives the same labels (the argmax
of w_c.x), but its ``predict -b 1`` normalises the C per-class sigmoids, so its
probabilities differ from the softmax's.  With C = 2 the binary layout holds
w_2 - w_1, whose sigmoid is the softmax's probability of the second class:
labels and probabilities both agree.  Its npz and json add ``multiclass``
("multinomial": the probabilities are the softmax of the C scores).
"""

from __future__ import annotations

import json
import os

import numpy as np

from .errors import UserError, reason
from .io import claim as claims
from .model import Model

FORMATS = ("liblinear", "npz", "json")
#: LIBLINEAR's solver_type of each classification loss (``-s 0`` and ``-s 2``)
LIBLINEAR_SOLVERS = {"logistic": "L2R_LR", "squared_hinge": "L2R_L2LOSS_SVC"}


def arrays(model: Model) -> dict:
    """The plain-array form of the model (npz and json)."""
    intercept = model.intercept
    extra = {"multiclass": "multinomial"} if model.multinomial else {}
    return {**extra, "w": model.coef.copy(),
            "intercept": intercept.tolist() if model.multiclass else intercept,
            "labels": list(model.classes), "objective": model.loss, "lam": model.lam,
            "fit_intercept": model.fit_intercept,
            "regularize_intercept": model.regularize_intercept,
            "n_features": model.n_features}


def liblinear_text(model: Model) -> str:
    """The LIBLINEAR model file of ``model``."""
    lines = []
    if model.loss == "poisson":
        raise UserError(f"--format liblinear: LIBLINEAR has no Poisson regression (the model "
                        f"in {model.path} is poisson); use --format npz or json")
    if model.multiclass:
        return _liblinear_ovr(model)
    if model.loss in LIBLINEAR_SOLVERS:
        neg, pos = model.classes
        if not all(float(v).is_integer() for v in (neg, pos)):
            raise UserError(f"--format liblinear: LIBLINEAR labels are integers, the model in "
                            f"{model.path} has labels {neg} and {pos}")
        lines += [f"solver_type {LIBLINEAR_SOLVERS[model.loss]}", "nr_class 2",
                  f"label {int(pos)} {int(neg)}"]
    else:
        lines += ["solver_type L2R_L2LOSS_SVR", "nr_class 2"]
    lines += [f"nr_feature {model.n_features}", f"bias {1 if model.fit_intercept else -1}",
              "w"]
    lines += ["%.17g " % v for v in model.w.tolist()]
    return "\n".join(lines) + "\n"


def _liblinear_ovr(model: Model) -> str:
    """LIBLINEAR's file of a one-vs-rest model (see the module docstring)."""
    labels = model.classes
    if not all(float(v).is_integer() for v in labels):
        raise UserError(f"--format liblinear: LIBLINEAR labels are integers, the model in "
                        f"{model.path} has labels {labels}")
    W = model.w
    solver = f"solver_type {LIBLINEAR_SOLVERS[model.loss]}"
    if len(labels) == 2:
        lines = [solver, "nr_class 2", f"label {int(labels[1])} {int(labels[0])}"]
        half = 1.0 if model.multinomial else 2.0     # softmax: sigmoid(z_2 - z_1)
        rows = [["%.17g" % v] for v in ((W[1] - W[0]) / half).tolist()]
    else:
        lines = [solver, f"nr_class {len(labels)}",
                 "label " + " ".join(str(int(v)) for v in labels)]
        rows = [["%.17g" % v for v in col] for col in W.T.tolist()]
    lines += [f"nr_feature {model.n_features}", f"bias {1 if model.fit_intercept else -1}",
              "w"]
    lines += [" ".join(r) + " " for r in rows]
    return "\n".join(lines) + "\n"


def export(model: Model, path, fmt, overwrite=False) -> str:
    """Write ``model`` to ``path`` in ``fmt`` (one of :data:`FORMATS`); returns the path.

    An existing file is an error unless ``overwrite``; the path is claimed and
    published as a result file is (:mod:`distnewton.io.claim`)."""
    path = os.fspath(path)
    if fmt not in FORMATS:
        raise UserError(f"--format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    text = None
    if fmt == "liblinear":
        text = liblinear_text(model)
    elif fmt == "json":
        a = arrays(model)
        a["w"] = a["w"].tolist()
        text = json.dumps(a, indent=1) + "\n"
    with claims.claim(path, overwrite) as claim:   # validated, held, never clobbered
        tmp = claims.temp_file(path, ".export")
        try:
            if text is not None:
                with open(tmp, "w", encoding="utf-8") as fh:
                    fh.write(text)
            else:
                a = arrays(model)
                a["labels"] = np.asarray(a["labels"], dtype=np.float64)
                with open(tmp, "wb") as fh:        # np.savez would append .npz to a name
                    np.savez(fh, **a)
            claim.publish(tmp)
        except OSError as exc:
            raise UserError(f"{path}: cannot write ({reason(exc)})") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path
