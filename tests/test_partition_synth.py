"""Tests for distnewton.data: row partitions and synthetic data."""

import hashlib

import numpy as np
import pytest
import scipy.sparse as sp

from distnewton.data import make_synthetic, partition
from distnewton.errors import UserError


# --------------------------------------------------------------- partitions


@pytest.mark.parametrize("scheme", ["iid", "contiguous", "label_skew"])
@pytest.mark.parametrize("n,k", [(10, 3), (1000, 7), (5, 5)])
def test_partition_disjoint_cover(scheme, n, k):
    y = np.arange(n) % 2
    parts = partition(y, k, scheme, seed=1)
    assert len(parts) == k and all(len(p) >= 1 for p in parts)
    assert all(p.dtype == np.int64 and np.all(np.diff(p) > 0) for p in parts)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(n))
    if scheme != "label_skew":
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= 1
    if scheme == "contiguous":
        assert np.array_equal(np.concatenate(parts), np.arange(n))


@pytest.mark.parametrize("scheme", ["iid", "label_skew"])
def test_partition_seeded(scheme):
    y = np.repeat([0, 1, 2], 100)
    a = partition(y, 4, scheme, seed=7)
    b = partition(y, 4, scheme, seed=7)
    c = partition(y, 4, scheme, seed=8)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c))


def test_label_skew_skews():
    y = np.where(np.random.default_rng(0).random(32561) < 0.24, 1.0, -1.0)  # a9a-like
    spread = {}
    for scheme in ("iid", "label_skew"):
        parts = partition(y, 8, scheme, seed=0, alpha=0.5)
        spread[scheme] = np.std([np.mean(y[p] > 0) for p in parts])
    assert spread["iid"] < 0.02 and spread["label_skew"] > 0.1


def test_label_skew_tiny_alpha_keeps_every_part_nonempty():
    parts = partition(np.zeros(20), 20, "label_skew", seed=3, alpha=1e-3)
    assert sorted(len(p) for p in parts) == [1] * 20


def test_partition_errors():
    with pytest.raises(UserError) as exc:
        partition(np.zeros(3), 4)
    assert str(exc.value) == "4 workers but only 3 samples: each worker needs at least one row"
    with pytest.raises(UserError, match="got 0"):
        partition(np.zeros(3), 0)
    with pytest.raises(UserError, match="'random'.*iid, contiguous, label_skew"):
        partition(np.zeros(3), 1, "random")
    with pytest.raises(UserError, match="alpha"):
        partition(np.zeros(3), 1, "label_skew", alpha=0)


# --------------------------------------------------------------- synthetic


def test_synthetic_shapes_and_reproducibility():
    X, y, w = make_synthetic(2000, 50, density=0.1, seed=3, noise=0.1)
    assert sp.isspmatrix_csr(X) and X.shape == (2000, 50) and X.dtype == np.float64
    assert X.has_canonical_format and np.all(np.diff(X.indptr) >= 1)
    assert abs(X.nnz / (2000 * 50) - 0.1) < 0.01
    assert set(np.unique(y)) == {-1.0, 1.0} and w.shape == (50,)
    flipped = np.mean(np.where(X @ w >= 0, 1.0, -1.0) != y)
    assert flipped == pytest.approx(0.1)
    X2, y2, w2 = make_synthetic(2000, 50, density=0.1, seed=3, noise=0.1)
    assert (X != X2).nnz == 0 and np.array_equal(y, y2) and np.array_equal(w, w2)
    X3, _, _ = make_synthetic(2000, 50, density=0.1, seed=4, noise=0.1)
    assert (X != X3).nnz > 0


def test_synthetic_ridge_sparse_and_heterogeneous():
    X, y, w = make_synthetic(500, 1000, density=1e-4, seed=0, noise=0.0, loss="ridge")
    assert np.all(np.diff(X.indptr) >= 1)          # every row has a non-zero
    assert np.allclose(y, X @ w)
    base, _, _ = make_synthetic(4000, 40, density=0.5, seed=2, n_groups=4)
    het, _, _ = make_synthetic(4000, 40, density=0.5, seed=2, n_groups=4, heterogeneity=1.0)
    assert np.array_equal(base.indices, het.indices)
    ratio = het.multiply(het).sum(axis=0).A1 / base.multiply(base).sum(axis=0).A1
    group_ratio = [(het[r].multiply(het[r]).sum(axis=0).A1 + 1e-12)
                   / (base[r].multiply(base[r]).sum(axis=0).A1 + 1e-12)
                   for r in np.array_split(np.arange(4000), 4)]
    assert np.all(ratio > 1.0)
    for g in group_ratio:                          # each group scales 10 of 40 columns by 4
        assert np.sum(np.isclose(g, 16.0)) == 10 and np.sum(np.isclose(g, 1.0)) == 30


def test_synthetic_errors():
    for kwargs in ({"density": 0}, {"noise": 2.0}, {"heterogeneity": 1.5},
                   {"loss": "hinge"}, {"n_groups": 0}):
        with pytest.raises(UserError):
            make_synthetic(10, 5, **kwargs)


#: sha256 (first 16 hex digits) of data, indices, indptr (int64), y and w_true as
#: make_synthetic drew them before its speed-up: the same seed draws the same set
PINNED = [
    (dict(n_samples=3000, n_features=200, density=0.02, seed=0), "f4eed1d99491593f"),
    (dict(n_samples=500, n_features=1000, density=1e-4, seed=3, loss="ridge", noise=0.5),
     "f1b6b6788b6ca34f"),
    (dict(n_samples=400, n_features=30, density=1.0, seed=1), "63419f8d51af1c78"),
    (dict(n_samples=2000, n_features=50, density=0.3, seed=7, n_groups=4, heterogeneity=0.5),
     "1b673cfd3d4946c5"),
]


@pytest.mark.parametrize("kwargs,digest", PINNED)
def test_synthetic_draws_are_pinned(kwargs, digest):
    X, y, w = make_synthetic(**kwargs)
    h = hashlib.sha256()
    for a in (X.data, X.indices.astype(np.int64), X.indptr.astype(np.int64), y, w):
        h.update(np.ascontiguousarray(a).tobytes())
    assert X.indices.dtype == np.int32 and h.hexdigest()[:16] == digest
