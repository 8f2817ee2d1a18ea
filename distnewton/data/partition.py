"""Split the rows of a data set among workers.

Schemes (``partition(y, n_parts, scheme, seed, alpha)``):

* ``iid``: a seeded uniform random permutation of the rows, cut into parts
  whose sizes differ by at most one row;
* ``contiguous``: rows in file order, cut the same way (keeps any structure of
  the file, e.g. the groups of :func:`distnewton.data.synth.make_synthetic`);
* ``label_skew``: heterogeneous parts: for each class ``c`` the proportions
  ``p_c ~ Dirichlet(alpha * ones(n_parts))`` decide how that class's shuffled
  rows are shared among the parts (small ``alpha``: strong skew, large
  ``alpha``: close to iid).  Classes are the distinct label values; when there
  are more than ``MAX_CLASSES`` of them (regression targets) the labels are
  first binned into ``QUANTILE_BINS`` quantile bins.  Every part receives at
  least one row: while a part is empty, one random row of the largest part
  moves to it.

Every part is a sorted int64 array of row indices; the parts are disjoint and
cover all rows.  The result depends only on ``(y, n_parts, scheme, seed,
alpha)``, so all ranks can compute it independently.
"""

from __future__ import annotations

import numbers

import numpy as np

from distnewton.errors import UserError

SCHEMES = ("iid", "contiguous", "label_skew")
MAX_CLASSES = 64
QUANTILE_BINS = 10


def _split_sorted(order: np.ndarray, n_parts: int) -> list[np.ndarray]:
    return [np.sort(p).astype(np.int64) for p in np.array_split(order, n_parts)]


def _classes(y: np.ndarray) -> np.ndarray:
    """Class id per row: the distinct labels, or quantile bins of many values."""
    values, inverse = np.unique(y, return_inverse=True)
    if len(values) <= MAX_CLASSES:
        return inverse.ravel()
    edges = np.quantile(y, np.linspace(0, 1, QUANTILE_BINS + 1)[1:-1])
    return np.searchsorted(edges, y, side="right")


def _label_skew(y: np.ndarray, n_parts: int, rng, alpha: float) -> list[np.ndarray]:
    n = len(y)
    cls = _classes(y)
    owner = np.empty(n, dtype=np.int64)
    for c in np.unique(cls):
        rows = np.flatnonzero(cls == c)
        rng.shuffle(rows)
        p = rng.dirichlet(np.full(n_parts, alpha))
        cuts = np.floor(np.cumsum(p)[:-1] * len(rows)).astype(np.int64)
        for k, chunk in enumerate(np.split(rows, np.clip(cuts, 0, len(rows)))):
            owner[chunk] = k
    counts = np.bincount(owner, minlength=n_parts)
    for k in np.flatnonzero(counts == 0):
        donor = int(np.argmax(counts))
        members = np.flatnonzero(owner == donor)
        owner[members[rng.integers(len(members))]] = k
        counts[donor] -= 1
        counts[k] += 1
    order = np.argsort(owner, kind="stable")
    return [part.astype(np.int64)
            for part in np.split(order, np.cumsum(counts)[:-1])]


def partition(y, n_parts, scheme="iid", seed=0, alpha=0.5) -> list[np.ndarray]:
    """Return ``n_parts`` sorted int64 arrays of row indices (see module doc).

    ``y`` gives the rows (only its length matters except for ``label_skew``).
    Raises ``UserError`` for fewer than one part, more parts than rows, an
    unknown scheme or a non-positive ``alpha``.
    """
    y = np.asarray(y).ravel()
    n = len(y)
    if (isinstance(n_parts, bool) or not isinstance(n_parts, numbers.Integral)
            or n_parts < 1):
        raise UserError(f"number of workers must be an integer >= 1, got {n_parts!r}")
    n_parts = int(n_parts)
    if scheme not in SCHEMES:
        raise UserError(f"unknown partition scheme {scheme!r}: choose one of "
                        + ", ".join(SCHEMES))
    if n_parts > n:
        raise UserError(f"{n_parts} workers but only {n} samples: "
                        "each worker needs at least one row")
    if scheme == "contiguous":
        return _split_sorted(np.arange(n, dtype=np.int64), n_parts)
    rng = np.random.default_rng(seed)
    if scheme == "iid":
        return _split_sorted(rng.permutation(n), n_parts)
    if not (isinstance(alpha, numbers.Real) and np.isfinite(alpha) and alpha > 0):
        raise UserError(f"label_skew alpha must be a positive number, got {alpha!r}")
    return _label_skew(y, n_parts, rng, float(alpha))
