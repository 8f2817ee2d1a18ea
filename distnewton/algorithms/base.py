"""What every algorithm shares: the problem description and the base class.

An algorithm is a class with a ``name``, a ``params`` dict of
:class:`~distnewton.params.Param` (validated from YAML, listed by
``distnewton list``) and a ``step()`` method: one iteration, run on the
master, talking to the workers only through ``self.rt.round(...)``.  Its
worker-side code is a set of functions registered with
:func:`~distnewton.runtime.worker_task` in its module (or, for a family with a
large worker side such as FedNL's, in a module of its package); the scalars a
round sends them are typed :mod:`.control` values.  The Newton-type
methods derive from :class:`~.newton_type.NewtonType`, whose ``step()`` is
named hooks (gradient, direction, line search, update) over the shared
:mod:`.primitives`; mini-batch gradients on a shard are :mod:`.minibatch`'s.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np

from ..errors import UserError
from ..linalg import check_dense_hessian
from ..params import (FLOAT, INT, STR, MAX_TRIALS, Param, at_least, in_open_closed,
                      positive, step, trials)
from ..problem import Problem  # noqa: F401  (re-exported: the algorithms' view)


#: the losses of the methods that use only the shards' value/gradient/curvature and
#: accept a step only after a line search or trust-region test: ``poisson`` joins the
#: default three there, since its exp(z) may overflow to +inf far from the optimum,
#: which such a test rejects as a failed trial (the methods whose step sizes or
#: theory constants assume a bounded l'' or {-1, +1} labels keep the default)
GUARDED_LOSSES = ("logistic", "ridge", "squared_hinge", "poisson")


class Algorithm:
    """Base class: holds the master's model ``w`` and the run's parameters."""

    name = ""
    params: dict = {}
    #: named sets of ``params`` values, ``{"paper": {key: value}}``: a class with
    #: presets also declares ``"preset": preset_param(presets)`` in ``params``, and
    #: ``algorithm.preset: paper`` fills in those keys (a key given beside it wins)
    presets: dict = {}
    #: the ``model.loss`` values the method takes (:data:`~distnewton.objectives.LOSSES`
    #: keys); any other is refused before the workers start (:func:`check_loss`).
    #: Every built-in method uses only the shards' value/gradient/curvature interface,
    #: which the L2-loss SVM provides with its generalised Hessian
    #: (Poisson regression's unbounded l'' = exp(z): the methods that guard every
    #: step by a line search or trust region opt in with :data:`GUARDED_LOSSES`)
    losses: tuple = ("logistic", "ridge", "squared_hinge")
    #: the method trains ``model.multiclass: multinomial`` (:mod:`distnewton.softmax`):
    #: it uses only the shards' value / gradient / Hessian interface on a vector of
    #: d = features x classes floats.  False (the default, also for plugins) for
    #: methods that use per-row scalar margins or the rows themselves: refused
    #: with one line naming model.multiclass (:func:`distnewton.multinomial.check_algorithm`)
    multinomial: bool = False
    #: one line on what the defaults reach, shown by ``distnewton list`` under the
    #: header line when set: why a method cannot reach relative suboptimality 1e-6
    #: on the standard sets in 500 rounds (benchmarks/defaults_check.py), or ""
    convergence_note: str = ""
    #: extra per-iteration history columns: name -> numpy dtype
    columns: dict = {}
    #: worker tasks solve local Newton systems: MPI workers import scipy.linalg
    #: during the setup (elsewhere it is imported after the first round)
    local_solves = False

    def __init__(self, rt, problem: Problem, params: dict, w0, seed=0):
        self.rt, self.prob = rt, problem
        self.p = SimpleNamespace(**params)
        self.w = np.array(w0, dtype=np.float64)
        #: run.seed; the master's own random stream (worker k has (seed, k + 1))
        self.seed = int(seed)
        self.rng = np.random.default_rng(np.random.SeedSequence((self.seed, 0)))
        self.stalled = ""        # set to a reason when the method cannot go on

    @classmethod
    def validate(cls, params: dict, problem: Problem, seed: int = 0) -> None:
        """Check the parameters against the problem before any worker starts.

        Raises a UserError naming the key; run on the master while a bad
        input can still end every rank with exit code 2.  The base check: an
        algorithm whose ``dense_path`` would form d x d matrices too large
        for this machine.
        """
        path = cls.dense_path(params, problem.d)
        if path is not None:
            check_dense_hessian(problem.d, *path)

    @classmethod
    def dense_path(cls, params: dict, d: int):
        """``(key, hint)`` when a run with these parameters forms d x d matrices (the
        key that selects that path, a hint to avoid it), else None: checked against
        the RAM at config time with ``data.n_features`` (:func:`distnewton.checks.memory`)
        and, for a ``solver``, in :meth:`validate`."""
        if "solver" in cls.params and not use_cg(SimpleNamespace(**params), d):
            return "algorithm.solver", "use solver: cg (or auto) for the Hessian-free path"
        return None

    def step(self) -> dict:
        """One iteration; returns history values (``step_size`` and ``columns``)."""
        raise NotImplementedError


def check_loss(cls, loss) -> None:
    """UserError naming ``model.loss`` when algorithm ``cls`` cannot take ``loss``
    (its :attr:`Algorithm.losses`): one line, exit code 2, before any worker starts."""
    if loss not in cls.losses:
        why = UNGUARDED.get(loss, "") if loss in GUARDED_LOSSES else ""
        raise UserError(f"model.loss: {cls.name} does not support loss {loss!r} "
                        f"(it takes {', '.join(cls.losses)}){why}")


#: why a method without :data:`GUARDED_LOSSES` refuses a loss only they take
UNGUARDED = {"poisson": ": poisson's curvature exp(x.w) is unbounded, and this method's "
                        "step sizes or theory constants assume a bounded one (or steps "
                        "no line search guards, as an average of local models); newton, "
                        "lbfgs, giant, gd, owlqn and fednl (with its line search) take it"}


# Parameters several algorithms share (same names, same meaning everywhere).
LINE_SEARCH = {
    "beta": Param(FLOAT, 1e-4, "Armijo constant: f(w - a p) <= f(w) - beta a p.g",
                  check=in_open_closed(0.0, 0.5)),
    "alpha_max": Param(FLOAT, 1.0, "largest step size tried (at most 1e12)", check=step),
    "ls_steps": Param(INT, 2, "trial step sizes alpha_max * 2^-j evaluated per "
                      "line-search round (2: alpha_max and alpha_max/2, which Newton "
                      "steps nearly always pass; each trial costs a loss pass over the rows)",
                      check=trials),
    "max_backtracks": Param(INT, 30, "trial step sizes in all before giving up "
                            f"(at most {MAX_TRIALS})", check=trials),
}
#: ``ls_steps`` for approximate Newton directions (GIANT's averaged local solves,
#: RANL's stale aggregates): they often need alpha < 1/2, and every extra
#: line-search round is a communication round (measured: with 2 per round,
#: GIANT on w8a with K = 100 no longer reached 1e-3 in 200 rounds; 183 with 10).
LS_STEPS_APPROX = replace(LINE_SEARCH["ls_steps"], default=10, doc=(
    "trial step sizes alpha_max * 2^-j evaluated per line-search round (each costs "
    "a loss pass over the rows; approximate directions often need alpha < 1/2, and "
    "each extra line-search round is a communication round)"))
#: which passing trial step a line-search round takes (GIANT's ``ls_pick``): the
#: round computes f at all ``ls_steps`` trial steps, so the best costs nothing more
#: (measured: GIANT on w8a, defaults, 4 workers: ``first`` ends max_rounds at 500,
#: the unit step contracting an overshot direction by 0.987 an iteration; docs/algorithms/giant.md)
LS_PICK = Param(STR, "first", "which trial step of the line-search round that passes "
                "Armijo is taken: first (the largest, the textbook backtracking rule) or "
                "best (the one of least f among those the round computed: no extra round)",
                choices=("first", "best"))
SOLVER = {
    "solver": Param(STR, "auto", "Newton system solver: cholesky (LAPACK), cg (Hessian-free) "
                    "or auto (cg when d > cg_threshold; below it, newton's global system by "
                    "estimated cost, the local systems Cholesky)",
                    choices=("auto", "cholesky", "cg")),
    "cg_threshold": Param(INT, 4000, "d above which solver auto always uses CG",
                         check=at_least(1)),
    "cg_rtol": Param(FLOAT, None, "CG stops when ||H p - g|| <= eta ||g||; global Newton-CG: "
                     "eta = max(cg_rtol, min(0.1, sqrt(||g_t||/||g_0||))), unset: eta = 0.1; "
                     "local CG: eta = cg_rtol, unset: 1e-10", check=positive, nullable=True),
    "cg_maxiter": Param(INT, 500, "CG iteration cap", check=at_least(1)),
    "cg_precondition": Param(STR, "none", "CG preconditioner: none, or jacobi "
                             "(diag of the Hessian, d more floats up in the gradient round)",
                             choices=("none", "jacobi")),
}


#: global Newton-CG's relative residual when cg_rtol is unset (measured against the
#: forcing sequence max(1e-10, min(0.1, sqrt(||g_t||/||g_0||))), sim backend, 2 workers,
#: rounds to 1e-6 / 1e-10: a9a 115/210 against 161/263, w8a 84/118 against 104/146,
#: ijcnn1 41/61 against 43/58, phishing 42/50 against 34/48; 0.3 and 0.5 took more)
NEWTON_CG_RTOL = 0.1
#: local CG's relative residual when cg_rtol is unset (local directions solved exactly)
LOCAL_CG_RTOL = 1e-10


def local_cg_rtol(p):
    """The relative residual of local CG solves: cg_rtol, or LOCAL_CG_RTOL when unset."""
    return LOCAL_CG_RTOL if p.cg_rtol is None else p.cg_rtol


def use_cg(p, d):
    """CG for a system of size d by the size rule alone: ``solver: cg`` (or newton's
    ``tron``, CG in a trust region), or auto and d > cg_threshold (local systems;
    newton's global one adds a cost model, :mod:`.solver_cost`)."""
    return p.solver in ("cg", "tron") or (p.solver == "auto" and d > p.cg_threshold)
