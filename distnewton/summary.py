"""How ``distnewton run`` ends: its summary line and its exit code.

The summary line (status, message, iterations, rounds, loss, seconds, result
path) goes to stdout whatever the verbosity (``-q`` keeps it).  A run that
ended without converging (:data:`NOT_CONVERGED`) also says so on stderr, so
that it is not mistaken for a result: a warning line, or with
``--require-converged`` (``run.require_converged``) an error line and exit code
5 (:data:`~distnewton.errors.EXIT_NOT_CONVERGED`).  The result file is written
either way; a stopped run (exit 3) is not a failure to converge: ``--resume``
continues it.
"""

from __future__ import annotations

from .convergence import NOT_CONVERGED
from .errors import EXIT_NOT_CONVERGED, EXIT_OK, EXIT_STOPPED, echo


def summary_line(outcome, path=None):
    """``status: message; N iterations, R rounds, loss F, S s -> PATH``."""
    h = outcome.history
    return (f"{outcome.status}: {outcome.message}; {h.last('iteration')} iterations, "
            f"{h.last('comm_rounds')} rounds, loss {h.last('loss'):.15e}, "
            f"{h.last('wall_time'):.2f} s" + (f" -> {path}" if path else ""))


def not_converged_line(outcome, path, required):
    """The stderr line of a run that did not converge (None for one that did)."""
    if outcome.status not in NOT_CONVERGED:
        return None
    what = f"the run did not converge: {outcome.status}: {outcome.message}"
    if required:
        return (f"distnewton: error: {what}; result written to {path} "
                f"(exit {EXIT_NOT_CONVERGED}, --require-converged)")
    return f"distnewton: warning: {what} (--require-converged makes this exit code " \
           f"{EXIT_NOT_CONVERGED})"


def conclude(outcome, path, required=False):
    """Print the summary line (and the not-converged line); the exit code."""
    echo(summary_line(outcome, path), err=False)
    line = not_converged_line(outcome, path, required)
    if line is not None:
        echo(line)
    if outcome.status == "stopped":
        return EXIT_STOPPED
    if required and line is not None:
        return EXIT_NOT_CONVERGED
    return EXIT_OK
