"""``model.standardize: true``: Spark ML's ``standardization=true``, without scaling the data.

Spark's LogisticRegression, LinearRegression and LinearSVC penalise the
coefficients of the features scaled to unit standard deviation and return the
coefficients of the original features.  Training on ``X / sigma`` with the
penalty (lambda/2)||v||^2 and mapping back ``w = v / sigma`` is the same as
training on ``X`` with the per-coordinate penalty

    (lambda/2) sum_j (sigma_j w_j)^2   (+ lambda_1 sum_j sigma_j |w_j| for owlqn)

so the objectives take the penalty vector ``lambda sigma^2`` (and the L1 weights
``lambda_1 sigma``, :attr:`~distnewton.problem.Problem.penalty`) and the rows are
never rescaled: the same optimum, in the original space (``predict`` and
``export`` need nothing).  What changes is conditioning: the Hessian is that of
the unscaled features, so a method's iterations are those on X, not on X/sigma.

sigma_j is Spark's (``Summarizer``'s) standard deviation: the sample one
(denominator n - 1), or with row weights s the reliability-weighted one,
sum_i s_i (x_ij - mean_j)^2 / (S - S2/S) with S = sum s_i, S2 = sum s_i^2.
A constant column (sigma_j = 0) is dropped as Spark drops it: zeroed on every
shard, so its coefficient is 0; it keeps the weight lambda (sigma taken as 1),
which costs nothing at w_j = 0 and keeps the Hessian positive definite.  The
intercept column keeps its weight (0 when free, lambda when regularised).

Communication: one setup round (:meth:`~distnewton.runtime.Runtime.setting_up`,
counted apart from the algorithm's rounds and recorded as ``standardize_bytes``):
a gather of each worker's centred moments, 2d + 2 floats (S_k, S2_k, the column
means and the centred sums of squares: merged on the master as in Chan et al.,
no cancellation for columns with a large mean), then a broadcast of the d
penalty weights and the d-vector of dropped columns.
"""

from __future__ import annotations

import numpy as np

from .errors import UserError
from .runtime import worker_task

#: a column whose std is at most this times its |mean| is constant (rounding in the means)
CONSTANT_RTOL = 1e-12

#: algorithms that use lambda as a number (a strong-convexity constant, a step
#: size) unless their ``mu`` is given: they cannot take per-feature penalties
SCALAR_LAMBDA = {"fednl": "mu", "ranl": "mu", "disco": None}


def check(cfg):
    """``model.standardize: true`` with an algorithm that needs lambda as a number:
    a UserError naming the key (exit 2, before any data is read)."""
    if not cfg["model"].get("standardize"):
        return
    name = cfg["algorithm"]["name"]
    if name not in SCALAR_LAMBDA:
        return
    key = SCALAR_LAMBDA[name]
    if key is not None and cfg["algorithm"].get(key) is not None:
        return
    hint = f" (or give algorithm.{key})" if key else ""
    raise UserError(f"model.standardize: {name} uses lambda as a number for its theory "
                    f"constants and cannot take per-feature penalties; use another "
                    f"algorithm{hint} or model.standardize: false")


# -- worker side ---------------------------------------------------------------
@worker_task("standardize.moments")
def _moments(ctx):
    """This shard's S_k = sum s_i, S2_k = sum s_i^2, the column means and the centred
    sums of squares sum_i s_i (x_ij - mean_j)^2 (s_i = 1 without row weights)."""
    X, n = ctx.shard.X, ctx.shard.n
    s = np.ones(n) if ctx.shard.s is None else ctx.shard.s
    S, S2 = float(s.sum()), float(s @ s)
    if S <= 0:
        return np.zeros(2 + 2 * X.shape[1])
    mean = (X.T @ s) / S
    # sum_i s_i (x_ij - m_j)^2 over the stored entries, plus m_j^2 s_i for each
    # implicit zero (the weight S minus that of the rows storing column j)
    rows = np.repeat(np.arange(n), np.diff(X.indptr))
    sw, cols = s[rows], X.indices
    stored = np.bincount(cols, weights=sw, minlength=X.shape[1])
    sq = np.bincount(cols, weights=sw * (X.data - mean[cols]) ** 2, minlength=X.shape[1])
    sq += (S - stored) * mean ** 2
    return np.concatenate([[S, S2], mean, sq])


@worker_task("standardize.apply")
def _apply(ctx, penalty, dropped):
    """Take the penalty weights; zero the dropped (constant) columns of the shard.
    Replies the number of stored entries zeroed."""
    shard = ctx.shard
    shard.penalty = np.array(penalty, dtype=np.float64)
    cols = np.flatnonzero(dropped)
    if not len(cols):
        return np.zeros(1)
    return np.array([float(zero_columns(shard, cols))])


