"""The public API for algorithm plugins: everything a new method needs, in one place.

A plugin is a module (or an installed package declaring the entry point group
``distnewton.algorithms``) that defines an :class:`Algorithm` subclass and its
worker tasks; docs/writing-an-algorithm.md walks through one.  Import
from here, not from distnewton's internals: these names are kept stable.

Master side (the algorithm class; one ``step()`` is one iteration):

- :func:`register_algorithm`: class decorator that makes a class of a plugin
  module (``run.plugins``) selectable by its ``name`` (an entry point needs none).
- :class:`NewtonType`: an Algorithm whose ``step()`` runs the hooks gradient,
  direction, line search, check, update; a Newton-type method defines
  ``direction`` (and ``curvature``) only.
- :class:`Algorithm`: ``self.rt`` (the runtime), ``self.prob`` (:class:`Problem`:
  ``n``, ``d``, ``lam`` (lambda), ``loss``, ``sizes`` = (n_1, ..., n_K), and
  ``penalty``, the L2 weights to compute with: lambda, or the vector lambda (1,
  ..., 1, 0) under ``model.regularize_intercept: false``, times sigma^2 per
  feature under ``model.standardize: true`` (so never assume a number); a
  worker's shard has the same ``penalty``; use ``w @ (penalty * w)``, ``penalty * w``, ``H +
  diag(penalty)``; a shard's rows may carry weights ``shard.s``: take sums over
  rows through ``shard.weigh(per_row)`` or the Shard's own sums),
  ``self.p`` (the validated parameters), ``self.w`` (the model), ``self.rng``,
  ``self.stalled``; class attributes ``name``, ``params``, ``columns``,
  ``losses``, and ``multinomial = True`` for a method that uses only the
  shards' value / gradient / Hessian interface on vectors of ``prob.d`` floats
  (``model.multiclass: multinomial``: ``d`` is then features x classes and the
  shard a :class:`~distnewton.softmax.SoftmaxShard`; default False: refused).
- ``self.rt.round(task, *down, up=, scatter=, to=)``: one counted communication
  round (see :mod:`distnewton.runtime`).
- :class:`Param` with the types ``INT``, ``FLOAT``, ``STR``, ``BOOL`` and the
  checks ``positive``, ``nonneg``, ``at_least(lo)``, ``in_open_closed(lo, hi)``;
  the shared parameter groups ``LINE_SEARCH`` and ``SOLVER``.
- Primitives (each its rounds, see :mod:`distnewton.algorithms.primitives`):
  ``loss_grad`` (f, grad f: 1 round), ``loss_grad_hess``, ``hvp``,
  ``backtracking`` (Armijo line search), ``newton_cg_direction``;
  ``global_value`` / ``regularise`` turn reduced sums into f and grad f.
- Dense linear algebra: ``solve_spd`` (Cholesky, damped if needed) and ``cg``.

Worker side: functions registered with :func:`worker_task` receive a
:class:`WorkerContext` (``k``, ``shard``, ``rng``, ``params``, ``state``) and
the round's vectors.  ``ctx.shard`` is a :class:`Shard`: ``n``, ``d``,
``local_value(w)``, ``local_grad(w)``, ``local_hessian(w)``,
``local_hvp_operator(w)``, ``loss_grad_sum(w)``, ``line_losses(w, p, steps)``.
A long local loop runs over :func:`local_range` (``range`` that ends early,
after at least one step, when SIGTERM/SIGUSR1/SIGINT asks the run to stop:
the round completes and the run stops with a checkpoint).
"""

from .algorithms.base import GUARDED_LOSSES, LINE_SEARCH, SOLVER, Algorithm, Problem, use_cg
from .algorithms.newton_type import NewtonType
from .algorithms.registry import register_algorithm
from .algorithms.primitives import (backtracking, hvp, local_newton_direction, loss_grad,
                                    loss_grad_hess, newton_cg_direction)
from .errors import UserError
from .linalg import cg, solve_spd
from .objectives import Shard, global_value, regularise
from .params import (BOOL, FLOAT, INT, STR, Param, at_least, in_open_closed, nonneg,
                     positive)
from .runtime import WorkerContext, worker_task
from .stopping import local_range

__all__ = [
    "Algorithm", "NewtonType", "Problem", "register_algorithm", "LINE_SEARCH", "SOLVER", "use_cg",
    "backtracking", "hvp", "local_newton_direction", "loss_grad", "loss_grad_hess",
    "newton_cg_direction", "UserError", "cg", "solve_spd", "Shard", "global_value",
    "regularise", "BOOL", "FLOAT", "INT", "STR", "Param", "at_least", "in_open_closed",
    "nonneg", "positive", "WorkerContext", "worker_task", "local_range", "GUARDED_LOSSES",
]
