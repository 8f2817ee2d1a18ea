"""Errors and exit codes shared by every rank.

Exit codes (documented in docs/guide/running.md): 0 done, 1 internal error, 2 user error
(bad config, bad data, bad arguments), 3 stopped by SIGTERM/SIGUSR1/SIGINT with
a checkpoint written (``distnewton run --resume FILE`` continues), 4 the run
finished but its result file could not be written: the model and history are
in the fallback file named on stderr (``distnewton recover FILE``), 5 the run
ended without converging (``max_rounds``, ``max_iterations``, ``stalled``,
``diverged``) and ``--require-converged`` (``run.require_converged``) asked for
convergence: the result file is written as usual; 128 + N
stopped by signal N while the input was loaded, before any model existed:
nothing written (143 SIGTERM, 130 SIGINT, 138 SIGUSR1, as shells report a
process killed by a signal; :class:`distnewton.stopping.Interrupted`).
"""

import sys

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USER = 2
EXIT_STOPPED = 3
EXIT_SALVAGED = 4
EXIT_NOT_CONVERGED = 5      # --require-converged: the run ended without converging
EXIT_SIGNAL_BASE = 128      # + signum: stopped while loading (distnewton.stopping)


class UserError(Exception):
    """A problem with the user's input: printed as one line, exit code 2.

    The message names the file and line (``FILE:LINE: what``), the config key
    (``algorithm.L: ...``) or the argument at fault.
    """

    exit_code = EXIT_USER


class PluginError(UserError):
    """A user error from the algorithm registry or a plugin import.

    Unlike other config errors it may differ between ranks (a module that is
    importable on some nodes only, an entry point installed on one of them), so
    under MPI the failing rank does not just exit: it joins the start-up check
    of the worker-task tables (:func:`distnewton.runtime.mpi.join_startup_check`)
    and every rank stops with the same message.  ``backend`` is set by
    :func:`distnewton.config.resolve` (the run's ``run.backend``); None outside a run.
    """

    backend = None


# -- messages that always reach the user ---------------------------------------
def echo(text, err=True):
    """Print one line; a name that is not UTF-8 goes out as its raw bytes, and a
    closed or broken stream is ignored (the result is what matters)."""
    stream = sys.stderr if err else sys.stdout
    try:
        try:
            stream.write(text + "\n")
        except UnicodeEncodeError:
            stream.flush()
            stream.buffer.write(text.encode("utf-8", "surrogateescape") + b"\n")
        stream.flush()
    except (OSError, ValueError, AttributeError, UnicodeEncodeError):
        pass


def reason(exc) -> str:
    """One line saying what went wrong: ``ExceptionType: message``."""
    text = " ".join(str(exc).split()) or "no message"
    return f"{type(exc).__name__}: {text}"
