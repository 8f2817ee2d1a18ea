"""IST: Independent Subnetwork Training, submodel gradient descent with diagonal sketches.

Shulgin and Richtarik, "Towards a Better Theoretical Understanding of
Independent Subnetwork Training" (arXiv 2306.16484), Algorithm 1 "Distributed
Submodel (Stochastic) Gradient Descent"; permutation sketches from Szlendak,
Tyurin and Richtarik (ICLR 2022).

Notation.  K workers (the paper's n), d features, N training rows, worker i
holds n_i rows.  The package's objective is f = sum_i (n_i/N) f_i with f_i the
local objective (see :mod:`distnewton.objectives`); the paper's is
f = (1/K) sum_i f_i.  IST runs the paper's algorithm on

    F_i = (K n_i / N) f_i,         so that  f = (1/K) sum_i F_i  exactly

(F_i = f_i for equal shards).  This weighting is what makes the ``identity``
sketch *exactly* fixed-step ``gd`` for any shard sizes.  On ``ridge``,
F_i(x) = 1/2 x^T L_i x - x^T b_i + const with

    L_i = (K/N) (X_i^T X_i + n_i lambda I),   b_i = (K/N) X_i^T y_i,
    L = (1/K) sum_i L_i = X^T X / N + lambda I,   b = (1/K) sum_i b_i,  x* = L^{-1} b.

Round k (one communication round):

1. the master draws diagonal sketches C_1..C_K with its own stream
   (``default_rng(SeedSequence((run.seed, 0)))``, :attr:`Algorithm.rng`), and
   sends worker i only its submodel: the coordinates S_i = supp(C_i), the
   values w_i = C_i x^k on S_i and the sketch's diagonal on S_i, scattered as
   float64 ``[q_i, S_i (q_i), w_i (q_i), c_i (1 if all equal, else q_i)]``,
   plus the broadcast scalar phi = gamma K / N;
2. worker i takes ``local_steps`` steps on its submodel, from z = w_i,

       z <- z - gamma C_i grad F_i(z)
         = z - phi c_i * (sum_{j in B} l'_j(z) x_j * (n_i/|B|) + n_i lambda z)   on S_i,

   B = its whole shard, or ``batch`` rows drawn from the worker's own stream
   (``ctx.rng``, a fresh batch every step; :mod:`.minibatch`, as RANL's); z
   stays supported on S_i.  It replies z_i = z restricted to S_i (q_i floats,
   ``Gatherv``);
3. the master merges (coordinates outside S_i contribute 0 to the sums)

       x^{k+1} = (1/K) sum_i z_i  +  (I - (1/K) sum_i C_i) x^k
               = x^k + (1/K) sum_i (z_i - w_i).

   For ``identity`` and ``perm`` every coordinate's scales sum to K, i.e.
   (1/K) sum_i C_i = I exactly, so the correction term is 0 and the merge is
   Algorithm 1's x^{k+1} = (1/K) sum_i z_i verbatim.  For ``bernoulli`` and
   ``perm_precond`` (1/K) sum_i C_i != I, and Algorithm 1's literal merge would
   rescale x^k (zero every coordinate no worker kept; multiply x_j by
   1/sqrt(K [L_i]_jj)); the correction makes the round the step
   x^{k+1} = x^k - gamma g^k, g^k = (1/K) sum_i C_i grad F_i(C_i x^k)
   (one local step), which is the iteration the paper's analysis studies.

Sketches (``sketch``):

* ``perm`` (Perm-q): a fresh uniform permutation pi of [d] each round.
  d >= K: pi is cut into K blocks of floor(d/K) or ceil(d/K) coordinates
  (``numpy.array_split``) and the blocks go to the workers in a uniformly
  random order (so which workers get the larger blocks is random too); each
  coordinate belongs to exactly one worker and C_i = K sum_{j in S_i} e_j e_j^T.
  d = qK is the paper's Perm-q, d = K its Perm-1.  K > d (Szlendak et al.'s
  d < n case, generalised): worker slot i is given one coordinate of the
  multiset in which coordinate j appears c_j in {floor(K/d), ceil(K/d)} times
  (sum c_j = K, the coordinates with the extra copy chosen at random), in a
  random order, scaled by K / c_j (= d when d divides K, Szlendak et al.'s
  scale).  Either way (1/K) sum_i C_i = I exactly and E[C_i] = I.
  Down: 2 q_i + 2 floats to worker i (sum: 2d + 2K for d >= K); up: q_i.
* ``perm_precond``: the heterogeneous preconditioned Perm-1 of the slides,
  C_i = sqrt(K / [L_i]_{pi_i pi_i}) e_{pi_i} e_{pi_i}^T, generalised to any
  d, K with the ``perm`` assignment: [C_i]_jj = sqrt(s_j / [L_i]_jj) on S_i,
  s_j = K / c_j the ``perm`` scale.  [L_i]_jj is each worker's own curvature
  diagonal, fetched once at the first iteration (1 counted round, d floats up
  per worker: the column sums of squares of X_i): ridge, exactly
  (K/N)(||X_i e_j||^2 + n_i lambda); logistic, the bound with l'' <= 1/4,
  (K/N)(||X_i e_j||^2 / 4 + n_i lambda) (a fixed bound, not the Hessian at
  x^k: the sketch then needs no extra round and no state of x).  A coordinate
  with [L_i]_jj = 0 (empty column, lambda = 0) does not enter F_i; its scale is
  then sqrt(s_j) (any value gives the same iterates).  With d = K and
  one local full-gradient step, (1/K) sum_i C_i L_i C_i = I on every round.
* ``identity``: C_i = I; x^k is broadcast (d floats down per worker, like
  ``gd``), every worker replies z_i (d floats).  One local full-gradient step
  gives x^{k+1} = (1/K) sum_i (x^k - gamma grad F_i(x^k)) = x^k - gamma grad f(x^k):
  fixed-step ``gd`` with step_size = gamma, for any shard sizes (the tests check
  the histories agree to 1e-12; the bytes differ: ``gd`` reduces d + 1 floats,
  IST gathers d per worker and broadcasts one more float).
* ``bernoulli``: each worker keeps each coordinate independently with
  probability p; C_i = (1/p) diag(mask_i); E[C_i] = I.  A worker that keeps
  nothing receives [0, 1/p] and replies nothing.

Analysis logged on ``ridge`` (``analysis: true``; one *logging-only* round when
the algorithm starts, counted in ``eval_rounds``/``eval_bytes``, never charged
nor timed: every worker sends X_i^T X_i and X_i^T y_i, the master forms L_i, b_i).
Computed only for one local full-gradient step, d <= ANALYSIS_MAX_D and the
sketches identity, bernoulli, and perm / perm_precond with d >= K (else NaN).
Write the round as the random affine map x^{k+1} = x^k - gamma (B_k x^k - h_k),
B_k = (1/K) sum_i C_i L_i C_i, h_k = (1/K) sum_i C_i b_i, drawn independently
of x^k, and e^k = x^k - x*:

    e^{k+1} = (I - gamma B_k) e^k - gamma g_k(x*),    g_k(x*) = B_k x* - h_k.

Minkowski's inequality in L2(Omega) with E||(I - gamma B_k) e||^2 <= rho ||e||^2
(B_k independent of e^k) gives, for every k,

    sqrt(E||x^k - x*||^2) <= rho^{k/2} ||x^0 - x*|| + R (1 - rho^{k/2}),
    rho   = lambda_max(E[(I - gamma B_k)^2]) = lambda_max(I - 2 gamma E[B] + gamma^2 E[B^2]),
    sigma = sqrt(E||g_k(x*)||^2),     R = gamma sigma / (1 - sqrt(rho))   (rho < 1),

so IST stays, in mean square, in the ball of radius R around x* (the
neighbourhood).  It does not converge to x* in general: E[x^{k+1}] =
(I - gamma E[B]) E[x^k] + gamma E[h], so E[x^k] -> m = E[B]^{-1} E[h], and
||m - x*|| (the bias; E[h] = b for unbiased sketches, E[B] != L unless C_i = I)
is a lower bound of the limit of sqrt(E||x^k - x*||^2).  For ``perm`` with K | d,
E[B] = ((d-K)/(d-1)) L + (K - (d-K)/(d-1)) Diag(L) (Perm-1: K Diag(L)), for
``bernoulli`` E[B] = L + ((1-p)/p) Diag(L): both depend on the L_i only through
L, so the bias is the sketch's own, the same for iid and heterogeneous shards;
heterogeneity enlarges sigma, i.e. R and the spread.  sigma = 0 exactly when
g_k(x*) = 0 for every sketch: identity (B_k = L), and the interpolation case
b_i = 0 (x* = 0), where sqrt(E||x^k||^2) <= rho^{k/2} ||x^0||.  The moments
are exact (no sampling): with P = diag of a random subset S and inclusion
probabilities pi_1, pi_2, pi_3 of one, two, three given coordinates,

    E[P A P]   = pi_2 A + (pi_1 - pi_2) Diag(A),
    E[P A P A P]_jl = pi_3 (A^2)_jl + (pi_2 - pi_3)(A_jj + A_ll) A_jl       (j != l),
    E[P A P A P]_jj = pi_1 A_jj^2 + pi_2 ((A^2)_jj - A_jj^2);

``perm`` blocks are disjoint (B_k is block diagonal, no cross terms; pi from
the block-size mixture), ``bernoulli`` workers independent (pi_t = p^t).
History columns (NaN where not computed; constant ones repeat each row):
``dist_opt`` ||x^k - x*||, ``dist_bound`` the bound above (k = IST rounds
since the start), ``bias`` ||m - x*||, ``radius`` R, ``rho``.
``dist_opt`` is for logging only: the algorithm never uses x*.

Master state: x, the diagonal table (perm_precond), the analysis results and
round counter (numpy arrays and scalars) and the sketch generator
(``self.rng``); the workers keep nothing between rounds (their batch stream is
``ctx.rng``).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ..params import BOOL, FLOAT, INT, STR, Param, at_least, in_open_closed, positive
from ..runtime import worker_task
from .base import Algorithm
from .ist_analysis import quadratic_analysis
from .minibatch import grad_sum, rows_of, sample_rows

SKETCHES = ("perm", "perm_precond", "identity", "bernoulli")
#: largest d for which the ridge analysis (d x d moments per worker) is computed
ANALYSIS_MAX_D = 1000
#: l'' bound used for the perm_precond curvature diagonal
CURVATURE_BOUND = {"ridge": 1.0, "logistic": 0.25}


# -- worker side ----------------------------------------------------------
def local_steps(ctx, z, idx, scale, phi):
    """``local_steps`` sketched gradient steps on F_i from z (modified in place),
    restricted to ``idx`` (an index array, or slice(None) for all); returns z[idx].

    The data part of grad F_i is (n_i/|B|) s_B(z) (:func:`.minibatch.grad_sum`) on
    the whole shard or ``batch`` rows drawn from the worker's stream."""
    p, shard = ctx.params, ctx.shard
    n_i, lam = shard.n, shard.penalty
    for _ in range(p.local_steps):
        rows = sample_rows(ctx.rng, n_i, p.batch)         # None: the whole shard
        gs = grad_sum(shard.loss, z, rows_of(shard, rows))
        if rows is not None:                                # (n_i/|B|) s_B(z)
            gs = gs * (n_i / len(rows))
        z[idx] -= phi * scale * (gs[idx] + n_i * (lam[idx] if np.ndim(lam) else lam) * z[idx])
    return z[idx]


