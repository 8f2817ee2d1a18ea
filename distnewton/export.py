"""``distnewton export``: a result's model in a file another tool reads.

- ``liblinear``: LIBLINEAR's model file (what its ``save_model`` writes and its
  ``predict`` / ``load_model`` read).  Logistic is ``solver_type L2R_LR``; the
  ``label`` line lists the class of w.x > 0 first (LIBLINEAR predicts
  ``label[0]`` when w.x > 0).  Ridge is ``L2R_L2LOSS_SVR``: LIBLINEAR has no
  ridge solver, but its L2-loss SVR with epsilon p = 0 minimises
  ||w||^2/2 + C sum_j (y_j - x_j.w)^2, the ridge objective times 1/lambda
  with C = 1/(2 lambda n), and predicts x.w, so the file means the same model.
  ``bias`` is 1 with ``model.fit_intercept`` (the last w row is the intercept,
  LIBLINEAR's constant feature), else -1.  Values are written ``%.17g``.
- ``npz`` / ``json``: ``w`` (the coefficients, without the intercept),
  ``intercept`` (0.0 without one), ``labels`` (logistic: the -1 class's label
  then the +1 class's; ridge: empty), ``objective`` (logistic | ridge),
  ``lam``, ``fit_intercept``, ``regularize_intercept``, ``n_features``.
"""

from __future__ import annotations

import json
import os

import numpy as np

from .errors import UserError
from .model import Model

FORMATS = ("liblinear", "npz", "json")


def arrays(model: Model) -> dict:
    """The plain-array form of the model (npz and json)."""
    return {"w": model.coef.copy(), "intercept": model.intercept,
            "labels": list(model.classes), "objective": model.loss, "lam": model.lam,
            "fit_intercept": model.fit_intercept,
            "regularize_intercept": model.regularize_intercept,
            "n_features": model.n_features}


def liblinear_text(model: Model) -> str:
    """The LIBLINEAR model file of ``model``."""
    lines = []
    if model.loss == "logistic":
        neg, pos = model.classes
        if not all(float(v).is_integer() for v in (neg, pos)):
            raise UserError(f"--format liblinear: LIBLINEAR labels are integers, the model in "
                            f"{model.path} has labels {neg} and {pos}")
        lines += ["solver_type L2R_LR", "nr_class 2", f"label {int(pos)} {int(neg)}"]
    else:
        lines += ["solver_type L2R_L2LOSS_SVR", "nr_class 2"]
    lines += [f"nr_feature {model.n_features}", f"bias {1 if model.fit_intercept else -1}",
              "w"]
    lines += ["%.17g " % v for v in model.w.tolist()]
    return "\n".join(lines) + "\n"


def export(model: Model, path, fmt) -> str:
    """Write ``model`` to ``path`` in ``fmt`` (one of :data:`FORMATS`); returns the path."""
    path = os.fspath(path)
    if fmt not in FORMATS:
        raise UserError(f"--format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if os.path.isdir(path):
        raise UserError(f"{path}: output path is a directory")
    text = None
    if fmt == "liblinear":
        text = liblinear_text(model)
    elif fmt == "json":
        a = arrays(model)
        a["w"] = a["w"].tolist()
        text = json.dumps(a, indent=1) + "\n"
    try:
        if text is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        else:
            a = arrays(model)
            a["labels"] = np.asarray(a["labels"], dtype=np.float64)
            with open(path, "wb") as fh:           # np.savez would append .npz to a name
                np.savez(fh, **a)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror})") from None
    return path
