"""Local SGD with adaptive diagonal scaling: Adam, RMSProp and OASIS, global or local.

Chezhegov, Skorik, Khachaturov, Shalagin, Avetisyan, Takac, Kholodov,
Beznosikov, "Local Methods with Adaptivity via Scaling" (arXiv 2406.00846).
Local SGD (:mod:`.localsgd`, whose inner loop :func:`~.localsgd.sgd` this
module calls with a preconditioner) where every local step is scaled by a
diagonal matrix with bounded eigenvalues.

Notation (the paper's).  M clients (the package's K workers), client m holds
f_m (the package's f_k: its mean loss + (lambda/2)||x||^2) with n_m rows;
f = sum_m (n_m/n) f_m.  H = ``local_steps``, gamma = ``gamma``, z a
mini-batch of ``batch`` rows from client m's shard (consecutive rows of a
per-epoch permutation drawn from the worker's stream, exactly as Local SGD).
Every local step is

    x_m <- x_m - gamma (D_hat)^{-1} grad f_m(x_m, z),
    grad f_m(x, z) = (1/|z|) sum_{j in z} l'(x_j.x, y_j) x_j + lambda x,
    D_hat = max(alpha, |D|)   (elementwise), so alpha I <= D_hat <= Gamma I

(Gamma: the bound on |D| that bounded gradients, or a bounded Hessian for
OASIS, give; every step is at most gamma/alpha times the gradient).

D is an exponential average (weight ``beta``) of a statistic s:

* ``adam``:    s = g (.) g (g the mini-batch gradient), m <- beta m + (1 - beta) s
               (m_0 = 0), D = sqrt(m / (1 - beta^p)) after p updates (bias-corrected);
* ``rmsprop``: the same average, D = sqrt(m) (no bias correction);
* ``oasis``:   Hutchinson: s = v (.) (H_z(x) v), v Rademacher (+-1 each with
               probability 1/2, from the worker's stream ``ctx.rng``), where
               H_z(x) = (1/|z|) sum_{j in z} l''(x_j.x, y_j) x_j x_j^T + lambda I
               is the Hessian of the *mini-batch* loss (regulariser included, so
               lambda is part of every estimate): E_v[v (.) H v] = diag(H).
               The product is formed from the batch's CSR entries (two sparse
               passes, :func:`batch_hvp`), never a d x d matrix.  D_1 = s_1
               (OASIS's warm start), then D <- beta D + (1 - beta) s;
* ``identity``: D_hat = I: exactly Local SGD (``localsgd`` with lr = gamma,
               decay 0, the same ``local_steps`` and ``batch``: the same iterates,
               bit for bit, and the same bytes).

``mode: global`` (the paper's Algorithm 1).  D is updated only at the
synchronisation moments and all clients share one D_hat between them.  Round p
(sync moments t_p = pH):

1. the master broadcasts x^{t_p} and D_hat^{t_p};
2. client m runs H local steps from x_m = x^{t_p} with the fixed D_hat^{t_p};
   at its last local step (the one ending at t_{p+1}) it also computes its
   statistic s_m (for adam/rmsprop that step's g (.) g, no extra work; for
   oasis one Hutchinson product at that step's point and mini-batch).
   Which sample feeds D at a synchronisation is this implementation's
   choice: the freshest one, one per client per round;
3. the reduction sums [n_m x_m, n_m s_m]; the master sets
       x^{t_{p+1}} = sum_m (n_m/n) x_m,   s = sum_m (n_m/n) s_m,
   updates D with s (one EMA update per round) and clips it to D_hat^{t_{p+1}}.

Before the first round D is unknown, so the first iteration starts with one
extra round (once per run): each client sends the statistic of one
mini-batch at x^0 (d floats up), which gives D^{t_0} (the first EMA update).

``mode: local`` (the variant the paper evaluates without theory).  Every
client keeps its own m (or D) and update count p in ``ctx.state`` across
rounds (the model is replaced by the average at each synchronisation, its D
is not) and updates them every local step, before the step, from that
step's statistic at its own iterate; only models travel (as Local SGD).

Rounds and bytes per iteration (d features, K workers; every round also
costs a 64-byte header per worker down):

* global:   1 round: down K (64 + 16 d) (x and D_hat), up K 16 d
            (n_m x_m and n_m s_m, one reduction); once, at the start, one
            more round: down K (64 + 8 d) (x^0), up K 8 d (n_m s_m);
* local:    1 round: down K (64 + 8 d) (x), up K 8 d (n_m x_m): Local SGD's;
* identity: as local, in either mode (no statistic is computed or sent).

Defaults (what the benchmark's tuning chose on a9a, K = 8, iid, for Local
SGD, adam, rmsprop and global oasis; see ``benchmarks/scaled_localsgd_bench.py``
for a9a and w8a, iid and label skew): H = 10 local steps of batch 32,
beta = 0.99, alpha = 1e-2, gamma 1.0 (identity) or 0.03 (adam, rmsprop,
oasis).  On w8a iid the tuned gamma is 10x larger (0.3; identity 30), under
label skew about 3x smaller.  alpha matters most on sparse data: a
coordinate whose statistic is tiny has D_hat = alpha, and one stochastic
gradient that touches it moves it by gamma/alpha times its gradient.  On a9a
the Hessian diagonal spans 4e-5..0.24 (median 7.6e-3), so alpha = 1e-2
leaves OASIS scaling only the frequent features; the tuning preferred
alpha = 1e-3 only for local OASIS on iid data.

Options beyond the defaults (the maths is in :mod:`.scaled_rules`):

* ``beta_schedule: theory``: the averaging weights beta_t capped so that D_hat
  changes slowly enough for the paper's rate (Corollary 1's condition, re-derived:
  the summary does not state it), 1 - beta_t <= h gamma mu / (2 Gamma kappa);
* ``step_size: theory``: gamma = alpha / (4 L) (identity: 1 / (4 L)), L the
  smoothness of every mini-batch loss;
* ``beta1`` > 0: Adam's first moment, m1 <- beta1 m1 + (1 - beta1) g, each step
  moving by gamma m1_hat / D_hat (per client, kept across rounds, never sent);
* ``estimate: exact`` (oasis): the statistic is diag H_z(x) itself (closed form
  for these linear models, one sparse pass, no Rademacher draw) instead of the
  paper's Hutchinson sample; measured on a9a (``benchmarks/paper_scaled_localsgd.py``)
  one 32-row Hutchinson sample has a standard deviation ~3x its mean.

Either theory option costs one gather round once, before the first round
(7 floats up per worker: the row maxima that give L, Gamma and G), and 2 floats
(gamma, the cap) more down per worker in every round.

History columns: ``dhat_min``, ``dhat_median``, ``dhat_max`` and ``clipped``
(fraction of coordinates with D_hat = alpha) of the shared D_hat used in the
next round (global mode; NaN in local and identity modes, where the master
never sees a D).

State (checkpointable): the master keeps ``m`` (the EMA, a d-vector),
``count`` (updates so far) and ``dhat`` (d-vector) as numpy attributes; a
worker in local mode keeps ``scale_m`` (d-vector) and ``scale_count`` in
``ctx.state`` beside Local SGD's epoch position.  Random streams: run.seed,
worker k's ``SeedSequence((seed, k + 1))`` (mini-batches and Rademacher v).

References
----------
.. [1] Chezhegov, Skorik, Khachaturov, Shalagin, Avetisyan, Takac, Kholodov,
   Beznosikov, "Local methods with adaptivity via scaling", arXiv:2406.00846.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from ...errors import UserError
from ...params import FLOAT, INT, STR, Param, at_least, positive, step
from ...runtime import worker_task
from ..base import Algorithm
from ..control import Control
from ..minibatch import batches, stochastic_grad
from .localsgd import sgd
from .scaled_rules import (N_CONSTANTS, batch_hvp, clip, ema_update,  # noqa: F401
                           first_moment, rademacher, row_constants, statistic,
                           theory_cap, theory_constants, theory_gamma)

SCALINGS = ("identity", "adam", "rmsprop", "oasis")
MODES = ("global", "local")
#: gamma when the config leaves it empty (see the module docstring)
GAMMA = {"identity": 1.0, "adam": 0.03, "rmsprop": 0.03, "oasis": 0.03}


def in_closed_open(lo, hi):
    return lambda x: None if lo <= x < hi else f"must be in [{lo}, {hi}), got {x}"


@dataclass(frozen=True)
class Knobs(Control):
    """The theory options' values, sent down with every round (2 floats)."""

    gamma: float            # the step
    cap: float | None       # the cap on 1 - beta_t (None: the constant schedule)


