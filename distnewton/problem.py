"""The problem a run solves, set up on the master before any worker computes.

:class:`Problem` is what the master (and every algorithm) knows of the data:
sizes, loss and lambda, no rows.  :class:`Setup` adds the rows and their
partition; :func:`prepare` builds it from a resolved config (reading, label
mapping, the intercept column, partitioning), turning every input error into
a :class:`~distnewton.errors.UserError`.  :mod:`distnewton.driver` and
:mod:`distnewton.data.split` both build on this module; it imports neither.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .errors import UserError


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

    @property
    def penalty(self):
        """The L2 weights every objective, gradient and Hessian uses: lambda, or
        lambda (1, ..., 1, 0) when the intercept is not regularised
        (:func:`~distnewton.objectives.penalty_weights`).  ``lam`` stays the number."""
        from .objectives import penalty_weights
        return penalty_weights(self.lam, self.d, self.free_intercept)

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


def free_intercept(cfg):
    """``model.fit_intercept`` with ``model.regularize_intercept: false``."""
    mc = cfg["model"]
    return bool(mc["fit_intercept"] and not mc.get("regularize_intercept", True))


def lambda_value(cfg, n):
    lam = cfg["model"]["lambda"]
    return 1.0 / n if isinstance(lam, str) else float(lam)


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


def prepare(cfg, n_workers, arrays=None) -> Setup:
    """Master: read, map and partition the data; every input error is a UserError.

    ``arrays``: (X, y) given in memory (the Python API's ``data=``) instead of
    ``data.train``; ``data.n_features`` pads X with empty columns."""
    from .data import make_synthetic, read_libsvm, write_libsvm
    from .data.registry import resolve_path
    dc, mc = cfg["data"], cfg["model"]
    if arrays is not None:
        return prepare_arrays(cfg, n_workers, *arrays)
    if dc["shards"]:
        from .data.split import prepare_shards
        return prepare_shards(cfg, n_workers, load_rows=cfg["run"]["backend"] == "sim")
    train = dc["train"]
    if dc["synth"] is None:
        train = resolve_path(train, "data.train")
    if dc["synth"] is not None and not os.path.exists(train):
        try:
            X, y, _ = make_synthetic(**{"loss": mc["loss"], **dc["synth"]})
        except TypeError as exc:
            raise UserError(f"data.synth: {exc}") from None
        os.makedirs(os.path.dirname(os.path.abspath(train)), exist_ok=True)
        write_libsvm(train, X, y)
    ds = read_libsvm(train, n_features=dc["n_features"], zero_based=dc["zero_based"])
    y, label_map = labels(cfg, ds.y, train)
    from .weights import row_weights
    weights = row_weights(cfg, ds.y, y, label_map)
    X = ds.X
    test = None
    if dc["test"]:
        ts = read_libsvm(resolve_path(dc["test"], "data.test"), n_features=X.shape[1],
                         zero_based=dc["zero_based"])
        yt, _ = labels(cfg, ts.y, dc["test"], reference=label_map)
        test = (ts.X, yt)
    return finish_setup(cfg, n_workers, X, y, test, train, file_sha256(train), label_map,
                        weights)


def labels(cfg, y, source, reference=None):
    """(targets, label map): :func:`~distnewton.data.libsvm.map_labels`, or the raw
    labels and the class table under ``model.multiclass: ovr``."""
    if cfg["model"].get("multiclass") == "ovr":
        from .multiclass import ovr_labels
        return ovr_labels(y, source, reference)
    from .data import map_labels
    return map_labels(y, cfg["model"]["loss"], cfg["data"]["positive_labels"], source=source,
                      reference=reference)


def prepare_arrays(cfg, n_workers, X, y, sample_weight=None):
    """:func:`prepare` for arrays in memory: the dataset is named ``<in-memory>``
    and its sha256 is that of X's CSR buffers and y (and the sample weights)."""
    from .weights import row_weights
    X, raw = array_data(X, y)
    d = cfg["data"]["n_features"]
    if d is not None:
        if d < X.shape[1]:
            raise UserError(f"data.n_features: {d}, but X has {X.shape[1]} columns")
        X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], d))
    y, label_map = labels(cfg, raw, "data (y)")
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64).ravel()
        if sample_weight.shape != y.shape or not np.all(np.isfinite(sample_weight)) \
                or np.any(sample_weight < 0):
            raise UserError(f"data: sample weights must be {y.size} finite numbers >= 0")
    weights = row_weights(cfg, raw, y, label_map, sample=sample_weight)
    h = hashlib.sha256()
    for a in (X.indptr, X.indices, X.data, y) + (() if weights is None else (weights,)):
        h.update(np.ascontiguousarray(a).tobytes())
    return finish_setup(cfg, n_workers, X, y, None, IN_MEMORY, h.hexdigest(), label_map,
                        weights)


def finish_setup(cfg, n_workers, X, y, test, train, sha, label_map, weights=None):
    """Intercept, partition, the Problem: the part every data source shares."""
    from .data import partition
    dc, mc = cfg["data"], cfg["model"]
    if mc["fit_intercept"]:
        X = add_intercept(X)
        if test:
            test = (add_intercept(test[0]), test[1])
    n, d = X.shape
    parts = partition(y, n_workers, dc["partition"], seed=dc["seed"], alpha=dc["partition_alpha"])
    if dc.get("rows_per_worker"):
        parts = keep_rows(parts, int(dc["rows_per_worker"]), dc["seed"])
        n = sum(len(p) for p in parts)
    if label_map.get("rule") == "ovr":      # class sizes over the rows kept
        rows = np.concatenate(parts)
        label_map["counts"] = [int(np.sum(y[rows] == c)) for c in label_map["classes"]]
    counts = np.diff(X.indptr).astype(np.float64)
    problem = Problem(n=n, d=d, lam=lambda_value(cfg, n), loss=mc["loss"],
                      sizes=tuple(len(p) for p in parts), free_intercept=free_intercept(cfg),
                      weighted=weights is not None,
                      nnz=tuple(int(counts[p].sum()) for p in parts),
                      row_nnz_sq=tuple(float((counts[p] ** 2).sum()) for p in parts))
    return Setup(X, y, parts, problem, test, train, sha, label_map, weights=weights)
