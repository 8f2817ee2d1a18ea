"""Waiting for MPI requests without starving the ranks that share a core.

MPICH busy-polls inside blocking calls; with more ranks than cores (normal on
a laptop) an idle rank's spinning steals the core a busy rank needs.  Every
wait of the MPI backend is :func:`wait` / :func:`wait_all`: test, then
``sched_yield``, and on an oversubscribed node (:func:`configure_wait`) sleep
between tests once a round is not a quick one.
"""

from __future__ import annotations

import os
import time

#: polls with sched_yield before a waiting rank starts sleeping between polls
#: (only when the node has more ranks than cores: see :func:`configure_wait`)
SPIN_POLLS = int(os.environ.get("DISTNEWTON_SPIN_POLLS", "200"))
#: seconds slept between polls after that (the kernel makes it ~85 us or more)
POLL_SLEEP = float(os.environ.get("DISTNEWTON_POLL_SLEEP", "1e-5"))
_sleep_when_waiting = True
#: ``DISTNEWTON_WAIT=block``: MPI's own blocking wait (measured in
#: ``benchmarks/waiting_bench.py``, not a default)
_block = False


def configure_wait(comm):
    """Sleep while waiting only when this node has more ranks than cores.

    Measured (a round whose task computes 0.5-5 ms, d = 22): with 2 ranks on 2
    cores, spinning costs 0.1-0.2 ms per round and sleeping 0.55 ms (a sleep
    lasts >= 85 us, and a round waits three times); with 3 ranks on 2 cores,
    spinning costs 1-3 ms (the waiting master takes a core a worker needs)
    and sleeping 0.4-0.8 ms.  ``DISTNEWTON_WAIT=spin|sleep|block`` overrides
    (block: ``MPI_Wait``, which MPICH and Open MPI busy-poll without yielding).
    All ranks of a node decide alike (same counts).
    """
    global _sleep_when_waiting, _block
    mode = os.environ.get("DISTNEWTON_WAIT", "auto")
    _block = mode == "block"
    if mode in ("spin", "sleep", "block"):
        _sleep_when_waiting = mode == "sleep"
        return
    from mpi4py import MPI
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    _sleep_when_waiting = node.Get_size() > cores
    node.Free()


def wait(req, other=None):
    """Complete a non-blocking request, yielding the CPU while it is pending.

    ``other``: a second condition polled alongside (a worker: has a subset
    round's header come?); returns False as soon as it holds, leaving ``req``
    pending, and True when ``req`` completed.

    MPICH busy-polls inside blocking collectives; with more ranks than cores
    (normal on a laptop) an idle rank's spinning steals the core that a busy
    rank needs.  Polling with ``sched_yield`` between tests gives it back, and
    when the node is oversubscribed, after ``SPIN_POLLS`` polls (a round that is
    not a quick one: the workers are computing) the rank sleeps ``POLL_SLEEP``
    between polls, which frees the core entirely at the cost of about 0.1 ms
    of latency per wait.
    """
    if _block and other is None:
        req.Wait()
        return True
    polls = 0
    while not req.Test():
        if other is not None and other():
            return False
        if polls < SPIN_POLLS or not _sleep_when_waiting:
            os.sched_yield()
            polls += 1
        else:
            time.sleep(POLL_SLEEP)
    return True


def wait_all(reqs, statuses=None):
    """:func:`wait` for a list of requests (``statuses`` filled, as ``Testall``)."""
    from mpi4py import MPI
    if _block:
        MPI.Request.Waitall(reqs, statuses)
        return
    polls = 0
    while reqs and not MPI.Request.Testall(reqs, statuses):
        if polls < SPIN_POLLS or not _sleep_when_waiting:
            os.sched_yield()
            polls += 1
        else:
            time.sleep(POLL_SLEEP)


def wait_idle(comm, period=1e-3):
    """Barrier that sleeps while it waits (workers while rank 0 reads the data).

    A blocking collective would busy-poll for the whole setup and take the
    cores rank 0 needs to parse; this one wakes every ``period`` seconds.
    """
    req = comm.Ibarrier()
    while not req.Test():
        time.sleep(period)
