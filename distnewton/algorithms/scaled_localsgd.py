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

History columns: ``dhat_min``, ``dhat_median``, ``dhat_max`` and ``clipped``
(fraction of coordinates with D_hat = alpha) of the shared D_hat used in the
next round (global mode; NaN in local and identity modes, where the master
never sees a D).

State (checkpointable): the master keeps ``m`` (the EMA, a d-vector),
``count`` (updates so far) and ``dhat`` (d-vector) as numpy attributes; a
worker in local mode keeps ``scale_m`` (d-vector) and ``scale_count`` in
``ctx.state`` beside Local SGD's epoch position.  Random streams: run.seed,
worker k's ``SeedSequence((seed, k + 1))`` (mini-batches and Rademacher v).
"""

from __future__ import annotations

import numpy as np

from ..params import FLOAT, INT, STR, Param, at_least, positive
from ..runtime import worker_task
from .base import Algorithm
from .localsgd import sgd
from .minibatch import batches, stochastic_grad

SCALINGS = ("identity", "adam", "rmsprop", "oasis")
MODES = ("global", "local")
#: gamma when the config leaves it empty (see the module docstring)
GAMMA = {"identity": 1.0, "adam": 0.03, "rmsprop": 0.03, "oasis": 0.03}


def in_closed_open(lo, hi):
    return lambda x: None if lo <= x < hi else f"must be in [{lo}, {hi}), got {x}"


def gamma_of(p):
    return GAMMA[p.scaling] if p.gamma is None else p.gamma


# -- the pieces (pure functions, shared by master and workers) ----------------
def batch_hvp(loss, lam, w, v, ind, val, rows, yb, sb=None):
    """H_z(w) v = (1/|z|) sum_{j in z} l''(x_j.w, y_j) x_j (x_j.v) + lambda v
    from the mini-batch's CSR entries (as :func:`~.minibatch.stochastic_grad`;
    ``rows`` None for a one-row batch)."""
    if rows is None:
        hv = lam * v
        c = loss.deriv2(float(np.dot(val, w[ind])), yb[0]) * float(np.dot(val, v[ind]))
        hv[ind] += (c if sb is None else c * float(sb[0])) * val
        return hv
    nb = len(yb)
    z = np.bincount(rows, weights=val * w[ind], minlength=nb)
    u = np.bincount(rows, weights=val * v[ind], minlength=nb)
    c = loss.deriv2(z, yb) * u
    if sb is not None:
        c = c * sb
    return np.bincount(ind, weights=val * c[rows], minlength=len(w)) / nb + lam * v


def rademacher(rng, d):
    """v in {-1, +1}^d, each sign with probability 1/2."""
    return 1.0 - 2.0 * rng.integers(0, 2, size=d)


def statistic(rule, shard, w, g, B, rng):
    """The scaling's sample at w on mini-batch B: g (.) g, or v (.) H_B(w) v."""
    if rule == "oasis":
        v = rademacher(rng, len(w))
        return v * batch_hvp(shard.loss, shard.penalty, w, v, *B)
    return g * g


def ema_update(rule, beta, m, count, s):
    """One update of the average with sample s: returns (m, count, D)."""
    count += 1
    if rule == "oasis":
        m = s.copy() if count == 1 else beta * m + (1.0 - beta) * s
        return m, count, m
    m = beta * m + (1.0 - beta) * s
    D = np.sqrt(m / (1.0 - beta ** count)) if rule == "adam" else np.sqrt(m)
    return m, count, D


def clip(D, alpha):
    """D_hat = max(alpha, |D|) elementwise."""
    return np.maximum(alpha, np.abs(D))


# -- worker side -------------------------------------------------------------
@worker_task("scaled_localsgd.local")
def _local(ctx, w):
    """Identity, or local mode: n_m x_m after H steps, each with this client's own D."""
    p, shard, st = ctx.params, ctx.shard, ctx.state
    precondition = None
    if p.scaling != "identity":
        alpha = p.alpha
        st.setdefault("scale_m", np.zeros(shard.d))
        st.setdefault("scale_count", 0)

        def precondition(g, x, B):
            s = statistic(p.scaling, shard, x, g, B, ctx.rng)
            st["scale_m"], st["scale_count"], D = ema_update(
                p.scaling, p.beta, st["scale_m"], st["scale_count"], s)
            return g / clip(D, alpha)

    w_m = sgd(shard, w, ctx.rng, st, p.local_steps, gamma_of(p), 0.0, p.batch, precondition)
    return shard.n * w_m


