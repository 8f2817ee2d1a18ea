"""RANL: Newton with a one-time Hessian, pruning masks and stale-region aggregation.

Chen, Yuan, Tao, Wang, Cai, Yu, "Adaptive pruning-based Newton's method for
distributed learning", arXiv 2308.10154 (later called DANL).

Once, at the first iteration (w = x0):

    every worker reduces n_k Hess F_k(x0) on ``hessian_batch`` of its rows
    (default all: scaled by n_k / batch otherwise); the master forms
        H = sum_k (n_k/n) Hess F_k(x0)        (+ lambda I: F_k includes it)
    which is the paper's (1/N) sum_k Hess F_k(x0) for equal shards and the
    exact global Hessian with full batches.              [1 round: d*d floats up]
    [H]_mu = V max(Lambda, mu) V^T (eigenvalue clipping, ``scipy.linalg.eigh``),
    factored once (``scipy.linalg.cho_factor``) and reused for the whole run.

Every iteration t (one round):

1. the master draws the masks m_k: worker k trains s_k = floor(c_k Q) of the Q
   regions (capacity c_k), every region trained by >= ``tau`` workers
   (:mod:`.masks`), and sends each worker its pruned sub-model
   x_t (.) m_k: [s_k, its regions, x_t on their coordinates] scattered
   (``eval_at: pruned``), or x_t to all and the regions scattered (``eval_at:
   full``, and with a safeguard, whose loss needs the whole x_t);
                    [pruned: s_k + 1 + |m_k| floats down; full: d down + s_k]
2. worker k replies only the entries of its regions of
       grad F_k(z) = (1/b) sum_{j in batch} grad l_j(z) + lambda z,
   z = x_t (.) m_k, its untrained regions zeroed (``eval_at: pruned``) or
   z = x_t (``eval_at: full``); batch = ``batch`` rows drawn afresh from the
   worker's own stream (:mod:`.minibatch`, as IST's), or the whole shard
   (``batch: null``, or a shard of at most ``batch`` rows);
                                            [up: that many floats, per worker]
3. the master keeps the latest block of every (worker, region) and
   aggregates region q over the workers that have ever sent it (fresh or
   stale), weighted by shard size and renormalised:
       g_t[q] = sum_{k in C_q} n_k grad_q F_k / sum_{k in C_q} n_k
   (the paper's plain average for equal shards; with fresh full-batch blocks
   at x_t from every worker it is exactly grad f(x_t));
4. x_{t+1} = x_t - eta [H]_mu^{-1} g_t.

Defaults: a RANL that converges (to 1e-6 relative suboptimality within 80
rounds on a9a, w8a, ijcnn1 and phishing, lambda = 1/n, 4 workers: the table in
docs/algorithms/ranl.md).  It keeps the method's point, partial heterogeneous
sub-models (``capacities: uniform(0.5, 1.0)``, masks, stale-region
aggregation: each worker sends only its regions' gradient entries), and changes
what made the published choices stop short of x* or blow up:

* ``eval_at: full``: the masked gradient at the full x_t (x_t to every worker).
  The pruned sub-model's gradient grad_q F_k(x (.) m) is not grad_q F_k(x) when
  regions share curvature: x* is then no fixed point (a bias of ~1e-2 on coupled
  data), and on a9a and phishing the paper's variant diverges.
* ``batch: null``: whole-shard gradients; a 256-row batch with a unit step stops
  at a noise floor proportional to (1/b - 1/n_k) (~1e-2 on a9a).
* ``hessian_refresh: 10``: the Hessian at x0 = 0 overestimates the curvature at
  x* (w8a: 1e-2 after 500 rounds with it frozen); one d*d round every 10.
* ``safeguard: damping``: the loss rides on the gradient round (1 float, no
  extra round) and a step that raised it is undone and halved: a fresh
  Hessian with stale blocks can overshoot (a9a: one trial point at 117 f(x0)).

``preset: paper`` gives the method as published (:attr:`RANL.presets`): pruned
sub-models, 256-row mini-batches, the Hessian at x0 only, no safeguard.  The
paper gives no pseudo-code, so some of its choices are this implementation's
(docs/algorithms/ranl.md marks each key "the paper's" or "ours, because ..."):

* ``eval_at: pruned``.  The paper is pruning-based: a worker
  holds and trains the sub-model its mask leaves ("adaptive pruning masks
  dynamically adjust model size per worker", "sub-model diversity"); a masked
  full gradient would need the whole model on every worker, which is what the
  pruning is there to avoid.  Its price: grad_q F_k(x (.) m) is not
  grad_q F_k(x) when regions share curvature, so x* is not a fixed point and
  the iterates settle where the region-wise pruned gradients cancel (exact
  only when no row spans two regions).  ``eval_at: full`` converges to x*.
* ``capacities: uniform(0.5, 1.0)``: partial, heterogeneous
  sub-models are the paper's setting ("diverse worker capabilities"); the
  range is ours: with a lower end of 0.5 any two workers cover every region
  (tau 1) for every seed, which uniform(0.3, 1.0) does not (one worker alone
  cannot: set ``capacities: 1``).
* ``batch: 256``: the paper's gradients are
  stochastic, grad F_k(x, xi_k^t); the size is ours (a common mini-batch, 3%
  of an a9a shard with 4 workers).  With a unit step the noise is not
  averaged out: the error stops at a floor proportional to (1/b - 1/n_k).
* ``tau`` 1, ``eta`` 1 (the paper's step is the plain Newton step),
  ``mu`` = lambda (ours: the strong-convexity constant of the regularised loss),
  ``hessian_batch`` null (the one-time Hessian on the whole shard: Lemma 1's
  error bound is smallest there, and it is paid once), ``hessian_refresh`` 0
  and ``safeguard: none`` (the paper's one-time Hessian and plain step).

History columns: ``coverage_min``/``coverage_mean`` (workers per region in
this round), ``staleness`` (mean age, in iterations, of the (worker, region)
blocks used: 0 when all are fresh), ``hessian_computed`` (1 when this
iteration had a Hessian round).

Beyond the paper (on by default, off in ``preset: paper``):

* ``hessian_refresh: N`` recomputes, re-projects and re-factors H at the
  current point every N iterations (one more d*d round each time).
* ``safeguard: line_search``: the workers add their loss sum at x_t to the
  gradient reply (1 float), then a distributed Armijo backtracking along the
  aggregated direction eta [H]_mu^{-1} g_t (``primitives.backtracking``, one
  counted round, trial steps alpha_max 2^-j) picks the step.
* ``safeguard: damping`` (no extra round): the loss at x_t rides on the
  gradient round (1 float).  If it is above the loss at the last accepted
  point, x_t is rejected: its blocks are discarded, the step size is halved
  and the model goes back to the accepted point, where the next round
  re-evaluates (so the blocks there are refreshed before the next, shorter
  step: retrying the old direction could fail for ever, a stale aggregate
  need not be a descent direction).  A step that decreases f doubles the
  step size, up to eta.  A rejected iteration logs step_size 0.

As a :class:`.newton_type.NewtonType`: the Hessian round and steps 1-3 are the
gradient hook (the held curvature is the factor of [H]_mu; a point the damping
safeguard rejects ends the iteration there), step 4's eta [H]_mu^{-1} g_t the
direction hook, the safeguards the line-search hook (the step along it: 1,
Armijo backtracking, or eta_t / eta).  A line search that finds no decrease
stalls the run only when every block was fresh.

Master state: numpy arrays and scalars (blocks, stamps, Cholesky factor,
capacities, masks' generator); worker state: the region layout in
``ctx.state``.

References
----------
.. [1] Chen, Yuan, Tao, Wang, Cai, Yu, "Adaptive pruning-based Newton's method for
   distributed learning", arXiv:2308.10154.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ...errors import UserError
from ...linalg import check_dense_hessian, cho_factor_damped, log
from ...params import (FLOAT, INT, STR, Param, at_least, nonneg, positive, preset_param,
                       step)
from ...params import seed as seed_range
from ...runtime import worker_task
from .. import primitives as P
from ..base import LINE_SEARCH, LS_STEPS_APPROX
from ..minibatch import mean_grad, rows_of, sample_rows
from ..newton_type import Iterate, NewtonType
from .masks import (MASK_STREAM, check_capacities, check_regions, check_tau,
                    draw_masks, parse_capacities, region_counts, region_layout)


# -- worker side ----------------------------------------------------------
def _layout(ctx):
    """The region of every coordinate (computed once, kept in ctx.state)."""
    if "ranl.region_of" not in ctx.state:
        p = ctx.params
        ctx.state["ranl.region_of"] = region_layout(ctx.shard.d, p.regions, p.n_regions,
                                                    p.region_seed)
    return ctx.state["ranl.region_of"]


def local_gradient(shard, z, rows=None):
    """grad F_k(z) on ``rows`` (the whole shard when None): mean of grad l_j + lambda z."""
    if rows is None:
        return shard.local_grad(z)
    return mean_grad(shard.loss, shard.penalty, z, rows_of(shard, rows))


@worker_task("ranl.hessian")
def _hessian(ctx, w):
    """n_k * (data part of Hess F_k(w)) on hessian_batch rows, as d*d floats."""
    shard = ctx.shard
    rows = sample_rows(ctx.rng, shard.n, ctx.params.hessian_batch)
    if rows is None:
        return shard.hess_sum(w).ravel()
    X, y = shard.X[rows], shard.y[rows]
    D = shard.loss.deriv2(X @ w, y)
    if shard.s is not None:
        D = D * shard.s[rows]
    H = np.asarray((X.T @ X.multiply(D[:, None]).tocsr()).todense())
    return (shard.n / len(rows)) * H.ravel()


@worker_task("ranl.grad")
def _grad(ctx, w, regions):
    """[loss sum at w (safeguards only)] + grad F_k entries of the given regions."""
    p, shard = ctx.params, ctx.shard
    trained = np.isin(_layout(ctx), regions.astype(np.int64))
    z = w * trained if p.eval_at == "pruned" else w
    g = local_gradient(shard, z, sample_rows(ctx.rng, shard.n, p.batch))[trained]
    if p.safeguard == "none":
        return g
    return np.concatenate(([shard.loss_sum(w)], g))


@worker_task("ranl.grad_pruned")
def _grad_pruned(ctx, sub):
    """The pruned sub-model only, sub = [s_k, its s_k regions, x_t on their
    coordinates]: grad F_k(x_t (.) m_k) entries of those regions."""
    s = int(sub[0])
    trained = np.isin(_layout(ctx), sub[1:1 + s].astype(np.int64))
    z = np.zeros(ctx.shard.d)
    z[trained] = sub[1 + s:]
    rows = sample_rows(ctx.rng, ctx.shard.n, ctx.params.batch)
    return local_gradient(ctx.shard, z, rows)[trained]


# -- master side ----------------------------------------------------------
#: the method as published (the defaults until this release); docs/algorithms/ranl.md
#: marks each key "the paper's" or "ours"
PAPER = {"capacities": "uniform(0.5, 1.0)", "tau": 1, "mu": None, "eta": 1.0, "batch": 256,
         "hessian_batch": None, "eval_at": "pruned", "hessian_refresh": 0, "safeguard": "none"}


class RANL(NewtonType):
    name = "ranl"
    presets = {"paper": PAPER}
    params = {
        "regions": Param((int, str), 10, "Q contiguous equal blocks of coordinates, or "
                         "'random': n_regions blocks of randomly assigned coordinates",
                         check=check_regions),
        "n_regions": Param(INT, None, "number of regions with regions: random (default 10)",
                           check=at_least(1), nullable=True),
        "region_seed": Param(INT, 0, "seed of the coordinate permutation (regions: random)",
                             check=seed_range),
        "capacities": Param((int, float, list, str), "uniform(0.5, 1.0)", "fraction of "
                            "regions a worker trains per round: a number, a list (one per "
                            "worker) or 'uniform(a, b)' drawn with run.seed",
                            check=check_capacities),
        "tau": Param(INT, 1, "every region is trained by >= tau workers per round",
                     check=at_least(1)),
        "mu": Param(FLOAT, None, "eigenvalue floor of the projected Hessian "
                    "(default model.lambda)", check=positive, nullable=True),
        "eta": Param(FLOAT, 1.0, "step size: x <- x - eta [H]_mu^-1 g", check=step),
        "batch": Param(INT, None, "rows per stochastic gradient (null: the whole shard)",
                       check=at_least(1), nullable=True),
        "hessian_batch": Param(INT, None, "rows per worker for the Hessian "
                               "(default: whole shard)", check=at_least(1), nullable=True),
        "eval_at": Param(STR, "full", "gradient of the pruned sub-model x_t (.) m_k "
                         "(the paper) or masked gradient at the full x_t",
                         choices=("full", "pruned")),
        "hessian_refresh": Param(INT, 10, "recompute the Hessian every N iterations "
                                 "(0: never, the paper)", check=nonneg),
        "safeguard": Param(STR, "damping", "beyond the paper: Armijo line search (1 round) "
                           "or loss-checked step halving (no round)",
                           choices=("none", "line_search", "damping")),
        **LINE_SEARCH,
        "ls_steps": LS_STEPS_APPROX,        # stale aggregates often need small steps
        "preset": preset_param(presets),
    }
    columns = {"coverage_min": np.int64, "coverage_mean": np.float64,
               "staleness": np.float64, "hessian_computed": np.int64}

    @classmethod
    def dense_path(cls, params, d):
        return "algorithm.name", ("ranl's one-time projected Hessian is dense by design (its "
                                  "eigenvalues are clipped); use newton, giant or "
                                  "adaptive_localnewton, which have Hessian-free paths")

    @classmethod
    def validate(cls, params, problem, seed=0):
        p, K = SimpleNamespace(**params), len(problem.sizes)
        check_dense_hessian(problem.d, *cls.dense_path(params, problem.d))
        Q = int(region_layout(problem.d, p.regions, p.n_regions, p.region_seed).max()) + 1
        check_tau(p.tau, region_counts(parse_capacities(p.capacities, K, seed), Q), Q)
        if (problem.lam if p.mu is None else float(p.mu)) <= 0:
            raise UserError("algorithm.mu: defaults to model.lambda, which is 0 here: the "
                            "projected Hessian needs a floor > 0, set algorithm.mu")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        p, prob, K = self.p, self.prob, self.rt.K
        seed = int(getattr(self, "seed", kwargs.get("seed", 0)))
        self.region_of = region_layout(prob.d, p.regions, p.n_regions, p.region_seed)
        self.Q = int(self.region_of.max()) + 1
        self.capacities = parse_capacities(p.capacities, K, seed)
        self.counts = region_counts(self.capacities, self.Q)        # regions per worker
        check_tau(p.tau, self.counts, self.Q)
        self.mu = prob.lam if p.mu is None else float(p.mu)
        if self.mu <= 0:
            raise UserError("algorithm.mu: defaults to model.lambda, which is 0 here: the "
                            "projected Hessian needs a floor > 0, set algorithm.mu")
        self.mask_rng = np.random.default_rng(np.random.SeedSequence((seed, 0, MASK_STREAM)))
        self.n_k = np.asarray(prob.sizes, dtype=np.float64)
        self.blocks = np.zeros((K, prob.d))             # latest grad F_k entries
        self.stamp = np.full((K, self.Q), -1, np.int64)  # round each block came from
        self.t = 0                                      # gradient rounds so far
        self.chol = np.zeros((0, 0))                    # lower factor of [H]_mu
        self.eta_t = float(p.eta)                       # damping: current step
        self.w_acc, self.f_acc = self.w.copy(), np.inf  # damping: last accepted point
        self.trial = False                              # damping: w is a step from w_acc

    def hessian(self, w):
        """One d*d round: H at w, projected onto {M >= mu I}, factored."""
        prob, d = self.prob, self.prob.d
        S = self.rt.round("ranl.hessian", w, up=d * d).reshape(d, d) / prob.n
        H = 0.5 * (S + S.T)
        H[np.diag_indices(d)] += prob.penalty
        import scipy.linalg as sla
        evals, V = sla.eigh(H)
        M = (V * np.maximum(evals, self.mu)) @ V.T
        (self.chol, _), damp = cho_factor_damped(0.5 * (M + M.T))
        if damp:
            log.warning("ranl: projected Hessian needed damping %.3g (mu tiny vs ||H||)", damp)

    def aggregate(self):
        """g_t from the latest blocks; mean age of the blocks used."""
        have = self.stamp >= 0
        W = have * self.n_k[:, None]
        W = W / W.sum(axis=0, keepdims=True)
        g = np.einsum("kd,kd->d", W[:, self.region_of], self.blocks)
        return g, float(np.mean((self.t - self.stamp)[have]))

    # the NewtonType hooks -------------------------------------------------
    def gradient(self, fg=None):
        """The held curvature (the Hessian round: once, or every ``hessian_refresh``),
        then steps 1-3: masks, the masked gradient round, the aggregate g_t.
        Damping: a rejected x_t ends the iteration here (Iterate.g None)."""
        p, prob = self.p, self.prob
        hess = 0
        if self.chol.size == 0 or (p.hessian_refresh and self.t % p.hessian_refresh == 0):
            self.hessian(self.w)
            hess = 1
        M = draw_masks(self.mask_rng, self.counts, self.Q, p.tau)
        coords = [np.flatnonzero(m[self.region_of]) for m in M]
        extra = int(p.safeguard != "none")
        regions = [np.flatnonzero(m).astype(np.float64) for m in M]
        up = [c.size + extra for c in coords]
        if p.eval_at == "pruned" and not extra:      # each worker gets its sub-model only
            replies = self.rt.round("ranl.grad_pruned", up=up, scatter=[
                np.concatenate(([r.size], r, self.w[c])) for r, c in zip(regions, coords)])
        else:                                        # x_t to all (the loss needs all of it)
            replies = self.rt.round("ranl.grad", self.w, up=up, scatter=regions)
        self.t += 1
        cover = M.sum(axis=0)
        it = Iterate(self.w, info={"coverage_min": int(cover.min()),
                                   "coverage_mean": float(cover.mean()),
                                   "hessian_computed": hess})
        if extra:
            it.f = P.global_value(sum(float(r[0]) for r in replies), prob.n, prob.penalty, self.w)
        if p.safeguard == "damping" and not it.f <= self.f_acc:     # reject x_t
            self.eta_t *= 0.5
            if self.eta_t < p.eta * 0.5 ** p.max_backtracks:
                self.stalled = "damping: no decrease after max_backtracks halvings"
            self.w, self.trial = self.w_acc.copy(), False   # re-evaluate there next round
            it.info.update(staleness=self.aggregate()[1], step_size=0.0)
            return it
        for k, (c, r) in enumerate(zip(coords, replies)):
            self.blocks[k, c] = r[extra:]
            self.stamp[k, M[k]] = self.t
        it.g, it.info["staleness"] = self.aggregate()
        return it

    def direction(self, it):
        """Step 4's direction: p_t = eta [H]_mu^{-1} g_t, from the held factor."""
        import scipy.linalg as sla
        return self.p.eta * sla.cho_solve((self.chol, True), it.g, check_finite=False)

    def line_search(self, it, p):
        """The step along p_t: 1 (the paper); Armijo backtracking (``line_search``);
        ``damping``: eta_t / eta (x_t becomes the accepted point; a step after a
        decrease doubles eta_t, up to eta)."""
        if self.p.safeguard == "line_search":
            return super().line_search(it, p)
        if self.p.safeguard == "damping":
            if self.trial:                                   # a step that decreased f
                self.eta_t = min(float(self.p.eta), 2.0 * self.eta_t)
            self.w_acc, self.f_acc, self.trial = self.w.copy(), it.f, True
            return self.eta_t / self.p.eta
        return 1.0

    def check(self, it, alpha):
        """A line search without decrease stalls only on fresh blocks: a stale
        aggregate need not be a descent direction, the next round refreshes it."""
        if it.info["staleness"] == 0.0:
            super().check(it, alpha)

    def update(self, it, p, alpha):
        """x_{t+1} = x_t - alpha p_t; step_size logs alpha eta."""
        return {**super().update(it, p, alpha), "step_size": alpha * self.p.eta}
