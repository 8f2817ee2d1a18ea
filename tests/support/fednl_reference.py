"""An independent FedNL in numpy, written from the paper (issue 30, item 5).

Safaryan, Islamov, Qian, Richtarik, "FedNL: Making Newton-type methods applicable
to federated learning" (ICML 2022): Algorithm 1 (FedNL, options 1 and 2),
Algorithm 2 (FedNL-LS, here along either option's direction) and Algorithm 3
(FedNL-PP), for L2-regularised logistic regression without an intercept.  One
loop over the clients' dense shards, dense matrices throughout; nothing of
distnewton is used.  The conventions it shares with distnewton are those of the
problem, not of the code: f_i is client i's mean loss plus (lambda/2)||x||^2,
f = sum_i (n_i/n) f_i, the compressors act on the upper triangle of the
symmetric difference (the lower one mirrors it), and H_i^0 is the local Hessian
at x^0 (``h0='local'``) or 0 (``h0='zero'``).  The randomness is an input: the
offsets of RandSeqK (``offset(i, k)``) and FedNL-PP's client sets (``choose(k)``)
are passed in, so that the test can hand the reference the same draws.
"""

from __future__ import annotations

import numpy as np


# -- the problem -------------------------------------------------------------------
class Client:
    """One client's f_i(x) = (1/n_i) sum_j log(1 + exp(-y_j a_j.x)) + (lam/2)||x||^2."""

    def __init__(self, A, y, lam):
        self.A, self.y, self.lam, self.n = A, y, lam, len(y)

    def value(self, x):
        return np.mean(np.logaddexp(0.0, -self.y * (self.A @ x))) + self.lam / 2 * x @ x

    def grad(self, x):
        s = 1.0 / (1.0 + np.exp(self.y * (self.A @ x)))           # sigma(-y a.x)
        return -self.A.T @ (self.y * s) / self.n + self.lam * x

    def hess(self, x):
        s = 1.0 / (1.0 + np.exp(self.y * (self.A @ x)))
        return (self.A.T * (s * (1 - s))) @ self.A / self.n + self.lam * np.eye(len(x))


def clients(A, y, K, lam):
    """K clients on contiguous blocks of rows (numpy's array_split sizes)."""
    return [Client(A[b], y[b], lam) for b in np.array_split(np.arange(len(y)), K)]


# -- compressors on the upper triangle --------------------------------------------
def compress(name, M, K=None, R=1, offset=0):
    """C(M) for a symmetric M: Top-K (K largest |entries| of the triangle, ties to
    the first), TopLEK (fewest of those with ||u - C(u)||^2 <= (1 - K/D)||u||^2),
    RandSeqK (K consecutive triangle entries from ``offset``, wrapping, times D/K),
    Rank-R (the R eigenpairs largest in |lambda|), identity."""
    d = M.shape[0]
    if name == "identity":
        return M.copy()
    if name == "rankr":
        lam, V = np.linalg.eigh(M)
        keep = np.argsort(-np.abs(lam), kind="stable")[:R]
        return (V[:, keep] * lam[keep]) @ V[:, keep].T
    iu = np.triu_indices(d)
    u, D = M[iu], d * (d + 1) // 2
    out = np.zeros(D)
    if name == "randseqk":
        idx = (offset + np.arange(K)) % D
        out[idx] = u[idx] * D / K
    else:
        order = np.argsort(-np.abs(u), kind="stable")[:K]
        if name == "toplek":
            kept = np.cumsum(u[order] ** 2)
            enough = np.flatnonzero(kept >= K / D * (u @ u) * (1 - 1e-15))
            order = order[:enough[0] + 1] if enough.size else order
        out[order] = u[order]
    C = np.zeros((d, d))
    C[iu] = out
    return C + np.triu(C, 1).T


