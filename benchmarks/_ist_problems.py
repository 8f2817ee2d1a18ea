"""The problems of ``paper_ist.py``: a ridge problem split over K workers with the
L_i, b_i and x* formed here from the shards (numpy, the independent reference), a
synthetic generator, and the table's formatting helpers."""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from distnewton.algorithms import ALGORITHMS                  # noqa: E402
from distnewton.config import resolve                          # noqa: E402
from distnewton.session import Session                         # noqa: E402

#: the ridge lambda of every claim
LAM = 1e-3


class Ridge:
    """A ridge problem split over K workers: the setup, the shards, L_i, b_i, x*."""

    def __init__(self, name, K, partition="iid", arrays=None, path=None, n_features=None):
        data = {"partition": partition, "n_features": n_features}
        data["train"] = path or "<in-memory>"
        self.cfg = {"data": data, "model": {"loss": "ridge", "lambda": LAM},
                    "run": {"workers": K, "backend": "sim"}}
        session = Session.open(resolve({**self.cfg, "algorithm": {"name": "ist"}}),
                               arrays=arrays)
        self.setup = session.setup
        self.name, self.K, self.partition = name, K, partition
        self.shards = [ctx.shard for ctx in session.rt.workers]
        N, d = self.setup.X.shape
        self.d = d
        self.Ls, self.bs = [], []
        for sh in self.shards:
            Xi = sh.X.toarray()
            self.Ls.append((K / N) * (Xi.T @ Xi + sh.n * LAM * np.eye(d)))
            self.bs.append((K / N) * Xi.T @ sh.y)
        self.L, self.b = sum(self.Ls) / K, sum(self.bs) / K
        self.x_star = np.linalg.solve(self.L, self.b)

    def setting(self, extra=""):
        return (f"{self.name} ({self.setup.X.shape[0]} x {self.d}), K = {self.K}, "
                f"{self.partition}{', ' + extra if extra else ''}")

    def f(self, x):
        return float(0.5 * x @ self.L @ x - self.b @ x)

    def grad(self, x):
        return self.L @ x - self.b

    def run(self, rounds, seed=0, w0=None, **params):
        """IST on the sim backend: (algorithm, history dicts, iterates x^0..x^T)."""
        cfg = resolve({**self.cfg, "algorithm": {"name": "ist", **params},
                       "run": {**self.cfg["run"], "seed": seed}})
        rt = Session.open(cfg, setup=self.setup).rt     # fresh workers on the same shards
        full = {k: v for k, v in cfg["algorithm"].items() if k != "name"}
        alg = ALGORITHMS["ist"](rt, self.setup.problem, full,
                                np.zeros(self.d) if w0 is None else w0, seed=seed)
        xs, info = [alg.w.copy()], []
        for _ in range(rounds):
            info.append(alg.step())
            xs.append(alg.w.copy())
        return alg, info, np.array(xs)


def synthetic(n, d, K, seed=0, spread=0.0, w_spread=0.3, scale=1.0, zero=False, copies=1):
    """Dense Gaussian rows (times ``scale``) in K contiguous blocks, block i scaled by
    (1 + spread i) and labelled by its own w_i = w + w_spread N(0, I); ``zero``: y = 0
    (the interpolation case b_i = 0); ``copies``: every worker gets the same rows."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * scale
    block = np.repeat(np.arange(K), -(-n // K))[:n]
    X *= (1 + spread * block)[:, None]
    w = rng.standard_normal(d) + w_spread * rng.standard_normal((K, d))[block]
    y = np.zeros(n) if zero else np.einsum("ij,ij->i", X, w) + 0.3 * rng.standard_normal(n)
    if copies > 1:
        X, y = np.vstack([X] * copies), np.tile(y, copies)
    return X, y


def fmt(x):
    return f"{x:.3g}"


def yes_no(ok, partly=False):
    return "yes" if ok and not partly else ("partly" if ok else "no")
