"""Shared by the multinomial tests: a 4-class data set and the objective in plain numpy."""

import numpy as np

CLASSES = (2, 5, 7, 9)          # raw labels that are not 0..C-1: the map must be used


def four_classes(n=600, d=8, seed=0):
    """Rows drawn from a softmax model of 4 classes (labels CLASSES), sparse-ish."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * (rng.random((n, d)) < 0.6)
    W = 1.5 * np.random.default_rng(100).standard_normal((len(CLASSES), d))
    y = np.asarray(CLASSES, dtype=float)[np.argmax(X @ W.T + rng.gumbel(size=(n, 4)), axis=1)]
    return X, y


def numpy_value(W, b, X, idx, s, lam, penalise_b=False):
    """The multinomial objective written out plainly (numpy, no distnewton)."""
    Z = X @ W.T + b
    Z = Z - Z.max(axis=1, keepdims=True)
    lse = np.log(np.exp(Z).sum(axis=1))
    data = np.sum(s * (lse - Z[np.arange(len(idx)), idx])) / len(idx)
    reg = (W ** 2).sum() + ((b ** 2).sum() if penalise_b else 0.0)
    return data + 0.5 * lam * reg
