"""RANL in plain numpy, written from the paper's text (Chen et al., arXiv 2308.10154,
summarised in ../shared/papers/000_ddad30882eed9299.txt), not from distnewton's code:
the independent reference that tests/test_ranl_reference.py holds distnewton's
iterates to.

The paper's method, as its summary states it:

* once, at x0: H = (1/N) sum_i Hess F_i(x0, xi_i^0) (here weighted by the shard
  sizes, n_i / n, which is the paper's mean for equal shards), projected onto
  {M symmetric, M >= mu I}: [H]_mu = V max(Lambda, mu) V^T;
* every round t: worker i trains the regions of its mask m_i (every region by
  >= tau workers) and returns the gradient of its *pruned* sub-model,
  grad F_i(x_t (.) m_i; xi_i^t), on those regions;
* the server keeps the latest block of every (worker, region) and averages
  region q over the workers that ever sent it (stale blocks reused);
* x_{t+1} = x_t - eta [H]_mu^{-1} g_t.

What the paper leaves open is taken from distnewton's *documentation* (not its
code), because the random streams must be the same for the iterates to agree:

* regions: Q contiguous blocks, coordinate j in region floor(j Q / d)
  (``distnewton/algorithms/ranl/masks.py``'s docstring);
* capacities 'uniform(a, b)': ``default_rng(SeedSequence((seed, 0, 2))).uniform(a,
  b, K)``; worker i trains s_i = floor(c_i Q) regions (at least 1);
* masks: stream ``SeedSequence((seed, 0, 1))``; per round each worker draws s_i
  distinct regions (``rng.choice(Q, s_i, replace=False)``), then, while a region
  has fewer than tau workers, a slot moves to a least covered region q from a
  most covered region r (q, r and the worker that moves drawn uniformly with
  ``rng.integers``) - the repair the masks docstring describes;
* mini-batches: worker k's stream ``SeedSequence((seed, k + 1))``, ``batch``
  distinct rows (one ``rng.choice``, sorted) per gradient, the whole shard when
  ``batch`` is None or >= n_k (``distnewton/algorithms/minibatch.py``);
* the aggregate weights region q's blocks by the shard sizes n_k of the workers
  that have sent it (the ranl docstring's step 3);
* ``eval_at="full"``: the variant whose gradients are taken at x_t itself (not the
  pruned sub-model), masked to the trained regions.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit


def layout(d, Q):
    """Region of every coordinate: Q contiguous blocks."""
    return np.arange(d) * Q // d


def capacities(spec, K, seed):
    """The K capacities: a number, a list, or ('uniform', a, b) drawn from the run seed."""
    if isinstance(spec, tuple):
        _, a, b = spec
        rng = np.random.default_rng(np.random.SeedSequence((seed, 0, 2)))
        return rng.uniform(a, b, size=K)
    return np.broadcast_to(np.asarray(spec, dtype=float), (K,)).copy()


def masks(rng, sizes, Q, tau):
    """K x Q masks of the given row sizes, every region covered >= tau times."""
    M = np.zeros((len(sizes), Q), dtype=bool)
    for i, s in enumerate(sizes):
        M[i, rng.choice(Q, size=int(s), replace=False)] = True
    while M.sum(axis=0).min() < tau:
        cover = M.sum(axis=0)
        least = np.flatnonzero(cover == cover.min())
        q = least[rng.integers(len(least))]
        most = np.flatnonzero(cover == cover.max())
        r = most[rng.integers(len(most))]
        can = np.flatnonzero(M[:, r] & ~M[:, q])
        i = can[rng.integers(len(can))]
        M[i, r], M[i, q] = False, True
    return M


def loss_derivatives(loss, m, y):
    """(l'(m, y), l''(m, y)) of the logistic loss log(1 + e^{-y m}) or 0.5 (m - y)^2."""
    if loss == "ridge":
        return m - y, np.ones_like(m)
    return -y * expit(-y * m), expit(m) * expit(-m)


def shard_gradient(loss, X, y, z, lam, rows):
    """grad F_k(z) on ``rows`` (all when None): mean_j l'(x_j.z) x_j + lam z."""
    if rows is not None:
        X, y = X[rows], y[rows]
    return X.T @ loss_derivatives(loss, X @ z, y)[0] / len(y) + lam * z


def projected_hessian(loss, shards, x0, lam, mu):
    """[H]_mu of H = sum_k (n_k/n) Hess F_k(x0): eigenvalues clipped below at mu."""
    n = sum(len(y) for _, y in shards)
    H = sum(X.T @ (X * loss_derivatives(loss, X @ x0, y)[1][:, None]) for X, y in shards) / n
    H = 0.5 * (H + H.T) + lam * np.eye(len(x0))
    evals, V = np.linalg.eigh(H)
    return (V * np.maximum(evals, mu)) @ V.T


def ranl(shards, lam, rounds, *, loss="logistic", Q=10, caps=1.0, tau=1, mu=None,
         eta=1.0, batch=None, eval_at="pruned", seed=0):
    """The iterates x_0 .. x_rounds of RANL on dense shards [(X_k, y_k)], x_0 = 0.

    ``caps``: a number, a list of K, or ('uniform', a, b).  Returns a
    (rounds + 1) x d array.
    """
    K, d = len(shards), shards[0][0].shape[1]
    region = layout(d, Q)
    sizes = np.clip(np.floor(capacities(caps, K, seed) * Q), 1, Q).astype(int)
    mask_rng = np.random.default_rng(np.random.SeedSequence((seed, 0, 1)))
    worker_rng = [np.random.default_rng(np.random.SeedSequence((seed, k + 1))) for k in range(K)]
    n_k = np.array([len(y) for _, y in shards], dtype=float)
    x = np.zeros(d)
    Hmu = projected_hessian(loss, shards, x, lam, lam if mu is None else mu)
    latest = np.zeros((K, d))                  # the latest block of every (worker, region)
    sent = np.zeros((K, Q), dtype=bool)        # ... and whether it was ever sent
    out = [x.copy()]
    for _ in range(rounds):
        M = masks(mask_rng, sizes, Q, tau)
        for k, (X, y) in enumerate(shards):
            trained = M[k][region]
            z = x * trained if eval_at == "pruned" else x
            rows = None if batch is None or batch >= len(y) else np.sort(
                worker_rng[k].choice(len(y), size=batch, replace=False))
            latest[k, trained] = shard_gradient(loss, X, y, z, lam, rows)[trained]
            sent[k] |= M[k]
        weight = sent[:, region] * n_k[:, None]            # K x d
        g = (weight * latest).sum(axis=0) / weight.sum(axis=0)
        x = x - eta * np.linalg.solve(Hmu, g)
        out.append(x.copy())
    return np.array(out)
