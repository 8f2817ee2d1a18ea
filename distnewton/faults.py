"""Fault injection for the tests only.

``DISTNEWTON_TEST_FAULT=RANK:POINT`` makes rank RANK raise a RuntimeError at
POINT, one of ``load`` (reading/receiving data), ``round`` (the first round
of the algorithm), ``write`` (rank 0, before writing the result) or one part
of the result write (rank 0, :func:`distnewton.results.write_result`):
``write:attrs``, ``write:history``, ``write:model``, ``write:checkpoint``
(only when the file gets a /checkpoint), ``write:rename`` (the file is
complete under its temporary name).  ``RANK:POINT=ERRNO`` raises
``OSError(errno.ERRNO)`` instead, e.g. ``0:write:model=ENOSPC`` (disk full);
``RANK:POINT=SIGKILL`` kills the process there (a write cut short);
``RANK:POINT=STALL`` prints ``distnewton-test: stalled at POINT`` on stderr and
waits there forever (a test then signals a process caught mid-write).
``DISTNEWTON_TEST_SIGNAL=SIG@N`` makes the master raise the real signal SIG
(SIGTERM or SIGUSR1) in its own process when it checks for a stop after
iteration N (:func:`distnewton.stopping.requested`), so a test stops a run
at a known iteration instead of timing a ``kill``.
``DISTNEWTON_TEST_MARK=DIR`` makes each rank create the empty file
``DIR/POINT-RANK`` (``:`` as ``-``) whenever it passes an injection point (the
sim backend's rounds count as rank 0's), so a test signals a process once it is
known to be there instead of after a fixed sleep.  Never set them otherwise.
"""

import errno
import os
import signal

POINTS = ("load", "round", "write", "write:attrs", "write:history", "write:model",
          "write:checkpoint", "write:rename")


def mark(point, rank):
    """``DISTNEWTON_TEST_MARK``: record that ``rank`` reached ``point``."""
    folder = os.environ.get("DISTNEWTON_TEST_MARK")
    if folder:
        open(os.path.join(folder, f"{point.replace(':', '-')}-{rank}"), "a").close()


def inject(point, rank):
    mark(point, rank)
    spec = os.environ.get("DISTNEWTON_TEST_FAULT")
    if not spec:
        return
    want_rank, _, rest = spec.partition(":")
    want_point, _, kind = rest.partition("=")
    if want_point != point or int(want_rank) != rank:
        return
    if kind == "SIGKILL":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "STALL":
        stall(point)
    if kind:
        code = getattr(errno, kind)
        raise OSError(code, f"{os.strerror(code)} (injected at {point}, DISTNEWTON_TEST_FAULT)")
    raise RuntimeError(f"injected fault at {point} (DISTNEWTON_TEST_FAULT)")


def stall(point):
    """Announce the point, then wait until a signal ends the process."""
    import sys
    import time
    sys.stderr.write(f"distnewton-test: stalled at {point}\n")
    sys.stderr.flush()
    while True:
        time.sleep(1.0)


def signal_at(iteration):
    """Raise ``DISTNEWTON_TEST_SIGNAL``'s signal in this process at its iteration."""
    spec = os.environ.get("DISTNEWTON_TEST_SIGNAL")
    if not spec:
        return
    name, _, at = spec.partition("@")
    if int(at) == iteration:
        signal.raise_signal(getattr(signal, name))     # runs the Python handler at once
