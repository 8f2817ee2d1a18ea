"""Exact moments of IST's random sketches, for the ridge analysis (:mod:`.analysis`).

One IST round on the quadratics F_i(x) = 1/2 x^T L_i x - x^T b_i is the affine map
x -> x - gamma (B x - h) with

    B = sum_i P_i A_i P_i,      h = sum_i P_i beta_i,

P_i = diag(p_i) the 0/1 indicator of worker i's support S_i, and A_i, beta_i fixed
(``perm``: A_i = K L_i, beta_i = b_i; see :func:`.analysis.sketched_terms`).
Every expectation the analysis needs (E[B], E[h], E[B M B], E[B M h], E[h^T M h]
for a fixed matrix M) is a sum over index tuples of products of entries times
the probability that the tuple's coordinates lie in the supports:

    E[P_i X P_i M P_j Y P_j]_ab = sum_{c,e} X_ac M_ce Y_eb  Pr(a, c in S_i; e, b in S_j).

The probability depends only on the tuple's *equality pattern* sigma (the set
partition of the positions a, c, e, b by equal values) and on i = j or not:

* same worker (i = j), t = number of distinct coordinates:
  ``perm``  E[[s]_t] / [d]_t  ([s]_t = s (s-1) ... (s-t+1), s the block size),
  ``bernoulli``  p^t,  ``identity`` 1;
* two workers (i != j), u (v) the distinct coordinates among worker i's (j's)
  positions: ``perm`` 0 when the two sets share a coordinate (the blocks are
  disjoint), else E[[s_i]_u [s_j]_v] / [d]_{u+v}; ``bernoulli`` p^(u+v)
  (independent workers), ``identity`` 1.

``perm`` with d >= K: K blocks of floor(d/K) or ceil(d/K) coordinates, d mod K of
the larger, assigned to the workers in a uniformly random order, so the law of
(s_i, s_j) is the same for every pair i != j.

With T_tau = the sum over the tuples constant on the blocks of tau (an einsum
with the merged indices) and Moebius inversion on the partition lattice,

    sum over tuples of exactly pattern sigma = sum_{tau >= sigma} mu(sigma, tau) T_tau,
    mu(sigma, tau) = prod_{blocks of tau} (-1)^(k-1) (k-1)!   (k sigma-blocks merged),

so an expectation is sum_tau w_tau T_tau with w_tau = sum_{sigma <= tau}
mu(sigma, tau) Pr(sigma): at most 15 einsums for 4 positions, no sampling.  The
cross-worker sum uses trilinearity, sum_{i != j} T(X_i, M, Y_j) = T(sum X, M, sum Y)
- sum_i T(X_i, M, Y_i).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def falling(s, t):
    """[s]_t = s (s-1) ... (s-t+1) (elementwise for an array s)."""
    out = np.ones_like(np.asarray(s, dtype=float))
    for u in range(t):
        out = out * (np.asarray(s, dtype=float) - u)
    return out


class SketchLaw:
    """The joint law of the supports S_1..S_K of one round's sketches."""

    def __init__(self, sketch, d, K, p=None):
        if sketch in ("perm", "perm_precond") and K > d:
            raise ValueError("perm moments need d >= K")
        self.kind = {"perm_precond": "perm"}.get(sketch, sketch)
        self.d, self.K, self.p = d, K, p
        lo, r = divmod(d, K)
        self.sizes = np.array([lo, lo + 1], dtype=float)
        self.size_p = np.array([1.0 - r / K, r / K])             # one worker's block size
        if K > 1:                                               # (s_i, s_j), i != j
            big = np.array([K - r, r], dtype=float)
            self.pair_p = (np.outer(big, big) - np.diag(big)) / (K * (K - 1))
        else:
            self.pair_p = np.zeros((2, 2))

    def same(self, t):
        """Pr(t given distinct coordinates all in S_i)."""
        if self.kind == "identity":
            return 1.0
        if self.kind == "bernoulli":
            return self.p ** t
        if t > self.d:                                  # t distinct coordinates of d < t
            return 0.0
        return float(self.size_p @ falling(self.sizes, t)) / float(falling(self.d, t))

    def cross(self, u, v, shared):
        """Pr(u distinct coordinates in S_i and v in S_j), i != j; ``shared``: the
        two sets have a coordinate in common."""
        if self.kind == "identity":
            return 1.0
        if self.kind == "bernoulli":
            return self.p ** (u + v)
        if shared or u + v > self.d:
            return 0.0
        num = falling(self.sizes, u)[:, None] * falling(self.sizes, v)[None, :]
        return float((self.pair_p * num).sum()) / float(falling(self.d, u + v))


