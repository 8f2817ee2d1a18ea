"""IST's ridge analysis: closed-form moments of one IST round on the quadratic
f_i(x) = 1/2 x^T L_i x - x^T b_i (see :mod:`.ist` for the bound they give)."""

from __future__ import annotations

import math

import numpy as np

def subset_moments(A, pi1, pi2, pi3):
    """(E[P A P], E[P A P A P]) for P = diag of a random subset with inclusion
    probabilities pi1 (one coordinate), pi2 (two), pi3 (three); A symmetric."""
    a = np.diag(A).copy()
    EPAP = pi2 * A
    EPAP[np.diag_indices_from(A)] = pi1 * a
    Q = A @ A
    M = pi3 * Q + (pi2 - pi3) * (a[:, None] + a[None, :]) * A
    M[np.diag_indices_from(A)] = pi1 * a * a + pi2 * (np.diag(Q) - a * a)
    return EPAP, M


def block_inclusion(d, K):
    """Inclusion probabilities (pi1, pi2, pi3) of one worker's ``perm`` block (d >= K)."""
    lo, r = divmod(d, K)
    sizes = np.array([lo, lo + 1], dtype=float)
    prob = np.array([1.0 - r / K, r / K])

    def falling(s, t):
        return np.prod([s - u for u in range(t)], axis=0)

    pis = []
    for t in (1, 2, 3):
        den = falling(np.array(float(d)), t)
        pis.append(float(prob @ falling(sizes, t) / den) if den > 0 else 0.0)
    return tuple(pis)


def quadratic_analysis(Ls, bs, sketch, gamma, p=None):
    """Exact moments of the one-step IST map on F_i = 1/2 x^T L_i x - x^T b_i.

    Returns a dict with x_star, mean (m = E[B]^{-1} E[h]), bias, rho, sigma,
    radius (see the module docstring); None when the sketch is not covered
    (perm / perm_precond with K > d).
    """
    K, d = len(Ls), Ls[0].shape[0]
    L = sum(Ls) / K
    b = sum(bs) / K
    if sketch in ("perm", "perm_precond"):
        if K > d:
            return None
        pi1, pi2, pi3 = block_inclusion(d, K)
        EB, EB2, Eh, sig2 = np.zeros((d, d)), np.zeros((d, d)), np.zeros(d), 0.0
        x_star = np.linalg.solve(L, b)
        for Li, bi in zip(Ls, bs):
            if sketch == "perm":
                A, bh = K * Li, bi                      # (1/K) C L C = P (K L) P, (1/K) C b = P b
            else:
                dg = np.diag(Li)
                g = np.sqrt(K / np.where(dg > 0, dg, 1.0))
                A, bh = (g[:, None] * Li * g[None, :]) / K, g * bi / K
            EPAP, EPAPAP = subset_moments(A, pi1, pi2, pi3)
            EB += EPAP
            EB2 += EPAPAP
            Eh += pi1 * bh
            sig2 += x_star @ EPAPAP @ x_star - 2 * bh @ EPAP @ x_star + pi1 * bh @ bh
    elif sketch in ("bernoulli", "identity"):
        q = 1.0 if sketch == "identity" else float(p)
        x_star = np.linalg.solve(L, b)
        EB, EB2, Eh = np.zeros((d, d)), np.zeros((d, d)), np.zeros(d)
        ubar, Eu2 = np.zeros(d), 0.0
        for Li, bi in zip(Ls, bs):
            A, bh = Li / (K * q * q), bi / (K * q)      # (1/K) C L C = P A P, (1/K) C b = P bh
            EPAP, EPAPAP = subset_moments(A, q, q * q, q ** 3)
            EB += EPAP
            EB2 += EPAPAP - EPAP @ EPAP                 # independent workers: variances add
            Eh += q * bh
            ui = EPAP @ x_star - q * bh
            ubar += ui
            Eu2 += x_star @ EPAPAP @ x_star - 2 * bh @ EPAP @ x_star + q * bh @ bh - ui @ ui
        EB2 += EB @ EB
        sig2 = ubar @ ubar + (Eu2 if sketch == "bernoulli" else 0.0)   # identity: no variance
    else:
        return None
    I = np.eye(d)
    rho = float(np.linalg.eigvalsh(I - 2 * gamma * EB + gamma ** 2 * EB2).max())
    sigma = math.sqrt(max(float(sig2), 0.0))
    try:
        mean = np.linalg.solve(EB, Eh)
        bias = float(np.linalg.norm(mean - x_star))
    except np.linalg.LinAlgError:
        mean, bias = np.full(d, np.nan), math.nan
    radius = gamma * sigma / (1.0 - math.sqrt(rho)) if rho < 1.0 else math.inf
    if sigma == 0.0 and rho < 1.0:
        radius = 0.0
    return {"x_star": x_star, "mean": mean, "bias": bias, "rho": rho, "sigma": sigma,
            "radius": radius, "EB": EB}


# -- the algorithm -----------------------------------------------------------