def gamma_of(p, knobs=None):
    """The step: theory's (``knobs``, a packed :class:`Knobs`), the config's, or the
    default."""
    if knobs is not None:
        return Knobs.unpack(knobs).gamma
    return GAMMA[p.scaling] if p.gamma is None else p.gamma


def cap_of(knobs):
    """The theory schedule's cap on 1 - beta_t (None: the constant schedule)."""
    return None if knobs is None else Knobs.unpack(knobs).cap


def theory_on(p):
    return p.step_size == "theory" or p.beta_schedule == "theory"


# -- worker side -------------------------------------------------------------
def direction(p, st, g, dhat):
    """D_hat^{-1} g, or with a first moment D_hat^{-1} m1_hat (dhat None: I)."""
    u = first_moment(st, p.beta1, g) if p.beta1 > 0 else g
    return u if dhat is None else u / dhat


@worker_task("scaled_localsgd.local")
def _local(ctx, w, knobs=None):
    """Identity, or local mode: n_m x_m after H steps, each with this client's own D."""
    p, shard, st = ctx.params, ctx.shard, ctx.state
    precondition, cap = None, cap_of(knobs)
    if p.scaling != "identity":
        alpha = p.alpha
        st.setdefault("scale_m", np.zeros(shard.d))
        st.setdefault("scale_count", 0)

        def precondition(g, x, B):
            s = statistic(p.scaling, shard, x, g, B, ctx.rng, p.estimate)
            st["scale_m"], st["scale_count"], D = ema_update(
                p.scaling, p.beta, st["scale_m"], st["scale_count"], s, cap)
            return direction(p, st, g, clip(D, alpha))
    elif p.beta1 > 0:
        def precondition(g, x, B):
            return direction(p, st, g, None)

    w_m = sgd(shard, w, ctx.rng, st, p.local_steps, gamma_of(p, knobs), 0.0, p.batch,
              precondition)
    return shard.n * w_m


