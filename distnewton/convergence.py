"""A run that did not converge says so: :class:`ConvergenceWarning`.

:func:`distnewton.solve` warns, as scikit-learn's solvers do, when a run ended
with one of :data:`NOT_CONVERGED`: ``max_rounds``, ``max_iterations``
(a budget ran out), ``stalled`` (the method could not go on) or ``diverged``.
A run that ``converged`` does not warn, and neither does one that was
``stopped``: a monitor, a ``callback`` or a signal (SIGTERM, Ctrl-C) stopped it
because the caller asked; its ``status`` and ``message`` say so, and a
warning would only repeat the caller's own decision.

The message names the status, the rounds and iterations used and the key to
raise, in scikit-learn's words ("Increase the number of communication rounds
(run.max_rounds=2)"), so ``warnings.simplefilter("error", ConvergenceWarning)``
turns a run that ran out of budget into an exception that says what to do.
The estimators of :mod:`distnewton.sklearn` issue the same text with their
own parameter names, as a class that is scikit-learn's ConvergenceWarning as
well (scikit-learn is an optional extra: this module does not import it).

Pure Python (``warnings`` only): imported by the core package.
"""

from __future__ import annotations

import warnings

#: The statuses that warn: the run ended before its tolerance was met.
NOT_CONVERGED = ("max_rounds", "max_iterations", "stalled", "diverged")

#: The config keys the advice names (:func:`message`); the estimators pass their
#: parameter names instead.
CONFIG_KEYS = {"max_rounds": "run.max_rounds", "max_iterations": "run.max_iterations",
               "tol": "run.grad_rtol", "lambda": "model.lambda"}


class ConvergenceWarning(UserWarning):
    """A run ended ``max_rounds``, ``max_iterations``, ``stalled`` or ``diverged``
    (see :mod:`distnewton.convergence`).  A :class:`UserWarning`: shown once per
    place by default; ``warnings.simplefilter("error", ConvergenceWarning)``
    makes it an exception, ``"ignore"`` silences it."""


def advice(status, keys=None, limits=None) -> str:
    """What to change after a run that ended ``status``: the key (and its value
    from ``limits`` when known) to raise, as scikit-learn's "Increase the
    number of iterations (max_iter=100)"."""
    keys = {**CONFIG_KEYS, **(keys or {})}
    limits = limits or {}

    def key(name):
        value = limits.get(name)
        return keys[name] if value is None else f"{keys[name]}={value}"

    if status == "max_rounds":
        return (f"Increase the number of communication rounds ({key('max_rounds')}) to "
                "improve the convergence")
    if status == "max_iterations":
        return (f"Increase the number of iterations ({key('max_iterations')}) to improve "
                "the convergence")
    if status == "stalled":
        return (f"The method could not make progress: loosen the tolerance "
                f"({key('tol')}), or try another algorithm or a larger {keys['lambda']}")
    return ("The model is the best iterate seen; try a smaller step size (the "
            f"algorithm's step_size, lr, gamma or eta) or a larger {keys['lambda']}")


def runs_of(result) -> list[tuple]:
    """``(class label or None, status, rounds, iterations)`` of each binary run
    of a :class:`~distnewton.io.record.Result` (one-vs-rest: one per class run,
    from the ``class_*`` attributes)."""
    attrs = result.get("attrs") or {}
    statuses = attrs.get("class_status")
    if statuses is None:
        return [(None, result.get("status"), result.get("rounds"), result.get("iterations"))]
    statuses = (statuses.decode() if isinstance(statuses, bytes) else str(statuses)).split(",")
    classes = list(attrs.get("classes", []))
    rounds = list(attrs.get("class_rounds", []))
    its = list(attrs.get("class_iterations", []))
    return [(_label(classes[i]) if i < len(classes) else i, s,
             int(rounds[i]) if i < len(rounds) else None,
             int(its[i]) if i < len(its) else None) for i, s in enumerate(statuses)]


def algorithm_of(result, default="distnewton") -> str:
    """The algorithm's name in a Result's attributes (``default`` without one)."""
    name = (result.get("attrs") or {}).get("algorithm", default)
    return name.decode() if isinstance(name, bytes) else str(name)


def _label(value):
    value = value.item() if hasattr(value, "item") else value
    return int(value) if isinstance(value, float) and value.is_integer() else value


def message(algorithm, runs, detail="", keys=None, limits=None) -> str | None:
    """The warning text for ``runs`` (:func:`runs_of`'s tuples), or None when
    none of them ended with a status of :data:`NOT_CONVERGED`.  ``detail``: the
    run's own message (why it stopped: shown for a single run that stalled or
    diverged); ``keys``/``limits``: see :func:`advice`."""
    bad = [r for r in runs if r[1] in NOT_CONVERGED]
    if not bad:
        return None
    if len(runs) == 1 and runs[0][0] is None:
        _, status, rounds, its = runs[0]
        head = (f"{algorithm} failed to converge (status {status}) after "
                f"{_count(rounds, 'communication round')} and {_count(its, 'iteration')}")
        if detail and status in ("stalled", "diverged"):     # the budget's says nothing new
            head += f": {detail}"
    else:
        each = "; ".join(f"class {label}: {status} after {_count(rounds, 'round')}"
                         for label, status, rounds, _ in bad)
        head = (f"{algorithm} failed to converge for {len(bad)} of {len(runs)} classes "
                f"({each})")
    steps = dict.fromkeys(advice(status, keys, limits) for _, status, _, _ in bad)
    return f"{head}. " + ". ".join(steps) + "."


def _count(n, what):
    return f"? {what}s" if n is None else f"{n} {what}{'' if n == 1 else 's'}"


def warn_if_unconverged(result, limits=None, category=ConvergenceWarning, stacklevel=2):
    """Issue ``category`` with :func:`message` when ``result`` did not converge;
    the message (or None).  ``stacklevel`` counts from the caller of this function."""
    text = message(algorithm_of(result), runs_of(result), result.get("message", ""),
                   limits=limits)
    if text is not None:
        warnings.warn(text, category, stacklevel=stacklevel + 1)
    return text