# -- FedNL -------------------------------------------------------------------------
def direction(H, g, option, mu, l):
    """Option 1: [H]_mu^-1 g (eigenvalues floored at mu); option 2: (H + l I)^-1 g."""
    if option == 1:
        lam, V = np.linalg.eigh(H)
        return V @ ((V.T @ g) / np.maximum(lam, mu))
    return np.linalg.solve(H + l * np.eye(len(g)), g)


def armijo(f, x, p, g, c, gamma, max_backtracks=60):
    """The largest a = gamma^j with f(x - a p) <= f(x) - c a p.g (0 if none)."""
    fx, slope = f(x), p @ g
    for j in range(max_backtracks):
        a = gamma ** j
        if f(x - a * p) <= fx - c * a * slope:
            return a
    return 0.0


def fednl(cl, T, compressor="topk", K=None, R=1, alpha=1.0, option=1, mu=None,
          h0="local", line_search=False, c=0.49, gamma=0.5, offset=None):
    """T iterations of FedNL (Algorithm 1) or FedNL-LS (Algorithm 2) from x^0 = 0:
    the iterates x^0 .. x^T."""
    d = cl[0].A.shape[1]
    w = np.array([ci.n for ci in cl], dtype=float) / sum(ci.n for ci in cl)
    x = np.zeros(d)
    Hi = [ci.hess(x) if h0 == "local" else np.zeros((d, d)) for ci in cl]
    mu = cl[0].lam if mu is None else mu

    def f(z):
        return sum(wi * ci.value(z) for wi, ci in zip(w, cl))

    xs = [x]
    for k in range(T):
        hess = [ci.hess(x) for ci in cl]
        g = sum(wi * ci.grad(x) for wi, ci in zip(w, cl))
        l = sum(wi * np.linalg.norm(h - H, "fro") for wi, h, H in zip(w, hess, Hi))
        S = [compress(compressor, h - H, K, R, offset(i, k) if offset else 0)
             for i, (h, H) in enumerate(zip(hess, Hi))]
        H = sum(wi * Hk for wi, Hk in zip(w, Hi))
        p = direction(H, g, option, mu, l)
        a = armijo(f, x, p, g, c, gamma) if line_search else 1.0
        x = x - a * p
        Hi = [H + alpha * s for H, s in zip(Hi, S)]
        xs.append(x)
    return xs


def fednl_pp(cl, T, tau, choose, compressor="topk", K=None, R=1, alpha=1.0, h0="local",
             offset=None):
    """T iterations of FedNL-PP (Algorithm 3) from x^0 = 0: the iterates x^1 .. x^T.
    ``choose(k)`` is iteration k's set of tau clients."""
    d = cl[0].A.shape[1]
    w = np.array([ci.n for ci in cl], dtype=float) / sum(ci.n for ci in cl)
    x0 = np.zeros(d)
    Hi = [ci.hess(x0) if h0 == "local" else np.zeros((d, d)) for ci in cl]
    li = [np.linalg.norm(H - ci.hess(x0), "fro") for H, ci in zip(Hi, cl)]
    gi = [(H + l * np.eye(d)) @ x0 - ci.grad(x0) for H, l, ci in zip(Hi, li, cl)]
    xs = []
    for k in range(1, T + 1):
        H = sum(wk * Hk for wk, Hk in zip(w, Hi))
        l = float(np.dot(w, li))
        x = np.linalg.solve(H + l * np.eye(d), sum(wk * g for wk, g in zip(w, gi)))
        chosen = choose(k)
        assert len(chosen) == tau
        for i in chosen:
            hess = cl[i].hess(x)
            S = compress(compressor, hess - Hi[i], K, R, offset(i, k) if offset else 0)
            Hi[i] = Hi[i] + alpha * S
            li[i] = np.linalg.norm(Hi[i] - hess, "fro")
            gi[i] = (Hi[i] + li[i] * np.eye(d)) @ x - cl[i].grad(x)
        xs.append(x)
    return xs
