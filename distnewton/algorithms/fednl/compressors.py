"""Matrix compressors for FedNL's Hessian learning (Safaryan et al., ICML 2022).

A compressor C maps a symmetric d x d matrix M (here the difference
Hess f_i(x_k) - H_i) to a message of float64 words, and the message back to
C(M).  It acts on the upper triangle only, u = M[triu] with D = d(d+1)/2
entries: the lower triangle is its mirror image, so sending it would double the
bytes for nothing.  ``K`` (the entries kept) is ``k_mult * d``, capped at D.

=========  ==========================================  ==================  ===================
name       C(M)                                        class (Frobenius)   message (float64 words)
=========  ==========================================  ==================  ===================
identity   M                                           delta = 1           D values
topk       the K entries of u largest in magnitude     delta = (2K - d)/d^2  K values + K int32
randk      K entries drawn uniformly, scaled by D/K    omega = D/K - 1     K values + K int32
randseqk   K consecutive entries of u from a uniform    omega = D/K - 1     K values (indices from
           offset (wrapping), scaled by D/K                                the shared seed)
toplek     the fewest largest entries, at most K,      delta = K/(2D - K)  k values + k int32
           with ||u - C(u)||^2 <= (1 - K/D) ||u||^2                        (k <= K; a ragged reply)
rankr      sum of the R eigenpairs largest in |lambda|  delta = R/d         R values + R d-vectors
=========  ==========================================  ==================  ===================

*Contractive* compressors satisfy ||C(M) - M||_F^2 <= (1 - delta) ||M||_F^2,
*unbiased* ones E C(M) = M and E||C(M) - M||_F^2 <= omega ||M||_F^2, for every
symmetric M, in the norm FedNL's theory uses: Frobenius on the full matrix,
where an off-diagonal entry of u counts twice (:meth:`Compressor.frobenius`).
The constants above hold in that norm and are tight (K >= d here, as
``k_mult >= 1``; the derivations are in :attr:`Compressor.delta`): Top-K picks
by magnitude on u, so in the worst case it keeps the d diagonal entries and
K - d off-diagonal ones of a matrix whose entries are all equal, (2K - d)/d^2
of ||M||_F^2, where K/D is only the triangle's share.  FedNL's theoretical
Hessian learning rate is alpha = 1 - sqrt(1 - delta) for contractive and
alpha = 1 / (omega + 1) for unbiased compressors (:meth:`Compressor.alpha_theory`);
the paper's second choice for contractive ones is alpha = 1
(:meth:`Compressor.alpha_largest`).

Indices travel as int32, two per float64 word (an odd count is padded with 4
bytes): :func:`pack_indices` / :func:`unpack_indices`.  RandSeqK's offset is a
hash of (seed, k, t) (client k, round t: :meth:`Compressor.seq_offset`), which
the master regenerates, so no index is sent.

References
----------
.. [1] M. Safaryan, R. Islamov, X. Qian, P. Richtarik, "FedNL: Making Newton-type
   methods applicable to federated learning", ICML 2022 (arXiv:2106.02969).
"""

from __future__ import annotations

import numpy as np


