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


def lambda_value(cfg, n):
    lam = cfg["model"]["lambda"]
    return 1.0 / n if isinstance(lam, str) else float(lam)


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def prepare(cfg, n_workers) -> Setup:
    """Master: read, map and partition the data; every input error is a UserError."""
    from .data import make_synthetic, map_labels, partition, read_libsvm, write_libsvm
    from .data.registry import resolve_path
    dc, mc = cfg["data"], cfg["model"]
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
    y, label_map = map_labels(ds.y, mc["loss"], dc["positive_labels"], source=train)
    X = ds.X
    test = None
    if dc["test"]:
        ts = read_libsvm(resolve_path(dc["test"], "data.test"), n_features=X.shape[1],
                         zero_based=dc["zero_based"])
        yt, _ = map_labels(ts.y, mc["loss"], dc["positive_labels"], source=dc["test"],
                           reference=label_map)
        test = (ts.X, yt)
    if mc["fit_intercept"]:
        X = add_intercept(X)
        if test:
            test = (add_intercept(test[0]), test[1])
    n, d = X.shape
    parts = partition(y, n_workers, dc["partition"], seed=dc["seed"], alpha=dc["partition_alpha"])
    counts = np.diff(X.indptr).astype(np.float64)
    problem = Problem(n=n, d=d, lam=lambda_value(cfg, n), loss=mc["loss"],
                      sizes=tuple(len(p) for p in parts),
                      nnz=tuple(int(counts[p].sum()) for p in parts),
                      row_nnz_sq=tuple(float((counts[p] ** 2).sum()) for p in parts))
    return Setup(X, y, parts, problem, test, train, file_sha256(train), label_map)
