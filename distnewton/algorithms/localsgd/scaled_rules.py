"""The pieces of scaled Local SGD (:mod:`.scaled`): the statistics, the
averaging rules with their beta_t, the first moment, and the constants of the
paper's theory (pure functions, shared by master and workers; no communication).

Notation as in :mod:`.scaled`: s the statistic of one mini-batch z,
D the average, D_hat = max(alpha, |D|), gamma the step, H local steps a round.

**The averages as the paper writes them.**  Every rule is one recurrence with a
weight beta_t per update (t = 1, 2, ... counts the updates),

    oasis:          D_t   = beta_t D_{t-1}   + (1 - beta_t) s_t
    adam, rmsprop:  D_t^2 = beta_t D_{t-1}^2 + (1 - beta_t) s_t     (s = g (.) g)

with ``beta_schedule: constant`` giving: oasis beta_1 = 0 (OASIS's warm start
D_1 = s_1), then beta; rmsprop beta from D_0 = 0; adam the weights that its bias
correction D_t^2 = m_t / (1 - beta^t) amounts to, 1 - beta_t = (1 - beta)/(1 -
beta^t) (beta_1 = 0: D_1^2 = s_1).  :func:`ema_update` computes the constant
schedule in Adam's own form (through m_t and 1 - beta^t).

**beta_schedule: theory** (the paper's Corollary 1 asks beta_t to make the
preconditioner change slowly without stating the condition, so this is the
condition re-derived from the same two ingredients, and the choice it leaves is
this implementation's).  The analysis runs in the
norm ||x||_{D_hat}^2 = x^T D_hat x, where one preconditioned step contracts by
(1 - gamma mu / Gamma); an update that changes D_hat with

    D_hat_{t+1} <= (1 + eps_t) D_hat_t,     eps_t <= h gamma mu / (2 Gamma)       (*)

(h = the steps between updates: H in global mode, 1 in local mode) keeps the
rate (1 - gamma mu/(2 Gamma)) per step, since (1 + h a/2) <= ((1 - a/2)/(1 - a))^h
for a = gamma mu / Gamma.  With |s| bounded elementwise the rules change D_hat by
at most (a Lemma-1-style bound: D_hat' <= (1 - w) D_hat + w Gamma_s, or the same for
the squares, with w = 1 - beta_t and D_hat >= alpha; attained at D_hat = alpha):

    oasis (|s| <= Gamma_s):   eps_t = kappa (1 - beta_t),  kappa = Gamma_s / alpha - 1
    adam, rmsprop (|g| <= G): eps_t = kappa (1 - beta_t),  kappa = (G^2 / alpha^2 - 1) / 2

so (*) holds when 1 - beta_t <= cap = h gamma mu / (2 Gamma kappa).  The theory
schedule is the constant one with every weight from the second update on capped:
beta_t = max(beta_t^constant, 1 - cap) (the first update defines D^{t_0}, which
the theory leaves free in [alpha, Gamma]); beta_t -> 1 as the cap shrinks.
Gamma = max(alpha, Gamma_s) or max(alpha, G), mu = min lambda.

**step_size: theory**: gamma = alpha / (4 L).  f is L/alpha-smooth and
mu/Gamma-strongly convex in the D_hat-norm, and 1/(4 L) is the identical-data
Local SGD step bound (Khaled, Mishchenko, Richtarik 2020) in that norm; with
``identity`` (alpha = Gamma = 1) it is 1/(4 L).  It assumes beta1 = 0.

**The constants** (per row j of a shard, with its weight s_j, 1 when unweighted;
c2 = max l'' = 1/4 logistic, 1 ridge, 2 squared_hinge; lambda_max = max lambda):

* L = c2 max_j s_j ||x_j||_2^2 + lambda_max: every mini-batch loss is L-smooth
  (for ridge this bounds the largest eigenvalue of every mini-batch Hessian,
  which the stochastic analysis needs; lambda_max(X^T X/n) bounds only f's);
* Gamma_s: |(v (.) H_z v)_i| <= sum_k |H_z,ik| <= c2 max_j s_j ||x_j||_inf
  ||x_j||_1 + lambda_max (Hutchinson), or c2 max_j s_j ||x_j||_inf^2 +
  lambda_max for ``estimate: exact``;
* G, the bound on |g_i| that adam and rmsprop need, holds on the ball ||x|| <= R,
  R = sqrt(2 f(0) / mu), that holds x* (f(x*) <= f(0), mu-strong convexity):
  logistic (|l'| <= 1) G = max_j s_j ||x_j||_inf + lambda_max R; ridge (|l'| <=
  ||x_j|| R + |y_j|) G = R max_j s_j ||x_j||_inf ||x_j||_2 + max_j s_j
  ||x_j||_inf |y_j| + lambda_max R; squared_hinge (|l'| <= 2 + 2 ||x_j|| R)
  G = 2 max_j s_j ||x_j||_inf + 2 R max_j s_j ||x_j||_inf ||x_j||_2 + lambda_max R.

Each worker sends the maxima of its rows and its sum s_j l(0, y_j) in one gather
round (:data:`N_CONSTANTS` floats), once per run, before the first round.

**First moment** (``beta1`` > 0, Adam's momentum): every local step uses
m1 <- beta1 m1 + (1 - beta1) g and moves by gamma (m1 / (1 - beta1^c)) / D_hat
(c: the client's momentum updates so far); m1 stays on the client, across
rounds (never averaged, never sent).

References
----------
.. [1] Chezhegov, Skorik, Khachaturov, Shalagin, Avetisyan, Takac, Kholodov,
   Beznosikov, "Local methods with adaptivity via scaling", arXiv:2406.00846.
.. [2] A. Khaled, K. Mishchenko, P. Richtarik, "Tighter theory for local SGD on
   identical and heterogeneous data", AISTATS 2020.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: floats per worker in the constants round (see :func:`row_constants`)
N_CONSTANTS = 7
#: max l'' of each loss (logistic sigma(1 - sigma) <= 1/4; ridge 1)
CURVATURE_MAX = {"logistic": 0.25, "ridge": 1.0, "squared_hinge": 2.0}


def batch_hvp(loss, lam, w, v, ind, val, rows, yb, sb=None):
    """H_z(w) v = (1/|z|) sum_{j in z} l''(x_j.w, y_j) x_j (x_j.v) + lambda v
    from the mini-batch's CSR entries (as :func:`~.minibatch.stochastic_grad`;
    ``rows`` None for a one-row batch)."""
    if rows is None:
        hv = lam * v
        c = loss.deriv2(float(np.dot(val, w[ind])), yb[0]) * float(np.dot(val, v[ind]))
        hv[ind] += (c if sb is None else c * float(sb[0])) * val
        return hv
    nb = len(yb)
    z = np.bincount(rows, weights=val * w[ind], minlength=nb)
    u = np.bincount(rows, weights=val * v[ind], minlength=nb)
    c = loss.deriv2(z, yb) * u
    if sb is not None:
        c = c * sb
    return np.bincount(ind, weights=val * c[rows], minlength=len(w)) / nb + lam * v


def batch_hess_diag(loss, lam, w, ind, val, rows, yb, sb=None):
    """diag H_z(w) = (1/|z|) sum_{j in z} l''(x_j.w, y_j) x_j (.) x_j + lambda."""
    if rows is None:
        rows = np.zeros(len(ind), dtype=np.intp)
    nb = len(yb)
    c = loss.deriv2(np.bincount(rows, weights=val * w[ind], minlength=nb), yb)
    if sb is not None:
        c = c * sb
    return np.bincount(ind, weights=val * val * c[rows], minlength=len(w)) / nb \
        + lam * np.ones(len(w))


def rademacher(rng, d):
    """v in {-1, +1}^d, each sign with probability 1/2."""
    return 1.0 - 2.0 * rng.integers(0, 2, size=d)


def statistic(rule, shard, w, g, B, rng, estimate="hutchinson"):
    """The scaling's sample at w on mini-batch B: g (.) g, or for oasis
    v (.) H_B(w) v (``hutchinson``) or diag H_B(w) (``exact``, no draw)."""
    if rule == "oasis":
        if estimate == "exact":
            return batch_hess_diag(shard.loss, shard.penalty, w, *B)
        v = rademacher(rng, len(w))
        return v * batch_hvp(shard.loss, shard.penalty, w, v, *B)
    return g * g


def ema_update(rule, beta, m, count, s, cap=None):
    """One update of the average with sample s: returns (m, count, D).

    ``cap`` None: the constant schedule (m is Adam's uncorrected average); a
    number: the theory schedule, 1 - beta_t <= cap from the second update on
    (m is D for oasis, D^2 for adam and rmsprop)."""
    count += 1
    if cap is None:
        if rule == "oasis":
            m = s.copy() if count == 1 else beta * m + (1.0 - beta) * s
            return m, count, m
        m = beta * m + (1.0 - beta) * s
        D = np.sqrt(m / (1.0 - beta ** count)) if rule == "adam" else np.sqrt(m)
        return m, count, D
    b = beta_t(rule, beta, count, cap)
    m = b * m + (1.0 - b) * s
    return m, count, (m if rule == "oasis" else np.sqrt(m))


def beta_t(rule, beta, t, cap=None):
    """The weight of the t-th update (see the module docstring)."""
    if rule == "rmsprop":
        b = beta
    elif t == 1:
        return 0.0                                      # oasis, adam: D_1 = s_1
    else:
        b = beta if rule == "oasis" else beta * (1.0 - beta ** (t - 1)) / (1.0 - beta ** t)
    return b if cap is None or t == 1 else max(b, 1.0 - cap)


def clip(D, alpha):
    """D_hat = max(alpha, |D|) elementwise."""
    return np.maximum(alpha, np.abs(D))


def first_moment(state, beta1, g):
    """Adam's bias-corrected first moment m1 / (1 - beta1^c), kept in ``state``."""
    state["moment"] = beta1 * state.get("moment", 0.0) + (1.0 - beta1) * g
    state["moment_count"] = state.get("moment_count", 0) + 1
    return state["moment"] / (1.0 - beta1 ** state["moment_count"])


# -- the theory's constants ----------------------------------------------------
def row_constants(shard):
    """This shard's maxima over its rows j (weight s_j): s||x||_2^2,
    s||x||_inf ||x||_1, s||x||_inf^2, s||x||_inf, s||x||_inf ||x||_2,
    s||x||_inf |y|, and sum_j s_j l(0, y_j) (:data:`N_CONSTANTS` floats)."""
    X = shard.X
    s = np.ones(shard.n) if shard.s is None else shard.s
    a = abs(X)
    inf = a.max(axis=1).toarray().ravel() if X.nnz else np.zeros(shard.n)
    l1 = np.asarray(a.sum(axis=1)).ravel()
    l2 = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    y = np.abs(shard.y)
    top = [s * l2 * l2, s * inf * l1, s * inf * inf, s * inf, s * inf * l2, s * inf * y]
    f0 = float(np.sum(s * shard.loss.value(np.zeros(shard.n), shard.y)))
    return np.array([float(np.max(t, initial=0.0)) for t in top] + [f0])


class Theory(NamedTuple):
    """The constants of the theory (see the module docstring)."""

    L: float            # smoothness of every mini-batch loss
    mu: float           # strong convexity: min lambda
    gamma_s: float      # bound on |s_i| (oasis)
    G: float            # bound on |g_i| on the ball of radius R (adam, rmsprop)
    R: float            # sqrt(2 f(0) / mu)


def theory_constants(replies, loss, penalty, n, estimate="hutchinson"):
    """:class:`Theory` from the workers' :func:`row_constants` replies."""
    top = np.max(np.vstack(replies), axis=0)
    f0 = float(np.sum(np.vstack(replies)[:, 6])) / n
    lam_max, mu = float(np.max(penalty)), float(np.min(penalty))
    c2 = CURVATURE_MAX[loss]
    R = np.sqrt(2.0 * f0 / mu) if mu > 0 else np.inf
    if loss == "logistic":
        G = top[3] + lam_max * R
    elif loss == "squared_hinge":              # |l'| = 2 max(0, 1 - y x.w) <= 2 + 2 ||x|| R
        G = 2.0 * top[3] + 2.0 * R * top[4] + lam_max * R
    else:
        G = R * top[4] + top[5] + lam_max * R
    gamma_s = c2 * (top[2] if estimate == "exact" else top[1]) + lam_max
    return Theory(c2 * top[0] + lam_max, mu, gamma_s, float(G), float(R))


def bounds(rule, alpha, th):
    """(Gamma, kappa): the upper bound on D_hat and the growth coefficient."""
    if rule == "identity":
        return 1.0, 0.0
    if rule == "oasis":
        return max(alpha, th.gamma_s), max(0.0, th.gamma_s / alpha - 1.0)
    return max(alpha, th.G), max(0.0, (th.G / alpha) ** 2 - 1.0) / 2.0


def theory_gamma(rule, alpha, th):
    """gamma = alpha / (4 L) (identity: 1 / (4 L))."""
    return (1.0 if rule == "identity" else alpha) / (4.0 * th.L)


def theory_cap(rule, alpha, gamma, steps_between, th):
    """The cap on 1 - beta_t: h gamma mu / (2 Gamma kappa) (1: no cap, when the
    statistics cannot lift D_hat above alpha)."""
    Gamma, kappa = bounds(rule, alpha, th)
    if kappa == 0.0:
        return 1.0
    return min(1.0, steps_between * gamma * th.mu / (2.0 * Gamma * kappa))