@worker_task("scaled_localsgd.global")
def _global(ctx, w, dhat, knobs=None):
    """Global mode: [n_m x_m, n_m s_m], H steps with the shared D_hat, s_m from the last."""
    p, shard, st = ctx.params, ctx.shard, ctx.state
    H, seen, stat = p.local_steps, [0], []

    def precondition(g, x, B):
        seen[0] += 1
        if seen[0] == H:
            stat.append(statistic(p.scaling, shard, x, g, B, ctx.rng, p.estimate))
        return direction(p, st, g, dhat)

    w_m = sgd(shard, w, ctx.rng, st, H, gamma_of(p, knobs), 0.0, p.batch, precondition)
    return shard.n * np.concatenate((w_m, stat[0]))


@worker_task("scaled_localsgd.stat")
def _stat(ctx, w):
    """Global mode, once: n_m s_m on the next mini-batch at x^0 (no step taken)."""
    p, shard, st = ctx.params, ctx.shard, ctx.state
    st.setdefault("pos", shard.n)
    st.setdefault("t", 0)
    B = next(batches(shard, ctx.rng, st, min(p.batch, shard.n), 1))
    g = stochastic_grad(shard.loss, shard.penalty, np.array(w), *B)
    return shard.n * statistic(p.scaling, shard, np.array(w), g, B, ctx.rng, p.estimate)


@worker_task("scaled_localsgd.constants")
def _constants(ctx):
    """Once, for the theory options: this shard's row maxima and sum s_j l(0, y_j)."""
    return row_constants(ctx.shard)


