"""Seeded synthetic sparse regression / classification problems.

``make_synthetic`` draws (all from ``np.random.default_rng(seed)``, split into
independent child streams so that changing ``heterogeneity`` or ``noise`` does
not change the other draws):

* the sparsity pattern: every cell is non-zero independently with probability
  ``density`` (drawn as geometric gaps over the flattened matrix, so the cost
  is proportional to the number of non-zeros, with no loop over rows); a row
  left empty gets one non-zero in a random column;
* the values: standard normal divided by ``sqrt(density * n_features)`` (the
  expected number of non-zeros per row, at least 1), so rows have norm ~1;
* groups: with ``n_groups > 1`` the rows form ``n_groups`` contiguous groups
  and the columns a random partition into ``n_groups`` sets; group ``g``
  multiplies its own column set by ``1 + 3 * heterogeneity``.  Contiguous
  partitions of the rows then have different local Hessians;
* ``w_true ~ N(0, I)``; logistic: ``y = sign(X w_true)`` (0 -> +1) with
  ``round(noise * n_samples)`` labels flipped; ridge:
  ``y = X w_true + noise * N(0, 1)``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from distnewton.errors import UserError


def _pattern(rng, n: int, d: int, density: float):
    """Row ids, column ids (sorted by row, then column) and row counts of the
    Bernoulli(density) cells of an n x d matrix."""
    total = n * d
    if density >= 1.0:
        flat = np.arange(total, dtype=np.int64)
    else:
        pieces, end = [], -1
        mean = total * density
        while end < total - 1:
            size = int(mean + 6 * np.sqrt(mean + 1) + 100)
            pos = np.cumsum(rng.geometric(density, size=size), dtype=np.int64)
            pos += end
            pieces.append(pos[:np.searchsorted(pos, total)])    # pos is increasing
            end = int(pos[-1])
        flat = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
    rows = flat // d
    cols = flat - rows * d                             # np.divmod, faster
    counts = np.bincount(rows, minlength=n)
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        rows = np.concatenate([rows, empty])
        cols = np.concatenate([cols, rng.integers(0, d, size=len(empty))])
        order = np.argsort(rows, kind="stable")
        rows, cols = rows[order], cols[order]
        counts[empty] = 1
    return rows, cols, counts


def _check(n_samples, n_features, density, noise, heterogeneity, n_groups, loss):
    for name, v in (("n_samples", n_samples), ("n_features", n_features),
                    ("n_groups", n_groups)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise UserError(f"synthetic {name} must be an integer >= 1, got {v!r}")
    if not 0 < density <= 1:
        raise UserError(f"synthetic density must be in (0, 1], got {density!r}")
    if loss not in ("logistic", "ridge", "squared_hinge", "poisson"):
        raise UserError(f"unknown loss {loss!r}: choose one of logistic, ridge, squared_hinge, "
                        "poisson")
    top = np.inf if loss in ("ridge", "poisson") else 1
    if not 0 <= noise <= top:
        raise UserError(f"synthetic noise must be in [0, {top}] for {loss}, got {noise!r}")
    if not 0 <= heterogeneity <= 1:
        raise UserError(f"synthetic heterogeneity must be in [0, 1], got {heterogeneity!r}")
    if n_groups > n_samples:
        raise UserError(f"synthetic n_groups={n_groups} exceeds n_samples={n_samples}")


def make_synthetic(n_samples, n_features, density=0.1, seed=0, noise=0.1,
                   heterogeneity=0.0, n_groups=1, loss="logistic"):
    """Return ``(X, y, w_true)``: float64 CSR (canonical), labels, true weights.

    See the module docstring for the model.  Logistic labels are in {-1, +1};
    poisson labels are counts drawn from Poisson(exp(x.w_true)) (the margin capped
    at 20; ``noise`` unused).
    Raises ``UserError`` for out-of-range arguments.
    """
    _check(n_samples, n_features, density, noise, heterogeneity, n_groups, loss)
    n, d = int(n_samples), int(n_features)
    r_pat, r_val, r_w, r_grp, r_noise = np.random.default_rng(seed).spawn(5)
    rows, cols, counts = _pattern(r_pat, n, d, float(density))
    vals = r_val.standard_normal(len(rows))
    vals /= np.sqrt(max(1.0, density * d))
    w_true = r_w.standard_normal(d)
    if n_groups > 1 and heterogeneity > 0:
        col_group = np.empty(d, dtype=np.int64)
        for g, cset in enumerate(np.array_split(r_grp.permutation(d), n_groups)):
            col_group[cset] = g
        row_group = np.repeat(np.arange(n_groups),
                              [len(a) for a in np.array_split(np.arange(n), n_groups)])
        vals[col_group[cols] == row_group[rows]] *= 1.0 + 3.0 * heterogeneity
    indptr = np.concatenate([[0], np.cumsum(counts)])
    itype = np.int32 if max(len(vals), d) < 2**31 - 1 else np.int64
    X = sp.csr_matrix((vals, cols.astype(itype), indptr.astype(itype)), shape=(n, d))
    X.sort_indices()
    margin = X @ w_true
    if loss == "poisson":                     # counts of mean exp(x.w_true) (noise unused)
        y = r_noise.poisson(np.exp(np.minimum(margin, 20.0))).astype(np.float64)
    elif loss != "ridge":                     # logistic, squared_hinge: classes
        y = np.where(margin >= 0, 1.0, -1.0)
        flip = r_noise.choice(n, size=int(round(noise * n)), replace=False)
        y[flip] = -y[flip]
    else:
        y = margin + noise * r_noise.standard_normal(n)
    return X, y, w_true
