"""The collectives by which the ranks of a job agree on an input error: one
message for the whole job, raised on every rank at the same point, never a hang
(one rank failing while the others wait in a collective).

Used while every rank reads its share (:mod:`distnewton.shares`,
:mod:`distnewton.ingest_parallel`, :mod:`distnewton.split_parallel`) and by
:mod:`distnewton.session`'s checks; :mod:`distnewton.shares` re-exports them.
"""

from __future__ import annotations

from .errors import UserError


class Agreed(UserError):
    """A UserError every rank of the job raises at the same point (:func:`agree`):
    the job may end by :func:`distnewton.runtime.mpi.leave_world`, not MPI_Abort."""


def agree(comm, fn):
    """``fn()`` on this rank; when any rank raises a UserError, every rank raises
    the lowest rank's as :class:`Agreed` (one message for the whole job, never a hang)."""
    err, out = None, None
    try:
        out = fn()
    except UserError as exc:
        err = str(exc)
    errors = comm.allgather(err)
    first = next((e for e in errors if e), None)
    if first is not None:
        raise Agreed(first)
    return out


def fail_if(condition, message):
    """UserError(message()) when ``condition``."""
    if condition:
        raise UserError(message())


def agree_bcast(comm, fn):
    """``fn()`` on rank 0, its value on every rank; a UserError there is raised
    on every rank."""
    out = None
    if comm.Get_rank() == 0:
        try:
            out = (None, fn())
        except UserError as exc:
            out = (str(exc), None)
    err, value = comm.bcast(out, root=0)
    if err is not None:
        raise UserError(err)
    return value
