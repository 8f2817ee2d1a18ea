"""Validation-based early stopping: ``data.validation`` and ``run.early_stopping``.

``data.validation`` names rows the model is *not* trained on:

- a file (a string; any format ``data.train`` takes, read like ``data.test``:
  its labels through the training label map), or
- a number in (0, 1): that fraction of the training rows, drawn with
  ``data.seed`` before the partition (:func:`hold_out`) and left out of the
  problem (n, and so ``model.lambda: 1/n``, count the rows trained on).

The master holds the validation rows, as it holds the test set: after every
iteration it evaluates the mean data loss (no regularisation) and, for
logistic, the accuracy at its own model.  That is logging only, no
communication round (nothing is sent), and the history records it in the
columns :data:`COLUMNS`.

``run.early_stopping: N`` stops the run when the validation loss has not
improved (strictly decreased below the best so far) for N iterations: the
iteration number has grown by N or more since the best one.  The run then ends
with status ``converged`` (not a new status: every consumer of statuses, the
ConvergenceWarning, ``--require-converged``, one-vs-rest's aggregation, Result.
success, reads it as a run that reached its stopping rule, as scikit-learn's
early stopping does not warn either) and the message says which rule fired and
which iteration's model is kept: the model is the best one by validation loss,
while the history runs to the iteration where the rule fired.  A run that ends
by another rule (a gradient tolerance, a budget) keeps that rule's model; its
history still has the validation columns to choose from.

A resumed run (``--resume``) counts its patience from the first iteration after
the checkpoint (the best weights before it are not in the checkpoint).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import UserError

#: The history columns a run with ``data.validation`` adds (name -> dtype).
COLUMNS = {"validation_loss": np.float64, "validation_accuracy": np.float64}

#: Salt of the held-out draw's seed, so it is not the partition's stream.
HOLD_OUT_SALT = 29


def is_fraction(value) -> bool:
    """``data.validation`` is a held-out fraction (a number), not a file name."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_config(cfg):
    """The keys' cross-checks (called from :func:`distnewton.config.resolve`);
    each refusal is one line naming the key."""
    dc, run = cfg["data"], cfg["run"]
    value = dc.get("validation")
    if run.get("early_stopping") is not None and value is None:
        raise UserError("run.early_stopping: needs data.validation (a file, or a fraction "
                        "of the training rows such as 0.1)")
    if value is None:
        return
    if is_fraction(value):
        if not 0.0 < value < 1.0:
            raise UserError(f"data.validation: a held-out fraction must be in (0, 1), "
                            f"got {value!r} (or give a file)")
        if dc["shards"] is not None:
            raise UserError("data.validation: a held-out fraction needs data.train (the "
                            "rows of data.shards are split already): give a file")
    if cfg["model"].get("multiclass") is not None:
        raise UserError(f"data.validation: not supported with model.multiclass: "
                        f"{cfg['model']['multiclass']} (yet)")


def hold_out(n, fraction, seed):
    """(rows kept for training, held-out rows), both sorted: round(fraction * n)
    rows drawn without replacement with ``seed`` (``data.seed``)."""
    held = int(round(fraction * n))
    if held < 1 or held >= n:
        raise UserError(f"data.validation: {fraction} of the {n} training rows holds out "
                        f"{held} rows: at least one must be held out and one kept")
    rng = np.random.default_rng(np.random.SeedSequence((int(seed), HOLD_OUT_SALT)))
    out = np.sort(rng.choice(n, held, replace=False))
    keep = np.ones(n, dtype=bool)
    keep[out] = False
    return np.flatnonzero(keep), out


def split_rows(cfg, X, y, weights):
    """(X, y, weights, (X_val, y_val)) with a held-out fraction carved out of
    the training rows; the arrays unchanged and None without one."""
    value = cfg["data"].get("validation")
    if not is_fraction(value):
        return X, y, weights, None
    keep, held = hold_out(X.shape[0], value, cfg["data"]["seed"])
    return (X[keep], y[keep], None if weights is None else weights[keep],
            (X[held], y[held]))


def columns(tracker) -> dict:
    """The history columns of ``tracker`` (none without one)."""
    return {} if tracker is None else dict(COLUMNS)


class Tracker:
    """The master's validation record: the best iterate by validation loss and
    the ``run.early_stopping`` rule (``patience`` None: record only)."""

    def __init__(self, data, patience=None):
        self.data, self.patience = data, patience
        self.best_loss, self.best_iteration, self.best_w = math.inf, None, None
        self.last_iteration = None

    @classmethod
    def build(cls, cfg, data):
        """The tracker of a run with validation rows ``data`` (None without)."""
        if data is None:
            return None
        return cls(data, cfg["run"].get("early_stopping"))

    def observe(self, iteration, accuracy, loss, w) -> dict:
        """Record iteration ``iteration``'s validation metrics at model ``w``;
        the history row's columns."""
        self.last_iteration = int(iteration)
        if loss < self.best_loss:              # NaN never improves
            self.best_loss, self.best_iteration = float(loss), int(iteration)
            self.best_w = np.array(w, dtype=np.float64, copy=True)
        return {"validation_loss": float(loss), "validation_accuracy": float(accuracy)}

    def stalled_for(self) -> int:
        """Iterations since the best validation loss (0 before any)."""
        if self.best_iteration is None:
            return 0
        return self.last_iteration - self.best_iteration

    def verdict(self):
        """(status, message) when ``run.early_stopping`` fires, else ("", "")."""
        if not self.patience or self.best_iteration is None:
            return "", ""
        waited = self.stalled_for()
        if waited < self.patience:
            return "", ""
        return "converged", (f"validation loss did not improve for {waited} iterations "
                             f"(run.early_stopping: {self.patience}); the model is "
                             f"iteration {self.best_iteration}'s, validation loss "
                             f"{self.best_loss:.6e}")