def pack_indices(idx):
    """int32 indices as float64 words (bit copies, two per word)."""
    a = np.zeros(2 * ((len(idx) + 1) // 2), dtype=np.int32)
    a[:len(idx)] = idx
    return a.view(np.float64)


def unpack_indices(words, count):
    return np.ascontiguousarray(words).view(np.int32)[:count].astype(np.int64)


def index_words(count):
    """float64 words that ``count`` packed int32 indices take."""
    return (count + 1) // 2


class Compressor:
    """One compressor on d x d symmetric matrices (see the module docstring)."""

    kinds = {"identity": "contractive", "topk": "contractive", "toplek": "contractive",
             "rankr": "contractive", "randk": "unbiased", "randseqk": "unbiased"}

    def __init__(self, name, d, k_mult=8, rank=1, seed=0):
        self.name, self.d = name, int(d)
        self.D = self.d * (self.d + 1) // 2
        self.K = min(self.D, int(k_mult) * self.d)
        self.R = min(int(rank), self.d)
        self.seed = int(seed)
        self.kind = self.kinds[name]
        self.triu = np.triu_indices(self.d)
        self.diagonal = np.flatnonzero(self.triu[0] == self.triu[1])   # u's diagonal entries

    # -- constants of the compressor class --------------------------------
    @property
    def delta(self):
        """delta of the contractive class in Frobenius norm (tight):

        * topk: with t the smallest kept |u_j|^2, every dropped entry is <= t, so the
          kept share is >= W_kept / d^2, W the Frobenius weights (1 on the diagonal,
          2 off it) of the kept entries, at least d + 2 (K - d) = 2K - d (K <= d: K);
          an all-equal matrix whose ties go to the diagonal attains it.
        * toplek: when it stops below K entries the kept triangle share is m >= K/D,
          so the Frobenius share is >= m / (m + 2 (1 - m)) >= K / (2D - K) (attained
          by diagonal entries kept, off-diagonal ones dropped); when it sends K entries
          it is Top-K, whose bound is >= K/(2D - K) for d <= K <= D.
        * rankr: Eckart-Young, the R largest of d squared eigenvalues (M = I attains).
        """
        d, K, D = self.d, self.K, self.D
        return {"identity": 1.0, "topk": (2 * K - min(K, d)) / d ** 2,
                "toplek": K / (2 * D - K), "rankr": self.R / d}[self.name]

    @property
    def delta_triangle(self):
        """Top-K's and TopLEK's share K/D in the upper triangle's own norm (what
        TopLEK's stopping test keeps; not FedNL's Frobenius class)."""
        return self.K / self.D

    @property
    def omega(self):
        """Rand-K and RandSeqK: every entry of u is sent with probability K/D and
        scaled by D/K, so E (C_j - u_j)^2 = (D/K - 1) u_j^2 entry by entry; weighted
        (1 on the diagonal, 2 off it) the sum is (D/K - 1) ||M||_F^2: equality for
        every M, in Frobenius norm as on the triangle."""
        return self.D / self.K - 1.0

    def alpha_theory(self):
        """1 - sqrt(1 - delta) (contractive), 1 / (omega + 1) (unbiased)."""
        if self.kind == "unbiased":
            return 1.0 / (self.omega + 1.0)
        return 1.0 - float(np.sqrt(1.0 - self.delta))

    def alpha_largest(self):
        """The largest rate FedNL's theory covers: 1 for a contractive compressor (the
        paper's second choice; ||M - C(M)||_F^2 <= (1 - delta) ||M||_F^2 is then the
        Hessian error's own contraction), 1 / (omega + 1) for an unbiased one."""
        return 1.0 if self.kind == "contractive" else self.alpha_theory()

    def words(self):
        """Message length in float64 words; None when it varies (toplek)."""
        return {"identity": self.D, "topk": self.K + index_words(self.K),
                "randk": self.K + index_words(self.K), "randseqk": self.K,
                "toplek": None, "rankr": self.R * (self.d + 1)}[self.name]

    def max_words(self):
        return self.K + index_words(self.K) if self.name == "toplek" else self.words()

    # -- the two ends -------------------------------------------------------
    def seq_offset(self, k, t):
        """RandSeqK's offset for client k in round t (shared seed: both ends):
        a SplitMix64 hash of (seed, k, t) modulo D (a few integer operations;
        a numpy Generator per client and round cost 50 us)."""
        h = 0
        for v in (self.seed, k, t):
            h = splitmix64(h ^ (int(v) & MASK64))
        return h % self.D

    def encode(self, M, rng=None, k=0, t=0):
        """The message for C(M); ``rng`` draws Rand-K's indices."""
        return self.encode_upper(M[self.triu], rng, k, t)

    def encode_upper(self, u, rng=None, k=0, t=0):
        """The message for C(M), from M's upper triangle u (D entries)."""
        if self.name == "rankr":
            import scipy.linalg as sla
            lam, V = sla.eigh(self.symmetric(u))
            keep = np.argsort(-np.abs(lam), kind="stable")[:self.R]
            return np.concatenate((lam[keep], V[:, keep].T.ravel()))
        if self.name == "identity":
            return u
        if self.name == "randseqk":
            idx = (self.seq_offset(k, t) + np.arange(self.K)) % self.D
            return u[idx] * (self.D / self.K)
        if self.name == "randk":
            idx = np.sort(rng.choice(self.D, size=self.K, replace=False))
            return np.concatenate((u[idx] * (self.D / self.K), pack_indices(idx)))
        idx = top_indices(u, self.K)
        if self.name == "toplek":
            idx = idx[:toplek_count(u[idx], float(u @ u), self.delta_triangle)]
            return np.concatenate((u[idx], pack_indices(idx)))      # k + ceil(k/2) words
        return np.concatenate((u[idx], pack_indices(idx)))

    def decode(self, msg, k=0, t=0):
        """C(M) as a dense symmetric d x d matrix, from the message."""
        return self.symmetric(self.decode_upper(msg, k, t))

    def decode_upper(self, msg, k=0, t=0):
        """The upper triangle of C(M) (D entries), from the message."""
        u = np.zeros(self.D)
        self.accumulate(u, msg, 1.0, k, t)
        return u

    def accumulate(self, u, msg, weight, k=0, t=0):
        """u += weight * (upper triangle of C(M)), touching only the sent entries."""
        d, K = self.d, self.K
        if self.name == "rankr":
            lam, V = msg[:self.R], msg[self.R:].reshape(self.R, d)
            u += weight * ((V.T * lam) @ V)[self.triu]
        elif self.name == "identity":
            u += weight * msg
        elif self.name == "randseqk":
            u[(self.seq_offset(k, t) + np.arange(K)) % self.D] += weight * msg
        elif self.name == "toplek":
            c = 2 * msg.size // 3                   # inverts size = c + ceil(c/2)
            u[unpack_indices(msg[c:], c)] += weight * msg[:c]
        else:                                       # indices are unique within a message
            u[unpack_indices(msg[K:], K)] += weight * msg[:K]

    def frobenius(self, u):
        """||M||_F from M's upper triangle (off-diagonal entries count twice)."""
        return float(np.sqrt(2.0 * (u @ u) - np.sum(u[self.diagonal] ** 2)))

    def symmetric(self, u):
        """The symmetric matrix whose upper triangle is u."""
        M = np.zeros((self.d, self.d))
        M[self.triu] = u
        M.T[self.triu] = u
        return M


MASK64 = (1 << 64) - 1


def splitmix64(x):
    """SplitMix64's finaliser (Steele, Lea, Flood 2014): a well-mixed 64-bit hash."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def top_indices(u, K):
    """Indices of the K entries of u largest in magnitude, largest first (ties:
    the lower index first, so both ends and every run agree)."""
    if K >= u.size:
        part = np.arange(u.size)
    else:
        part = np.argpartition(-np.abs(u), K - 1)[:K]
    order = np.lexsort((part, -np.abs(u[part])))
    return part[order]


def toplek_count(top_values, total, delta):
    """Fewest k with ||u - top_k(u)||^2 <= (1 - delta) ||u||^2, given the
    entries sorted by magnitude (their squares' running sum is what is kept)."""
    if total == 0.0:
        return 0
    kept = np.cumsum(top_values ** 2)
    need = total - (1.0 - delta) * total
    return int(min(top_values.size, np.searchsorted(kept, need * (1 - 1e-15)) + 1))
