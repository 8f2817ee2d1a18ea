"""Stop a run cleanly on SIGTERM or SIGUSR1.

SLURM sends SIGTERM at its time limit (after ``KillWait``) and the signal of
``#SBATCH --signal=B:USR1@120`` before it; ``mpiexec`` forwards both to every
rank.  :func:`install` (every rank, at start) makes them set a flag instead
of killing the process; the master's loop checks :func:`requested` after each
iteration, gathers the workers' state, writes the result file with status
``stopped`` and a ``/checkpoint`` group, and exits with code 3
(``distnewton run --resume FILE`` continues).  Workers only set the flag: a
blocked collective is never interrupted, and the master's stop reaches them
as the normal end of the job.  SIGINT (Ctrl-C) keeps its default behaviour.
"""

from __future__ import annotations

import signal

_requested = None
_checks = 0


def _handler(signum, frame):
    global _requested
    _requested = signal.Signals(signum).name


def install():
    for name in ("SIGTERM", "SIGUSR1"):
        if hasattr(signal, name):
            try:
                signal.signal(getattr(signal, name), _handler)
            except ValueError:      # not the main thread (embedded use): no clean stop
                pass


def requested():
    """The name of the signal that asked for a stop, or None (the master asks
    once per iteration; the tests' ``DISTNEWTON_TEST_SIGNAL`` fault fires here)."""
    global _checks
    _checks += 1
    from .faults import signal_at
    signal_at(_checks)
    return _requested
