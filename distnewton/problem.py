"""The problem a run solves: what the master and the algorithms know of it.

:class:`Problem` is what the master (and every algorithm) knows of the data:
sizes, loss and lambda, no rows.  :class:`Setup` adds the rows and their
partition; :mod:`distnewton.ingest` builds it from a resolved config.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .errors import UserError
from .objectives import penalty_weights


@dataclass
class Problem:
    """What the master knows of the data: sizes, loss and lambda (no rows)."""

    n: int              # training rows over all workers
    d: int              # features (including the intercept column if any)
    lam: float          # lambda, the L2 weight
    loss: str           # "logistic" or "ridge"
    sizes: tuple        # n_k for k = 1..K
    free_intercept: bool = False    # the last column is an unpenalised intercept
    weighted: bool = False          # rows carry weights (data.weights, model.class_weight)
    l1: float = 0.0                 # the L1 weight lambda_1 (model.l1, model.l1_ratio)

    @property
    def penalty(self):
        """The L2 weights every objective, gradient and Hessian uses: lambda, or
        lambda (1, ..., 1, 0) when the intercept is not regularised
        (:func:`~distnewton.objectives.penalty_weights`).  ``lam`` stays the number."""
        return penalty_weights(self.lam, self.d, self.free_intercept)

    @property
    def l1_weights(self):
        """The L1 weights lambda_1 of the d coordinates (0 for a free intercept, as
        :attr:`penalty`): the term lambda_1 ||w||_1 of :mod:`distnewton.l1`."""
        return penalty_weights(self.l1, self.d, self.free_intercept)

    #: non-zeros per shard, and sum_j nnz(x_j)^2 per shard (the cost of forming
    #: X_k^T D X_k from sparse rows): what ``solver: auto`` weighs; None when unknown
    nnz: tuple | None = None
    row_nnz_sq: tuple | None = None


def add_intercept(X):
    """``[X, 1]``: the constant feature of ``model.fit_intercept`` (regularised
    like the others), appended as the last column."""
    return sp.hstack([X, np.ones((X.shape[0], 1))], format="csr")


@dataclass
class Setup:
    """What the master prepares before any worker starts computing."""

    X: sp.csr_matrix
    y: np.ndarray
    parts: list
    problem: Problem
    test: tuple | None        # (X_test, y_test) or None
    dataset: str
    sha256: str
    label_map: dict
    w0: np.ndarray | None = None    # model.w0, the warm start (None: zeros)
    weights: np.ndarray | None = None   # per-row weights s_j (None: unweighted)
    cache: str = ""           # "read FOLDER", "written FOLDER" or "" (data.cache)
    timings: dict | None = None     # seconds per setup phase (parallel ingestion)
    validation: tuple | None = None     # (X_val, y_val) of data.validation, or None


def free_intercept(cfg):
    """``model.fit_intercept`` with ``model.regularize_intercept: false``."""
    mc = cfg["model"]
    return bool(mc["fit_intercept"] and not mc.get("regularize_intercept", True))


def lambda_value(cfg, n):
    """The L2 weight: ``model.lambda`` ('1/n' is 1/n), times 1 - ``model.l1_ratio``
    when an elastic net splits it (Spark's elasticNetParam, glmnet's alpha)."""
    lam = cfg["model"]["lambda"]
    lam = 1.0 / n if isinstance(lam, str) else float(lam)
    ratio = cfg["model"].get("l1_ratio")
    return lam if ratio is None else (1.0 - ratio) * lam


def l1_value(cfg, n):
    """The L1 weight: ``model.l1``, or ``model.l1_ratio`` times ``model.lambda``."""
    mc = cfg["model"]
    ratio = mc.get("l1_ratio")
    if ratio is None:
        return float(mc.get("l1") or 0.0)
    lam = mc["lambda"]
    return ratio * (1.0 / n if isinstance(lam, str) else float(lam))


def keep_rows(parts, per_worker, seed):
    """``data.rows_per_worker``: ``per_worker`` rows of every part, drawn with
    ``data.seed`` (sorted); the others are left out of the problem."""
    small = min(len(p) for p in parts)
    if small < per_worker:
        raise UserError(f"data.rows_per_worker: {per_worker} rows per worker, but a worker's "
                        f"part has only {small} (use fewer workers or rows)")
    rng = np.random.default_rng(np.random.SeedSequence((int(seed), 17)))
    return [np.sort(rng.choice(p, per_worker, replace=False)) for p in parts]


IN_MEMORY = "<in-memory>"


def array_data(X, y):
    """``distnewton.solve(data=(X, y))``: CSR float64 X and float64 y, checked."""
    X = sp.csr_matrix(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if X.shape[0] != y.shape[0]:
        raise UserError(f"data: X has {X.shape[0]} rows but y has {y.shape[0]} labels")
    if X.shape[0] == 0:
        raise UserError("data: X has no rows")
    if not (np.all(np.isfinite(X.data)) and np.all(np.isfinite(y))):
        raise UserError("data: X and y must be finite (NaN or inf found)")
    return X, y