@lru_cache(maxsize=None)
def set_partitions(n):
    """All set partitions of n positions, as tuples of block labels (restricted growth)."""
    out = [()]
    for _ in range(n):
        out = [q + (b,) for q in out for b in range(max(q, default=-1) + 2)]
    return tuple(out)


def refines(sigma, tau):
    """sigma <= tau: every block of sigma lies inside one block of tau."""
    image = {}
    return all(image.setdefault(s, t) == t for s, t in zip(sigma, tau))


def mobius(sigma, tau):
    """mu(sigma, tau) on the partition lattice (sigma refines tau)."""
    out = 1
    for block in set(tau):
        k = len({s for s, t in zip(sigma, tau) if t == block})
        out *= (-1) ** (k - 1) * math.factorial(k - 1)
    return out


def pattern_weights(law, groups, same):
    """{tau: w_tau} for positions owned by ``groups`` ('i'/'j' per position)."""
    n = len(groups)
    parts = set_partitions(n)

    def prob(sigma):
        blocks = set(sigma)
        if same:
            return law.same(len(blocks))
        own = [{g for s, g in zip(sigma, groups) if s == b} for b in blocks]
        u = sum("i" in o for o in own)
        v = sum("j" in o for o in own)
        return law.cross(u, v, any(len(o) == 2 for o in own))

    probs = {s: prob(s) for s in parts}
    w = {}
    for tau in parts:
        val = sum(mobius(s, tau) * probs[s] for s in parts if refines(s, tau))
        if val != 0.0:
            w[tau] = val
    return w


def merged_einsum(spec, positions, tau, operands):
    """T_tau: ``spec`` (einsum over ``positions``) with the indices merged by tau."""
    letters = {pos: "abcdefgh"[t] for pos, t in zip(positions, tau)}
    ins, out = spec.split("->")
    new_ops, new_ins = [], []
    for term, op in zip(ins.split(","), operands):
        sub = "".join(letters[c] for c in term)
        if len(set(sub)) < len(sub):                     # a diagonal of the operand
            uniq = "".join(dict.fromkeys(sub))
            op, sub = np.einsum(f"{sub}->{uniq}", op), uniq
        new_ops.append(op)
        new_ins.append(sub)
    o = "".join(letters[c] for c in out)
    uniq = "".join(dict.fromkeys(o))
    res = np.einsum(f"{','.join(new_ins)}->{uniq}", *new_ops, optimize="greedy")
    if len(uniq) < len(o):                               # output a ~ b: a diagonal matrix
        res = np.diag(res)
    return res


def expect(law, spec, groups, first, middle=(), second=None):
    """E[sum_i ...] (one worker group) or E[sum_{i,j} ...] (two) of an einsum.

    ``spec``: einsum over single-letter positions, e.g. ``"ac,ce,eb->ab"`` for
    E[B M B]; ``groups``: 'i' or 'j' for each position in the order of
    ``positions`` (the letters of the inputs, first appearance).  ``first``: one
    operand per worker (worker i's), ``middle``: shared operands, ``second``: one
    per worker (worker j's) or None for a one-group sum (E[B], E[h])."""
    ins = spec.split("->")[0].replace(",", "")
    positions = "".join(dict.fromkeys(ins))
    ws = pattern_weights(law, groups, True)
    if second is None:
        return sum(w * sum(merged_einsum(spec, positions, tau, [X]) for X in first)
                   for tau, w in ws.items())
    wc = pattern_weights(law, groups, False) if law.K > 1 else {}
    total = 0.0
    for tau in set(ws) | set(wc):
        diff = ws.get(tau, 0.0) - wc.get(tau, 0.0)
        if diff != 0.0:
            total = total + diff * sum(merged_einsum(spec, positions, tau, [X, *middle, Y])
                                       for X, Y in zip(first, second))
        if tau in wc:
            total = total + wc[tau] * merged_einsum(spec, positions, tau,
                                                    [sum(first), *middle, sum(second)])
    return total
