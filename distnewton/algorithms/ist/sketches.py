"""IST's diagonal sketches C_1..C_K (:mod:`.ist`, "Sketches"), drawn on the master.

A sketch is handed around as (S_i, the diagonal of C_i on S_i): the coordinates
worker i keeps and their scales.  ``perm`` with d >= K cuts a uniform permutation
of [d] into K blocks (``numpy.array_split``) given to the workers in a random
order, each scaled by K; with K > d worker slot i gets one coordinate of the
multiset in which coordinate j appears c_j in {floor(K/d), ceil(K/d)} times,
scaled by K / c_j; either way (1/K) sum_i C_i = I.  ``perm_precond`` rescales the
``perm`` blocks to sqrt(s_j / [L_i]_jj); ``bernoulli`` keeps each coordinate with
probability p, scaled by 1/p.  ``identity`` needs no draw.
"""

from __future__ import annotations

import numpy as np

SKETCHES = ("perm", "perm_precond", "identity", "bernoulli")


def perm_assignment(rng, d, K):
    """One ``perm`` draw: (coordinates S_i, scale K/c_j on S_i) for i = 0..K-1."""
    pi = rng.permutation(d)
    if d >= K:
        blocks = np.array_split(pi, K)
        order = rng.permutation(K)
        return [(np.sort(blocks[b]), np.full(blocks[b].size, float(K))) for b in order]
    reps = -(-K // d)
    slots = np.tile(pi, reps)[:K]                       # coordinate j appears c_j times
    counts = np.bincount(slots, minlength=d)
    rng.shuffle(slots)
    return [(np.array([j]), np.array([K / counts[j]])) for j in slots]


def draw_sketches(rng, sketch, d, K, p=None, diag=None):
    """The K sketches of one round as (S_i, diagonal of C_i on S_i) pairs."""
    if sketch == "bernoulli":
        out = []
        for _ in range(K):
            idx = np.flatnonzero(rng.random(d) < p)
            out.append((idx, np.full(idx.size, 1.0 / p)))
        return out
    blocks = perm_assignment(rng, d, K)
    if sketch == "perm":
        return blocks
    out = []                                            # perm_precond
    for i, (idx, s) in enumerate(blocks):
        Lii = diag[i, idx]
        out.append((idx, np.sqrt(s / np.where(Lii > 0, Lii, 1.0))))
    return out


def encode(idx, w, scale):
    """Scatter payload [q, idx, w, scale (1 float when all equal, else q)]."""
    sc = scale[:1] if scale.size and np.all(scale == scale[0]) else scale
    if idx.size == 0:
        sc = np.asarray([1.0])          # placeholder; nothing to scale
    return np.concatenate(([float(idx.size)], idx.astype(np.float64), w, sc))
