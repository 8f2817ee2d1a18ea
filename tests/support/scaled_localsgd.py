"""Scaled Local SGD's test helpers: a tiny shard, the naive per-worker reference loop
(dense algebra) with its mini-batch Hessian and capped averages, a worker's parameters,
the configurations, and sim runs in this process."""

from types import SimpleNamespace

import numpy as np

from distnewton.algorithms.localsgd import scaled as S
from distnewton.config import resolve
from distnewton.objectives import Shard


def tiny_shard(loss="logistic", n=13, d=5, seed=1):
    """A small sparse shard with an empty row (row 3)."""
    import scipy.sparse as sp
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=0.4, random_state=seed, format="csr")
    X = sp.csr_matrix(sp.diags(np.where(np.arange(n) == 3, 0.0, 1.0)) @ X)
    X.eliminate_zeros()
    y = np.where(rng.random(n) < 0.5, -1.0, 1.0) if loss == "logistic" else rng.standard_normal(n)
    return Shard(X, y, loss, lam=0.1)


def dense_batch_hessian(sh, w, B):
    """(1/|B|) sum_{j in B} l''_j x_j x_j^T + lambda I, dense."""
    Xb = sh.X.toarray()[B]
    c = sh.loss.deriv2(Xb @ w, sh.y[B])
    return Xb.T @ (c[:, None] * Xb) / len(B) + sh.lam * np.eye(sh.d)


def csr_batch(sh, B):
    """(ind, val, rows, y) of rows B, as localsgd.batches yields them."""
    Xb = sh.X[B]
    rows = np.repeat(np.arange(len(B)), np.diff(Xb.indptr)) if len(B) > 1 else None
    return Xb.indices.astype(np.intp), Xb.data, rows, sh.y[B]


def params(**kw):
    """A worker's ctx.params: the defaults with ``kw``."""
    return SimpleNamespace(**{**{k: v.default for k, v in S.ScaledLocalSGD.params.items()},
                              **kw})


def capped_average(rule, beta, cap, m, t, s):
    """The t-th update of the theory schedule written as weights: the new sample's
    weight is Adam's bias-corrected (1 - beta)/(1 - beta^t) (1 at t = 1), oasis's 1
    then 1 - beta, rmsprop's 1 - beta, each at most ``cap`` from t = 2 on."""
    if rule == "adam":
        wt = (1 - beta) / (1 - beta ** t)
    elif rule == "oasis":
        wt = 1.0 if t == 1 else 1 - beta
    else:
        wt = 1 - beta
    if t > 1:
        wt = min(wt, cap)
    return (1 - wt) * m + wt * s


def naive_rounds(sh, w, rng, rounds, H, b, gamma, rule, beta, alpha, mode, dhat=None,
                 cap=None, beta1=0.0, estimate="hutchinson"):
    """Naive reference of one worker over several rounds (dense algebra):
    per-epoch permutations, consecutive batches, local D every step (local)
    or the fixed dhat with the statistic of the last step (global).  ``cap``:
    the theory schedule, the weight w_t of the t-th sample in D (D^2 for adam,
    rmsprop) at most cap from t = 2 on (:func:`capped_average`); ``beta1``: the
    step along Adam's bias-corrected first moment; ``estimate: exact``:
    oasis's statistic is the batch Hessian's diagonal."""
    Xd, n = sh.X.toarray(), sh.n
    order, m, count, out = [], np.zeros(sh.d), 0, []
    mom, mc = np.zeros(sh.d), 0
    for _ in range(rounds):
        x, stat = w.copy(), None
        for step in range(H):
            if not order:
                perm = rng.permutation(n)
                order = [perm[i:i + b] for i in range(0, n, b)]
            B = order.pop(0)
            g = Xd[B].T @ sh.loss.deriv(Xd[B] @ x, sh.y[B]) / len(B) + sh.lam * x
            if mode == "local" or step == H - 1:
                if rule == "oasis" and estimate == "exact":
                    s = np.diag(dense_batch_hessian(sh, x, B)).copy()
                elif rule == "oasis":
                    v = 1.0 - 2.0 * rng.integers(0, 2, size=sh.d)
                    s = v * (dense_batch_hessian(sh, x, B) @ v)
                else:
                    s = g * g
            u = g
            if beta1 > 0:
                mom, mc = beta1 * mom + (1 - beta1) * g, mc + 1
                u = mom / (1 - beta1 ** mc)
            if mode == "local":
                count += 1
                if cap is not None:
                    m = capped_average(rule, beta, cap, m, count, s)
                    D = m if rule == "oasis" else np.sqrt(m)
                elif rule == "oasis":
                    m = s if count == 1 else beta * m + (1 - beta) * s
                    D = m
                else:
                    m = beta * m + (1 - beta) * s
                    D = np.sqrt(m / (1 - beta ** count)) if rule == "adam" else np.sqrt(m)
                x = x - gamma * u / np.maximum(alpha, np.abs(D))
            else:
                stat = s if step == H - 1 else None
                x = x - gamma * u / dhat
        out.append((x, stat))
        w = x
    return out


def base_cfg(**alg):
    return {"data": {"train": "x.svm"}, "algorithm": {"name": "scaled_localsgd", **alg}}


def raw_config(algorithm, data, **run):
    return {"data": {**data, "partition": "iid"},
            "model": {"loss": "logistic", "lambda": "1/n"},
            "algorithm": algorithm, "run": {"grad_rtol": 1e-12, **run}}


_SETUPS = {}


def sim_inprocess(algorithm, data, workers, rounds, seed=0):
    """A sim run in this process (a data set read once per K): (algorithm, history)."""
    from distnewton.session import Session
    cfg = resolve(raw_config(algorithm, data, max_rounds=rounds, backend="sim",
                             workers=workers, seed=seed))
    key = (data["train"], workers)
    session = Session.open(cfg, setup=_SETUPS.get(key))
    _SETUPS[key] = session.setup
    out = session.run()
    assert out.status == "max_rounds"
    return out.alg, out.history.arrays()