@worker_task("scaled_localsgd.global")
def _global(ctx, w, dhat):
    """Global mode: [n_m x_m, n_m s_m], H steps with the shared D_hat, s_m from the last."""
    p, shard = ctx.params, ctx.shard
    H, seen, stat = p.local_steps, [0], []

    def precondition(g, x, B):
        seen[0] += 1
        if seen[0] == H:
            stat.append(statistic(p.scaling, shard, x, g, B, ctx.rng))
        return g / dhat

    w_m = sgd(shard, w, ctx.rng, ctx.state, H, gamma_of(p), 0.0, p.batch, precondition)
    return shard.n * np.concatenate((w_m, stat[0]))


@worker_task("scaled_localsgd.stat")
def _stat(ctx, w):
    """Global mode, once: n_m s_m on the next mini-batch at x^0 (no step taken)."""
    p, shard, st = ctx.params, ctx.shard, ctx.state
    st.setdefault("pos", shard.n)
    st.setdefault("t", 0)
    B = next(batches(shard, ctx.rng, st, min(p.batch, shard.n), 1))
    g = stochastic_grad(shard.loss, shard.penalty, np.array(w), *B)
    return shard.n * statistic(p.scaling, shard, np.array(w), g, B, ctx.rng)


# -- master ------------------------------------------------------------------
class ScaledLocalSGD(Algorithm):
    name = "scaled_localsgd"
    params = {
        "scaling": Param(STR, "adam", "diagonal preconditioner D: adam, rmsprop, oasis "
                         "(Hutchinson Hessian diagonal) or identity (plain Local SGD)",
                         choices=SCALINGS),
        "mode": Param(STR, "global", "global: one D for all clients, updated at each "
                      "synchronisation from statistics sent with the models (2d floats each "
                      "way); local: each client updates its own D every local step",
                      choices=MODES),
        "gamma": Param(FLOAT, None, "step size: x <- x - gamma D_hat^-1 g (empty: identity "
                       "1.0, adam/rmsprop/oasis 0.03)", check=positive, nullable=True),
        "beta": Param(FLOAT, 0.99, "weight of the exponential average of the statistics",
                      check=in_closed_open(0.0, 1.0)),
        "alpha": Param(FLOAT, 1e-2, "lower bound: D_hat = max(alpha, |D|) elementwise, so "
                       "every step is at most gamma/alpha times the gradient", check=positive),
        "local_steps": Param(INT, 10, "H, local steps between synchronisations",
                             check=at_least(1)),
        "batch": Param(INT, 32, "mini-batch size (capped at the shard size)", check=at_least(1)),
    }
    columns = {"dhat_min": np.float64, "dhat_median": np.float64, "dhat_max": np.float64,
               "clipped": np.float64}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        d = self.prob.d
        self.m = np.zeros(d)                  # EMA of the statistics (global mode)
        self.count = 0                        # EMA updates so far
        self.dhat = np.ones(d)                # D_hat for the next round

    def _update(self, s):
        p = self.p
        self.m, self.count, D = ema_update(p.scaling, p.beta, self.m, self.count, s)
        self.dhat = clip(D, p.alpha)

    def step(self):
        rt, prob, p, d = self.rt, self.prob, self.p, self.prob.d
        info = {"step_size": gamma_of(p)}
        if p.scaling == "identity" or p.mode == "local":
            self.w = rt.round("scaled_localsgd.local", self.w, up=d) / prob.n    # 1 round
            return info
        if self.count == 0:                   # once: D at x^0 [d down, d up]
            self._update(rt.round("scaled_localsgd.stat", self.w, up=d) / prob.n)
        out = rt.round("scaled_localsgd.global", self.w, self.dhat, up=2 * d) / prob.n
        self.w = out[:d]
        self._update(out[d:])
        info.update(dhat_min=float(self.dhat.min()), dhat_median=float(np.median(self.dhat)),
                    dhat_max=float(self.dhat.max()),
                    clipped=float(np.mean(self.dhat == p.alpha)))
        return info
