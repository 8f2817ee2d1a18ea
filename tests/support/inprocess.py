"""An algorithm and its sim runtime built by hand in this process, for tests that
drive ``step()`` themselves and compare the iterates with a numpy loop."""

from types import SimpleNamespace

import numpy as np

from distnewton.algorithms.base import Problem
from distnewton.objectives import Shard
from distnewton.runtime.sim import SimRuntime


def setup(cls, X, y, K=3, lam=None, **params):
    """(algorithm, runtime) over K contiguous shards, parameters at their defaults."""
    n, d = X.shape
    lam = 1.0 / n if lam is None else lam
    parts = np.array_split(np.arange(n), K)
    full = {k: v.default for k, v in cls.params.items()}
    full.update(params)
    rt = SimRuntime([Shard(X[p], y[p], "logistic", lam) for p in parts], 0,
                    SimpleNamespace(**full))
    prob = Problem(n=n, d=d, lam=lam, loss="logistic", sizes=tuple(len(p) for p in parts))
    return cls(rt, prob, full, np.zeros(d), seed=0), rt
