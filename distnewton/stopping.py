"""Stop a run cleanly on SIGTERM, SIGUSR1 or SIGINT (Ctrl-C).

SLURM sends SIGTERM at its time limit (after ``KillWait``) and the signal of
``#SBATCH --signal=B:USR1@120`` before it; ``mpiexec`` and ``srun`` forward
them to every rank.  :func:`install` (every rank, at start) makes them set a
flag instead of killing the process.  What happens then depends on the phase:

- **loading** (from :func:`install` until the iteration loop starts: reading
  the config, parsing the data, sending the shards): no model exists yet, so
  nothing is saved.  The handler raises :class:`Interrupted` at once (a blocked
  read included); the partial cache folders are removed and the run exits with
  one line and the shell's code 128 + signal number (143 SIGTERM, 130 SIGINT,
  138 SIGUSR1).  Under MPI every rank gets the signal; a rank that unwinds
  ends the job (MPI_Abort with that code) so no rank waits in a collective.
- **iterating**: the master's loop checks :func:`requested` after each
  iteration, gathers the workers' state, writes the result file with status
  ``stopped`` and a ``/checkpoint`` group, and exits with code 3
  (``distnewton run --resume FILE`` continues).  A long local phase (LocalNewton's
  ``L`` steps, Local SGD's local steps, IST's ``local_steps``) checks
  :func:`pending` before each step (:func:`local_range`) and ends early after
  at least one step: the workers reply as usual, the round completes (the
  average of what each worker did), and the master stops at the end of it.
  The resumed run is then not bit-identical to an uninterrupted one (that
  round took fewer local steps).  Workers only set the flag: a collective is
  never interrupted, and the master's stop reaches them as the normal end.

A second Ctrl-C kills the process at once (SIGINT's default action).  Under
MPICH's ``mpiexec`` the ranks are in sessions of their own and never get the
terminal's Ctrl-C: hydra catches it and forwards SIGINT to every rank once, and
kills the job on a second one.  Open MPI's ``mpirun`` aborts the job on Ctrl-C
(and SIGTERM): stop it with ``kill -USR1`` instead.  tests/test_terminal.py
presses Ctrl-C on a pseudo-terminal as a keyboard does.
"""

from __future__ import annotations

import signal

_requested = None           # the name of the signal that asked for a stop
_checks = 0
_loading = False            # before the iteration loop: a signal raises Interrupted
_cut = None                 # (what, steps done, steps asked) of the first cut phase
SIGNALS = ("SIGTERM", "SIGUSR1", "SIGINT")


class Interrupted(BaseException):
    """A stop signal before any model exists: exit code 128 + signum, one line.

    A BaseException (like KeyboardInterrupt), so ``except Exception`` blocks
    do not turn it into another error; ``finally`` blocks still clean up."""

    def __init__(self, signum):
        self.signum = signum
        from .errors import EXIT_SIGNAL_BASE
        self.exit_code = EXIT_SIGNAL_BASE + signum
        name = signal.Signals(signum).name
        super().__init__(f"{name} received while loading the input: stopped, nothing "
                         f"written (exit {self.exit_code})")


def _handler(signum, frame):
    global _requested
    if signum == signal.SIGINT:          # a second Ctrl-C: the default, kill at once
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    _requested = signal.Signals(signum).name
    if _loading:
        raise Interrupted(signum)


def install():
    """Every rank, at start: the stop signals set the flag; the loading phase begins
    (a signal of an earlier run in this process is forgotten)."""
    global _loading, _requested, _cut, _checks
    _requested = _cut = None
    _checks = 0
    for name in SIGNALS:
        if hasattr(signal, name):
            try:
                signal.signal(getattr(signal, name), _handler)
            except ValueError:      # not the main thread (embedded use): no clean stop
                return
    _loading = True


def loaded():
    """The iteration loop starts: from now on a signal stops at a safe point.
    A signal that came during loading raises :class:`Interrupted` here."""
    global _loading
    if _loading and _requested is not None:
        raise Interrupted(getattr(signal, _requested))
    _loading = False


def default_actions():
    """The stop signals back to their default actions (the process is ending: a
    launcher's SIGTERM to the remaining ranks then ends this one quietly)."""
    global _loading
    _loading = False
    for name in SIGNALS:
        try:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        except (AttributeError, ValueError):   # no such signal, not the main thread
            pass


def requested():
    """The name of the signal that asked for a stop, or None (the master asks
    once per iteration; the tests' ``DISTNEWTON_TEST_SIGNAL`` fault fires here)."""
    global _checks
    _checks += 1
    from .faults import signal_at
    signal_at(_checks)
    return _requested


def pending():
    """The stop signal's name, or None: the cheap check of a local loop (no
    counting, no fault injection)."""
    return _requested


def local_range(total, what="local steps"):
    """``range(total)`` for a worker's local phase that ends early, after at
    least one step, once a stop signal is pending (recorded for :func:`cut`)."""
    global _cut
    for i in range(total):
        if i and _requested is not None:
            if _cut is None:
                _cut = (what, i, total)
            return
        yield i


def cut():
    """``(what, done, total)`` of the first local phase this process cut, or None."""
    return _cut


def leave(exc: Interrupted):
    """End the process (under MPI the job) after :class:`Interrupted`: the
    partial cache folders removed, the output path's claim released, one line,
    exit code 128 + signum."""
    import sys
    import time

    from .data import cache
    from .errors import echo
    from .io.job import release_all, release_for_job
    default_actions()                    # the launcher's own SIGTERM may follow
    cache.discard_pending()
    release_all()                        # MPI_Abort below skips the atexit release
    mpi = sys.modules.get("mpi4py.MPI")
    world = mpi.COMM_WORLD if mpi is not None and mpi.Is_initialized() \
        and not mpi.Is_finalized() else None
    rank = world.Get_rank() if world is not None else 0
    if world is None or world.Get_size() < 2:
        echo(f"distnewton: error: {exc}")
        sys.exit(exc.exit_code)
    # every rank got the signal: rank 0 speaks; a worker speaks only if rank 0
    # has not ended the job after a while (it may be inside a long C call)
    time.sleep(0.3 if rank == 0 else 2.0)
    release_for_job()                    # rank 0 may be stuck in a collective
    echo(f"distnewton: error: {exc}")
    time.sleep(0.3)                      # the line reaches the launcher before the kill
    world.Abort(exc.exit_code)
