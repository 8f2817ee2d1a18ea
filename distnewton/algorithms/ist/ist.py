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

Sketches (``sketch``; drawn by :mod:`.sketches`):

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

Options from the slides (Shulgin and Richtarik, ICML 2023 workshop; equation
numbers are the slides'):

* ``step_size: theory`` replaces ``gamma`` by the step the slides' theorems
  allow on ridge.  "If W_bar := 1/2 E[L_bar B_bar^k + B_bar^k L_bar] >= 0 (22),
  and there exists a constant theta > 0: E[B_bar^k L_bar B_bar^k] <= theta W_bar
  (23), and the step size is chosen as 0 < gamma <= 1/theta", Theorem (24)
  holds; for the preconditioned Perm-1 sketch (``perm_precond`` with d = K,
  B_bar^k = I on every draw) Theorem (19) asks "0 < gamma <= (1/2 - beta) /
  (beta + 1/2), for beta in (0, 1/2)" (``theory_beta``).  The step taken is
  gamma = 1/theta, and min(1/theta, (1/2 - beta)/(beta + 1/2)) when both apply
  (always Theorem (19)'s there: theta = 1).  theta is computed exactly from the
  L_i (:mod:`.analysis`): one *charged* round before the first step, every
  worker sending X_i^T X_i and X_i^T y_i (d^2 + d floats up; the ridge columns
  below then come from it, whatever ``analysis`` says).  Only on ``ridge``, one
  local full-gradient step, d <= ANALYSIS_MAX_D and d >= K for the permutation
  sketches (else exit code 2, naming the key); W_bar not positive definite
  (theta undefined: naive ``perm`` on badly scaled data) stops the run with
  exit code 2 too.
* ``precondition: homogeneous``: "Define D = Diag(L).  Then, the original problem
  can be converted to f_i(D^{-1/2} x) = 1/2 x^T (D^{-1/2} L D^{-1/2}) x (29)";
  with Perm-1 sketches E[B_bar^k] = n Diag(L~) = n I (30).  IST runs on
  u = D^{1/2} x with D = Diag(L) (ridge: exactly (1/N) ||X e_j||^2 + lambda;
  logistic: the curvature bound below), the sketches acting on u.  D and the
  C_i are diagonal, so C_i u = D^{1/2} C_i x and in x the local step is

      z <- z - gamma C_i D^{-1} grad F_i(z)       (coordinate j: step gamma c_j / D_jj),

  the same submodels w_i = C_i x and the same merge: the scattered scale is
  c_i / D on S_i (q_i floats, no longer one), and ``identity`` broadcasts
  D^{-1} (d floats more per worker and round).  D costs the ``perm_precond``
  diagonal round (once; shared with it; with ``step_size: theory`` taken from
  the L_i instead).  With ``perm_precond`` the sketch's diagonal is then
  [L_i]_jj / D_jj, the u-space curvature.

Analysis logged on ``ridge`` (``analysis: true``; one *logging-only* round when
the algorithm starts, counted in ``eval_rounds``/``eval_bytes``, never charged
nor timed: every worker sends X_i^T X_i and X_i^T y_i, the master forms L_i, b_i;
with ``step_size: theory`` the charged round above instead).  Computed only for
one local full-gradient step, d <= ANALYSIS_MAX_D and the sketches identity,
bernoulli, and perm / perm_precond with d >= K (else NaN): the neighbourhood
bound sqrt(E||x^k - x*||^2) <= rho^{k/2} ||x^0 - x*|| + R (1 - rho^{k/2}), the
bias ||E[B]^{-1} E[h] - x*|| and the slides' h, sigma^2, theta, W_bar with the
right-hand sides of Theorems (19) and (24): maths and columns in
:mod:`.analysis`, exact moments in :mod:`.moments`.  ``dist_opt`` is for
logging only: the algorithm never uses x* (``step_size: theory`` uses theta, a
function of the L_i only).

Master state: x, the diagonal table (perm_precond, homogeneous), the step in
use, the analysis state and round counter (numpy arrays, scalars and a dict) and
the sketch generator (``self.rng``); the workers keep nothing between rounds (their
batch stream is ``ctx.rng``).

References
----------
.. [1] E. Shulgin, P. Richtarik, "Towards a better theoretical understanding of
   independent subnetwork training", arXiv:2306.16484.
.. [2] R. Szlendak, A. Tyurin, P. Richtarik, "Permutation compressors for provably
   faster distributed nonconvex optimization", ICLR 2022.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp

from ...errors import UserError
from ...params import BOOL, FLOAT, INT, STR, Param, at_least, in_open_closed, step
from ...runtime import worker_task
from ...stopping import local_range
from ..base import Algorithm
from ..control import Control
from ..minibatch import grad_sum, rows_of, sample_rows
from . import analysis as A
from .analysis import quadratic_analysis  # noqa: F401  (re-exported)
from .sketches import SKETCHES, draw_sketches, encode

#: l'' bound used for the perm_precond curvature diagonal
CURVATURE_BOUND = {"ridge": 1.0, "logistic": 0.25, "squared_hinge": 2.0}


# -- worker side ----------------------------------------------------------
def local_steps(ctx, z, idx, scale, phi):
    """``local_steps`` sketched gradient steps on F_i from z (modified in place),
    restricted to ``idx`` (an index array, or slice(None) for all); returns z[idx].

    The data part of grad F_i is (n_i/|B|) s_B(z) (:func:`.minibatch.grad_sum`) on
    the whole shard or ``batch`` rows drawn from the worker's stream."""
    p, shard = ctx.params, ctx.shard
    n_i, lam = shard.n, shard.penalty
    for _ in local_range(p.local_steps):                 # a stop signal cuts the phase
        rows = sample_rows(ctx.rng, n_i, p.batch)         # None: the whole shard
        gs = grad_sum(shard.loss, z, rows_of(shard, rows))
        if rows is not None:                                # (n_i/|B|) s_B(z)
            gs = gs * (n_i / len(rows))
        z[idx] -= phi * scale * (gs[idx] + n_i * (lam[idx] if np.ndim(lam) else lam) * z[idx])
    return z[idx]


@dataclass(frozen=True)
class Header(Control):
    """Broadcast with every IST round (1 float)."""

    phi: float      # gamma K / N: the local steps' common factor


@worker_task("ist.full")
def _full(ctx, x, header, scale=None):
    """identity sketch: z_i after local steps from x (d floats); ``scale``: the
    coordinate steps D^{-1} (``precondition: homogeneous``), else 1."""
    return local_steps(ctx, np.array(x, dtype=np.float64), slice(None),
                       1.0 if scale is None else scale, Header.unpack(header).phi)


@worker_task("ist.sub")
def _sub(ctx, header, payload):
    """Submodel [q, S_i, w_i on S_i, c_i on S_i (1 or q)] -> z_i on S_i (q floats)."""
    q = int(payload[0])
    if q == 0:
        return np.empty(0)
    idx = payload[1:1 + q].astype(np.intp)
    scale = payload[1 + 2 * q:]
    z = np.zeros(ctx.shard.d)
    z[idx] = payload[1 + q:1 + 2 * q]
    return local_steps(ctx, z, idx, scale if scale.size == q else float(scale[0]),
                       Header.unpack(header).phi)


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


def open_interval(lo, hi):
    return lambda x: None if lo < x < hi else f"must be in ({lo}, {hi}), got {x}"


class IST(Algorithm):
    name = "ist"
    #: why its defaults miss 1e-6 in 500 rounds (benchmarks/defaults_check.py)
    convergence_note = (
        "first-order on submodels: with a fixed gamma each worker steps along its own shard's "
        "gradient on its block, a bias that holds it at 0.2 to 1.1 relative suboptimality "
        "after 500 rounds on the standard sets, never 1e-6 at the defaults")
    params = {
        "gamma": Param(FLOAT, 0.5, "step size of the local submodel gradient steps (identity: "
                       "stable below 2/L, like gd; perm: the blocks' curvature is ~K times larger)",
                       check=step),
        "step_size": Param(STR, "fixed", "fixed (gamma) or theory (ridge: gamma = 1/theta of the "
                           "slides' (23), min with Theorem (19)'s (1/2 - beta)/(beta + 1/2) for "
                           "preconditioned Perm-1; one charged round for the L_i)",
                           choices=("fixed", "theory")),
        "theory_beta": Param(FLOAT, 1 / 6, "step_size theory: Theorem (19)'s beta in (0, 1/2) "
                             "(1/6: gamma = 1/2)", check=open_interval(0.0, 0.5)),
        "sketch": Param(STR, "perm", "perm (Perm-q), perm_precond (Perm with "
                        "sqrt(K/[L_i]_jj) scaling), identity (= fixed-step gd), bernoulli",
                        choices=SKETCHES),
        "precondition": Param(STR, "none", "none, or homogeneous (IST on D^{1/2} x, D = Diag(L): "
                              "the slides' (29); one round once for D)",
                              choices=("none", "homogeneous")),
        "p": Param(FLOAT, 0.5, "bernoulli: probability of keeping a coordinate",
                   check=in_open_closed(0.0, 1.0)),
        "local_steps": Param(INT, 1, "local submodel gradient steps per round",
                             check=at_least(1)),
        "batch": Param(INT, None, "rows per local gradient (none: the whole shard)",
                       check=at_least(1), nullable=True),
        "analysis": Param(BOOL, True, "ridge: log dist_opt/dist_bound/bias/radius/rho and the "
                          "slides' h, sigma^2, theta, W_bar (one logging-only round at the start)"),
    }
    columns = {c: np.float64 for c in A.COLUMNS}

    @classmethod
    def validate(cls, params, problem, seed=0):
        p = SimpleNamespace(**params)
        why = A.unsupported(problem, p, len(problem.sizes))
        if p.step_size == "theory" and why:
            raise UserError(f"algorithm.step_size: theory needs {why}")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)       # self.rng: the master's stream (run.seed, 0)
        self.diag = None                        # K x d curvature diagonals of the L_i
        self.dinv = None                        # D^{-1} (precondition: homogeneous)
        self.k = 0                              # IST rounds done
        self.gamma = self.p.gamma if self.p.step_size == "fixed" else None
        self.ridge = None                       # ridge analysis state (analysis.start_log)
        if self.p.analysis and self.gamma is not None:
            self._analyse(charged=False)        # here, so that wall_time never includes it

    @property
    def x_star(self):
        """L^{-1} b of the ridge analysis (None without it): for logging and tests."""
        return None if self.ridge is None else self.ridge["x_star"]

    # one-time rounds
    def _fetch_diag(self):
        """[L_i]_jj for every worker (1 counted round, d floats up each)."""
        prob, K = self.prob, self.rt.K
        colsq = np.vstack(self.rt.round("ist.colsq", up=[prob.d] * K))
        kappa = CURVATURE_BOUND[prob.loss]
        sizes = np.asarray(prob.sizes, dtype=float)[:, None]
        self.diag = (K / prob.n) * (kappa * colsq + sizes * prob.penalty)

    def _quadratics(self, charged):
        """The L_i, b_i of every worker (one round: logging-only unless ``charged``)."""
        prob, K, d = self.prob, self.rt.K, self.prob.d
        if charged:
            out = self.rt.round("ist.quadratic", up=[d * d + d] * K)
        else:
            with self.rt.evaluating():          # logging only: never charged
                out = self.rt.round("ist.quadratic", up=[d * d + d] * K)
        Ls, bs = [], []
        for o, n_i in zip(out, prob.sizes):
            Ls.append((K / prob.n) * (o[:d * d].reshape(d, d) + n_i * prob.penalty * np.eye(d)))
            bs.append((K / prob.n) * o[d * d:])
        return Ls, bs

    def _analyse(self, charged):
        """Ridge analysis (and with ``step_size: theory``, the step)."""
        p = self.p
        if A.unsupported(self.prob, p, self.rt.K, perm_k=False):
            return
        Ls, bs = self._quadratics(charged)
        try:
            res = quadratic_analysis(Ls, bs, p.sketch, self.gamma or 1.0, p.p, p.precondition)
        except np.linalg.LinAlgError:           # singular L (lambda = 0, rank deficient)
            res = None
        if self.gamma is None:                  # step_size: theory
            self.diag = np.array([np.diag(L) for L in Ls])
            self.gamma = None if res is None else A.theory_gamma(res, p.theory_beta)
            if self.gamma is None:
                why = ("L is singular" if res is None else
                       f"W_bar (22) is not positive definite (lambda_min {res['W_min']:.3g})")
                raise UserError(f"algorithm.step_size: theory: {why}, so no theta (23) exists "
                                f"for sketch {p.sketch}; try precondition: homogeneous or "
                                "step_size: fixed")
            A.set_gamma(res, self.gamma)
        if res is not None:
            self.ridge = A.start_log(res, self.w, self.gamma)

    def step(self):
        rt, prob, p, K, d = self.rt, self.prob, self.p, self.rt.K, self.prob.d
        if self.gamma is None:
            self._analyse(charged=True)         # step_size: theory: 1 round, once
        homogeneous = p.precondition == "homogeneous"
        if (p.sketch == "perm_precond" or homogeneous) and self.diag is None:
            self._fetch_diag()                  # 1 round, once
        if homogeneous and self.dinv is None:
            self.dinv = 1.0 / self.diag.mean(axis=0)        # D = Diag(L) = (1/K) sum_i D_i
        if self.ridge is not None:
            A.accumulate(self.ridge, self.w)
        header = Header(phi=self.gamma * K / prob.n).pack()
        x = self.w
        if p.sketch == "identity":
            extra = (self.dinv,) if homogeneous else ()
            zs = rt.round("ist.full", x, header, *extra, up=[d] * K)
            acc = np.zeros(d)
            for z in zs:
                acc += z
            self.w = acc / K
        else:
            diag = self.diag * self.dinv if homogeneous and self.diag is not None else self.diag
            sk = draw_sketches(self.rng, p.sketch, d, K, p.p, diag)
            dinv = self.dinv if homogeneous else None
            payload = [encode(idx, c * x[idx], c if dinv is None else c * dinv[idx])
                       for idx, c in sk]
            zs = rt.round("ist.sub", header, up=[idx.size for idx, _ in sk], scatter=payload)
            acc, cov = np.zeros(d), np.zeros(d)
            for (idx, c), z in zip(sk, zs):
                acc[idx] += z
                cov[idx] += c
            self.w = acc / K + (1.0 - cov / K) * x
        self.k += 1
        log = {} if self.ridge is None else A.row(self.ridge, self.w, self.k)
        return {"step_size": self.gamma, **log}