# -- master ------------------------------------------------------------------
class ScaledLocalSGD(Algorithm):
    name = "scaled_localsgd"
    #: why its defaults miss 1e-6 in 500 rounds (benchmarks/defaults_check.py)
    convergence_note = (
        "first-order, stochastic: the constant step gamma on 32-row batches leaves a noise "
        "floor (1e-3 to 2e-2 after 500 rounds on the standard sets), never 1e-6 at the defaults")
    params = {
        "scaling": Param(STR, "adam", "diagonal preconditioner D: adam, rmsprop, oasis "
                         "(Hutchinson Hessian diagonal) or identity (plain Local SGD)",
                         choices=SCALINGS),
        "mode": Param(STR, "global", "global: one D for all clients, updated at each "
                      "synchronisation from statistics sent with the models (2d floats each "
                      "way); local: each client updates its own D every local step",
                      choices=MODES),
        "gamma": Param(FLOAT, None, "step size: x <- x - gamma D_hat^-1 g (empty: identity "
                       "1.0, adam/rmsprop/oasis 0.03)", check=step, nullable=True),
        "step_size": Param(STR, "constant", "constant: gamma; theory: gamma = alpha/(4 L) "
                           "(identity 1/(4 L)), L = max l'' max_j ||x_j||^2 + lambda (one "
                           "gather round once; leave gamma empty)",
                           choices=("constant", "theory")),
        "beta": Param(FLOAT, 0.99, "weight of the exponential average of the statistics",
                      check=in_closed_open(0.0, 1.0)),
        "beta_schedule": Param(STR, "constant", "constant: beta (Adam's bias correction, "
                               "OASIS's warm start); theory: 1 - beta_t capped at "
                               "h gamma mu / (2 Gamma kappa) so D_hat changes slower than the "
                               "method contracts (needs lambda > 0; one gather round once)",
                               choices=("constant", "theory")),
        "beta1": Param(FLOAT, 0.0, "Adam's first moment: m1 <- beta1 m1 + (1 - beta1) g, steps "
                       "along m1_hat (per client, kept across rounds; 0: none)",
                       check=in_closed_open(0.0, 1.0)),
        "estimate": Param(STR, "hutchinson", "oasis's statistic: hutchinson v (.) H_z v (the "
                          "paper) or exact: diag H_z (closed form for these linear models)",
                          choices=("hutchinson", "exact")),
        "alpha": Param(FLOAT, 1e-2, "lower bound: D_hat = max(alpha, |D|) elementwise, so "
                       "every step is at most gamma/alpha times the gradient", check=positive),
        "local_steps": Param(INT, 10, "H, local steps between synchronisations",
                             check=at_least(1)),
        "batch": Param(INT, 32, "mini-batch size (capped at the shard size)", check=at_least(1)),
    }
    columns = {"dhat_min": np.float64, "dhat_median": np.float64, "dhat_max": np.float64,
               "clipped": np.float64}

    @classmethod
    def validate(cls, params, problem, seed=0):
        super().validate(params, problem, seed)
        p = SimpleNamespace(**params)
        if p.step_size == "theory" and p.gamma is not None:
            raise UserError(f"algorithm.gamma: must be empty with step_size: theory (the step "
                            f"is alpha/(4 L)), got {p.gamma}")
        if p.beta_schedule == "theory" and float(np.min(problem.penalty)) <= 0:
            raise UserError("algorithm.beta_schedule: theory needs a strongly convex objective "
                            "(mu = min lambda > 0; model.lambda is 0 or the intercept is free)")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        d = self.prob.d
        self.m = np.zeros(d)                  # EMA of the statistics (global mode)
        self.count = 0                        # EMA updates so far
        self.dhat = np.ones(d)                # D_hat for the next round
        self.knobs = None                     # theory: a packed Knobs, sent down
        self.theory = None                    # theory: the constants (a dict), for the record

    def _update(self, s):
        p = self.p
        self.m, self.count, D = ema_update(p.scaling, p.beta, self.m, self.count, s,
                                           cap_of(self.knobs))
        self.dhat = clip(D, p.alpha)

    def _theory(self):
        """Once: the constants (one gather round), then gamma and the cap on 1 - beta_t."""
        p, prob = self.p, self.prob
        replies = self.rt.round("scaled_localsgd.constants", up=[N_CONSTANTS] * self.rt.K)
        th = theory_constants(replies, prob.loss, prob.penalty, prob.n, p.estimate)
        gamma = theory_gamma(p.scaling, p.alpha, th) if p.step_size == "theory" \
            else gamma_of(p)
        cap = None
        if p.beta_schedule == "theory" and p.scaling != "identity":
            h = p.local_steps if p.mode == "global" else 1
            cap = theory_cap(p.scaling, p.alpha, gamma, h, th)
        self.knobs = Knobs(gamma, cap).pack()
        self.theory = {k: float(v) for k, v in th._asdict().items()}   # for the record

    def step(self):
        rt, prob, p, d = self.rt, self.prob, self.p, self.prob.d
        if theory_on(p) and self.knobs is None:
            self._theory()                    # once: [nothing down, N_CONSTANTS up, gathered]
        extra = () if self.knobs is None else (self.knobs,)
        info = {"step_size": gamma_of(p, self.knobs)}
        if p.scaling == "identity" or p.mode == "local":
            self.w = rt.round("scaled_localsgd.local", self.w, *extra, up=d) / prob.n  # 1 round
            return info
        if self.count == 0:                   # once: D at x^0 [d down, d up]
            self._update(rt.round("scaled_localsgd.stat", self.w, up=d) / prob.n)
        out = rt.round("scaled_localsgd.global", self.w, self.dhat, *extra, up=2 * d) / prob.n
        self.w = out[:d]
        self._update(out[d:])
        info.update(dhat_min=float(self.dhat.min()), dhat_median=float(np.median(self.dhat)),
                    dhat_max=float(self.dhat.max()),
                    clipped=float(np.mean(self.dhat == p.alpha)))
        return info
