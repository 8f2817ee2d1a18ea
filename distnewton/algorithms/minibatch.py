"""Mini-batch gradients on a worker's shard: the one implementation that Local SGD,
scaled Local SGD, RANL and IST share (worker side, no communication).

A mini-batch B is a set of rows of worker k's shard.  The data part of its gradient
is the sum

    s_B(w) = sum_{j in B} l'(x_j.w, y_j) x_j                          (:func:`grad_sum`)

which each method scales as its paper does: Local SGD and RANL take the mini-batch
gradient of the local objective f_k,

    grad f_k(w; B) = s_B(w) / |B| + lambda w                          (:func:`mean_grad`)

and IST the unbiased estimate (n_k/|B|) s_B(w) of the shard's sum.

Where the rows come from:

* Local SGD (and its scaled variants): consecutive rows of a fresh permutation of
  the shard per epoch (:func:`batches`, from the worker's stream), handed over as
  the rows' CSR entries (:class:`Entries`): no matrix is built for a batch of a few
  rows, and a single row takes a scalar path (:func:`stochastic_grad`);
* RANL and IST: ``batch`` distinct rows drawn afresh for every gradient from the
  worker's stream (:func:`sample_rows`: one ``rng.choice`` call, sorted), or the
  whole shard when ``batch`` is empty or >= n_k, handed over as a CSR matrix
  (:class:`Rows`).

:func:`grad_sum` evaluates both forms with the same products added in the same
order (sparse matrix-vector products on a :class:`Rows`, bincounts over the
entries of an :class:`Entries`), so a batch gives bit-identical sums either way;
the matrix form is the faster one for large batches.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..stopping import local_range


class Entries(NamedTuple):
    """A mini-batch as the CSR entries of its rows: column indices ``ind``, values
    ``val``, the row (0..|B|-1, within the batch) of every entry, or None for a
    one-row batch, and the rows' labels ``y``."""

    ind: np.ndarray
    val: np.ndarray
    rows: np.ndarray | None
    y: np.ndarray
    s: np.ndarray | None = None         # the rows' weights (None: unweighted)


class Rows(NamedTuple):
    """A mini-batch as a CSR matrix of its rows (|B| x d) and their labels."""

    X: object
    y: np.ndarray
    s: np.ndarray | None = None         # the rows' weights (None: unweighted)


def sample_rows(rng, n, batch):
    """``batch`` distinct rows out of n, sorted (one ``rng.choice`` draw), or None
    for the whole shard when ``batch`` is None or >= n (nothing drawn)."""
    if batch is None or batch >= n:
        return None
    return np.sort(rng.choice(n, size=int(batch), replace=False))


def rows_of(shard, rows=None):
    """The :class:`Rows` batch of ``rows`` of the shard (None: all of them)."""
    if rows is None:
        return Rows(shard.X, shard.y, shard.s)
    return Rows(shard.X[rows], shard.y[rows], None if shard.s is None else shard.s[rows])


def grad_sum(loss, w, B):
    """s_B(w) = sum_{j in B} l'(x_j.w, y_j) x_j for a :class:`Rows` or a multi-row
    :class:`Entries` batch (see the module docstring: the same sums either way)."""
    if isinstance(B, Rows):
        c = loss.deriv(B.X @ w, B.y)
        return B.X.T @ (c if B.s is None else c * B.s)
    z = np.bincount(B.rows, weights=B.val * w[B.ind], minlength=len(B.y))
    c = loss.deriv(z, B.y)
    if B.s is not None:
        c = c * B.s
    return np.bincount(B.ind, weights=B.val * c[B.rows], minlength=len(w))


def mean_grad(loss, lam, w, B):
    """grad f_k(w; B) = s_B(w)/|B| + lambda w."""
    return grad_sum(loss, w, B) / len(B.y) + lam * w


def stochastic_grad(loss, lam, w, ind, val, rows, yb, sb=None):
    """grad f_k(w; B) for the :class:`Entries` (ind, val, rows, yb, sb) of Local SGD's
    batches; a single row (rows None) in scalar arithmetic on its sparse entries."""
    if rows is None:
        g = lam * w
        c = loss.deriv(float(np.dot(val, w[ind])), yb[0])
        g[ind] += (c if sb is None else c * float(sb[0])) * val
        return g
    return mean_grad(loss, lam, w, Entries(ind, val, rows, yb, sb))


def batches(shard, rng, state, batch, steps):
    """Yield ``steps`` mini-batches (:class:`Entries`) of consecutive rows of the
    current epoch's permuted shard, drawing a fresh permutation (and permuting the
    CSR once) when an epoch ends.  The epoch position persists in ``state``."""
    n = shard.n
    for _ in local_range(steps, "local SGD steps"):      # a stop signal cuts the phase
        if state["pos"] >= n:
            perm = rng.permutation(n)
            X = shard.X[perm]
            state.update(pos=0, indptr=X.indptr.tolist(), ind=X.indices.astype(np.intp),
                         val=X.data, y=shard.y[perm],
                         rows=np.repeat(np.arange(n), np.diff(X.indptr)))
            if shard.s is not None:             # (the key only exists for weighted rows)
                state["s"] = shard.s[perm]
        s = state["pos"]
        e = min(s + batch, n)
        a, b = state["indptr"][s], state["indptr"][e]
        state["pos"] = e
        yield Entries(state["ind"][a:b], state["val"][a:b],
                      state["rows"][a:b] - s if e - s > 1 else None, state["y"][s:e],
                      state["s"][s:e] if "s" in state else None)