def zero_columns(shard, cols):
    """Zero columns ``cols`` of a :class:`~distnewton.objectives.Shard` in place (its
    CSR values and dense copy; the products it caches from X are dropped, to be
    rebuilt).  Runs before any algorithm round: nothing else holds X yet."""
    hit = np.isin(shard.X.indices, cols)
    shard.X.data[hit] = 0.0
    if shard._dense_T is not None:
        shard._dense_T[cols] = 0.0
    shard._XT = shard._X2 = shard._Xt = None
    shard._at = shard._z = shard._D = None
    return int(hit.sum())


# -- master side ---------------------------------------------------------------
def merge(replies, d):
    """(S, S2, mean, centred sum of squares) of all rows from the workers' replies."""
    S = S2 = 0.0
    mean, sq = np.zeros(d), np.zeros(d)
    for r in replies:
        Sk, S2k, mk, qk = r[0], r[1], r[2:2 + d], r[2 + d:]
        if Sk <= 0:
            continue
        total = S + Sk
        delta = mk - mean
        sq = sq + qk + delta ** 2 * (S * Sk / total)
        mean = mean + delta * (Sk / total)
        S, S2 = total, S2 + S2k
    return S, S2, mean, sq


def column_std(replies, d):
    """Spark's column standard deviations (sample, or reliability-weighted) and the
    constant columns (std 0, or at most :data:`CONSTANT_RTOL` times the mean)."""
    S, S2, mean, sq = merge(replies, d)
    denom = S - S2 / S if S > 0 else 0.0
    if denom <= 0:                         # one row (or one weighted row): Spark's 0
        return np.zeros(d), np.ones(d, dtype=bool)
    sigma = np.sqrt(np.maximum(sq / denom, 0.0))
    constant = sigma <= CONSTANT_RTOL * np.abs(mean)
    sigma[constant] = 0.0
    return sigma, constant


def scales(sigma, constant, fit_intercept):
    """The per-coordinate scale of the penalty (sigma, 1 for a dropped column and for
    the intercept) and the columns to drop (constant features, never the intercept)."""
    dropped = constant.copy()
    if fit_intercept:
        dropped[-1] = False
    scale = np.where(constant, 1.0, sigma)
    if fit_intercept:
        scale[-1] = 1.0
    return scale, dropped


def apply(rt, problem, fit_intercept):
    """The setup round: sigma from the workers' moments, the problem's scale set,
    the shards' penalty weights set and constant columns dropped.  Returns
    (sigma, bytes of the round)."""
    d = problem.d
    with rt.setting_up():
        replies = rt.round("standardize.moments", up=[2 * d + 2] * rt.K)
        sigma, constant = column_std(replies, d)
        problem.scale, dropped = scales(sigma, constant, fit_intercept)
        rt.round("standardize.apply", problem.penalty * np.ones(d),
                 dropped.astype(np.float64), up=1)
    return sigma, rt.setup.bytes_up + rt.setup.bytes_down


def setup(session):
    """A new :class:`~distnewton.session.Session` (None on an MPI worker rank, which
    serves the round), after its setup round when its config has
    ``model.standardize: true``: fills ``session.sigma`` and
    ``session.standardize_bytes``.  Over MPI a failure aborts the job (the workers
    are serving rounds), as in :meth:`~distnewton.session.Session.run`."""
    if session is None or not session.cfg["model"].get("standardize"):
        return session
    fit = bool(session.cfg["model"]["fit_intercept"])
    if session.rt.backend == "sim":
        session.sigma, session.standardize_bytes = apply(session.rt, session.problem, fit)
        return session
    from .runtime.mpi import abort_on_exception
    try:
        session.sigma, session.standardize_bytes = apply(session.rt, session.problem, fit)
    except Exception as exc:                   # noqa: BLE001 - every fault ends the job
        abort_on_exception(exc)
    return session


def attributes(session):
    """The root attributes ``standardize`` and ``standardize_bytes`` of a result."""
    return {"standardize": bool(session.cfg["model"].get("standardize")),
            "standardize_bytes": int(session.standardize_bytes)}


def and_sigma(extra, sigma):
    """The result writer's ``extra(f)`` followed by :func:`write_sigma` (``extra``
    itself without sigma)."""
    if sigma is None:
        return extra

    def both(f):
        if extra is not None:
            extra(f)
        write_sigma(f, sigma)
    return both


def write_sigma(f, sigma):
    """/model/sigma in an open result file."""
    ds = f["model"].create_dataset("sigma", data=np.asarray(sigma, dtype=np.float64))
    ds.attrs["description"] = ("model.standardize: the column standard deviations of the "
                               "training rows (Spark's: n - 1, or reliability-weighted); 0 "
                               "for a constant column (dropped: coefficient 0) and the "
                               "intercept")