@worker_task("ist.full")
def _full(ctx, x, ctrl):
    """identity sketch: z_i after local steps from x (d floats)."""
    return local_steps(ctx, np.array(x, dtype=np.float64), slice(None), 1.0, float(ctrl[0]))


@worker_task("ist.sub")
def _sub(ctx, ctrl, payload):
    """Submodel [q, S_i, w_i on S_i, c_i on S_i (1 or q)] -> z_i on S_i (q floats)."""
    q = int(payload[0])
    if q == 0:
        return np.empty(0)
    idx = payload[1:1 + q].astype(np.intp)
    scale = payload[1 + 2 * q:]
    z = np.zeros(ctx.shard.d)
    z[idx] = payload[1 + q:1 + 2 * q]
    return local_steps(ctx, z, idx, scale if scale.size == q else float(scale[0]), float(ctrl[0]))


@worker_task("ist.colsq")
def _colsq(ctx):
    """Column sums of squares of X_i (d floats): the curvature diagonal's data part."""
    X, s = ctx.shard.X, ctx.shard.s
    X2 = X.multiply(X) if s is None else X.multiply(X).multiply(s[:, None])
    return np.asarray(X2.sum(axis=0)).ravel()


@worker_task("ist.quadratic")
def _quadratic(ctx):
    """[X_i^T S_i X_i (d*d), X_i^T S_i y_i (d)] (S_i the row weights, I without):
    logging-only, for the ridge analysis."""
    X, y, s = ctx.shard.X, ctx.shard.y, ctx.shard.s
    SX = X if s is None else sp.csr_matrix(X.multiply(s[:, None]))
    H = X.T @ SX
    H = H.toarray() if hasattr(H, "toarray") else np.asarray(H)
    return np.concatenate((H.ravel(), SX.T @ y))


