"""Stop a run cleanly on SIGUSR1 (SLURM: ``#SBATCH --signal=B:USR1@120``).

:func:`install` (every rank, at start) makes SIGUSR1 set a flag instead of
killing the process; the master's loop checks :func:`requested` after each
iteration and ends the run with status ``stopped``, writing the result file as
usual.  Workers only set the flag (the master's stop reaches them as the normal
end of the job).  SIGTERM and SIGINT keep their default behaviour.
"""

from __future__ import annotations

import signal

_requested = None


def _handler(signum, frame):
    global _requested
    _requested = signal.Signals(signum).name


def install():
    if hasattr(signal, "SIGUSR1"):
        try:
            signal.signal(signal.SIGUSR1, _handler)
        except ValueError:          # not the main thread (embedded use): no clean stop
            pass


def requested():
    """The name of the signal that asked for a stop, or None."""
    return _requested