# -- sketches (master side) ----------------------------------------------
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


class IST(Algorithm):
    name = "ist"
    params = {
        "gamma": Param(FLOAT, 0.5, "step size of the local submodel gradient steps (identity: "
                       "stable below 2/L, like gd; perm: the blocks' curvature is ~K times larger)",
                       check=positive),
        "sketch": Param(STR, "perm", "perm (Perm-q), perm_precond (Perm with "
                        "sqrt(K/[L_i]_jj) scaling), identity (= fixed-step gd), bernoulli",
                        choices=SKETCHES),
        "p": Param(FLOAT, 0.5, "bernoulli: probability of keeping a coordinate",
                   check=in_open_closed(0.0, 1.0)),
        "local_steps": Param(INT, 1, "local submodel gradient steps per round",
                             check=at_least(1)),
        "batch": Param(INT, None, "rows per local gradient (none: the whole shard)",
                       check=at_least(1), nullable=True),
        "analysis": Param(BOOL, True, "ridge: log dist_opt/dist_bound/bias/radius/rho "
                          "(one logging-only round at the start)"),
    }
    columns = {"dist_opt": np.float64, "dist_bound": np.float64, "bias": np.float64,
               "radius": np.float64, "rho": np.float64}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)       # self.rng: the master's stream (run.seed, 0)
        self.diag = None                        # K x d curvature diagonals (perm_precond)
        self.k = 0                              # IST rounds done
        self.x_star = None                      # ridge analysis (logging only)
        self.e0 = self.bias = self.radius = self.rho = math.nan
        self._analyse()                         # here, so that wall_time never includes it

    # one-time rounds
    def _fetch_diag(self):
        """perm_precond: [L_i]_jj for every worker (1 counted round, d floats up each)."""
        prob, K = self.prob, self.rt.K
        colsq = np.vstack(self.rt.round("ist.colsq", up=[prob.d] * K))
        kappa = CURVATURE_BOUND[prob.loss]
        sizes = np.asarray(prob.sizes, dtype=float)[:, None]
        self.diag = (K / prob.n) * (kappa * colsq + sizes * prob.penalty)

    def _analyse(self):
        prob, p, K, d = self.prob, self.p, self.rt.K, self.prob.d
        if (not p.analysis or prob.loss != "ridge" or d > ANALYSIS_MAX_D or p.local_steps != 1
                or (p.batch is not None and p.batch < max(prob.sizes))):
            return
        with self.rt.evaluating():              # logging only: never charged
            out = self.rt.round("ist.quadratic", up=[d * d + d] * K)
        Ls, bs = [], []
        for o, n_i in zip(out, prob.sizes):
            Ls.append((K / prob.n) * (o[:d * d].reshape(d, d) + n_i * prob.penalty * np.eye(d)))
            bs.append((K / prob.n) * o[d * d:])
        try:
            res = quadratic_analysis(Ls, bs, p.sketch, p.gamma, p.p)
        except np.linalg.LinAlgError:           # singular L (lambda = 0, rank deficient)
            return
        if res is None:
            return
        self.x_star = res["x_star"]
        self.e0 = float(np.linalg.norm(self.w - self.x_star))
        self.bias, self.radius, self.rho = res["bias"], res["radius"], res["rho"]

    def _log(self):
        if self.x_star is None:
            return {}
        dist = float(np.linalg.norm(self.w - self.x_star))
        if self.rho < 1.0:
            c = self.rho ** (self.k / 2)
            bound = c * self.e0 + self.radius * (1.0 - c)
        else:
            bound = math.inf
        return {"dist_opt": dist, "dist_bound": bound, "bias": self.bias,
                "radius": self.radius, "rho": self.rho}

    def step(self):
        rt, prob, p, K, d = self.rt, self.prob, self.p, self.rt.K, self.prob.d
        if p.sketch == "perm_precond" and self.diag is None:
            self._fetch_diag()                  # 1 round, once
        ctrl = np.array([p.gamma * K / prob.n])
        x = self.w
        if p.sketch == "identity":
            zs = rt.round("ist.full", x, ctrl, up=[d] * K)
            acc = np.zeros(d)
            for z in zs:
                acc += z
            self.w = acc / K
        else:
            sk = draw_sketches(self.rng, p.sketch, d, K, p.p, self.diag)
            payload = [encode(idx, c * x[idx], c) for idx, c in sk]
            zs = rt.round("ist.sub", ctrl, up=[idx.size for idx, _ in sk], scatter=payload)
            acc, cov = np.zeros(d), np.zeros(d)
            for (idx, c), z in zip(sk, zs):
                acc[idx] += z
                cov[idx] += c
            self.w = acc / K + (1.0 - cov / K) * x
        self.k += 1
        return {"step_size": p.gamma, **self._log()}
