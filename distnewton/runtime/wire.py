"""The wire protocol of the MPI backend: the round header and the replies.

Every round starts with an 8-word int64 header (:data:`~distnewton.runtime.HEADER_LEN`)
from rank 0, broadcast for a full round (:mod:`.mpi`) or sent to each addressed
rank for a subset round (:mod:`.p2p`):

====  =====================================================================
word  meaning
====  =====================================================================
0     op (:data:`~distnewton.runtime.OP_REDUCE`, ``OP_GATHER`` or ``OP_STOP``)
      ``|`` ``EVAL_FLAG`` (a logging-only round) ``|`` ``RAGGED_FLAG`` (a gather
      of replies of any length) ``|`` the path's own flags
1     the task's id (:func:`~distnewton.runtime.task_ids`: the same on every rank)
2     the number of ``down`` vectors (at most ``MAX_DOWN``)
3     full round: 1 when a scatter follows; subset round: the addressed workers
4..7  the ``down`` vectors' lengths
====  =====================================================================

Then the concatenated ``down`` vectors (one float64 buffer), the scattered
pieces, and each rank's reply: the sum of its workers' replies (reduction)
or their concatenation (gather).  Both paths encode and decode the header,
run a rank's tasks and form its reply with the functions below.
"""

from __future__ import annotations

import numpy as np

from . import EVAL_FLAG, HEADER_LEN, OP_GATHER, OP_MASK, OP_REDUCE, RAGGED, RAGGED_FLAG, run_task


def is_ragged(up) -> bool:
    """``up=[RAGGED] * m``: replies whose lengths the master does not know."""
    return not isinstance(up, int) and up[0] is RAGGED


def encode(h, task_id, down, up, evaluating, word3, flags=0):
    """Fill header ``h`` (int64, :data:`HEADER_LEN` words) for a round; returns it."""
    h[:] = 0
    h[0] = ((OP_REDUCE if isinstance(up, int) else OP_GATHER) | (EVAL_FLAG * evaluating)
            | (RAGGED_FLAG * is_ragged(up)) | flags)
    h[1], h[2], h[3] = task_id, len(down), word3
    h[4:4 + len(down)] = [v.size for v in down]
    return h


def new_header():
    return np.zeros(HEADER_LEN, dtype=np.int64)


def down_lengths(h):
    """The lengths of the ``down`` vectors a header announces."""
    return [int(n) for n in h[4:4 + int(h[2])]]


def split(payload, lens):
    """The ``down`` vectors: views of ``payload`` cut at ``lens``."""
    return np.split(payload, np.cumsum(lens)[:-1]) if lens else []


def is_reduce(h) -> bool:
    return h[0] & OP_MASK == OP_REDUCE


def run_tasks(ctxs, names, h, down, pieces):
    """A rank's part of a round: its logical workers' tasks in order of k, the
    replies as a list."""
    return [run_task(ctx, names, int(h[1]), down, None if pieces is None else pieces[i],
                     bool(h[0] & EVAL_FLAG))
            for i, ctx in enumerate(ctxs)]


def reduced(outs):
    """A rank's reply to a reduction: the sum of its workers' replies, in order of k."""
    return outs[0] if len(outs) == 1 else sum(outs[1:], outs[0].copy())


def gathered(outs):
    """A rank's reply to a gather: its workers' replies one after another."""
    return outs[0] if len(outs) == 1 else np.concatenate(outs)


def lengths(outs):
    """The lengths a ragged gather sends first (8 bytes each)."""
    return np.array([o.size for o in outs], dtype=np.int64)


class Buffers:
    """One reusable float64 buffer per length: a round's broadcast payload is not
    reallocated every round (for d = 1e6 that is 8 MB of fresh pages each time).
    A buffer is overwritten by the next round of the same length, so worker tasks
    copy what they keep (see ``WorkerContext.scratch``)."""

    def __init__(self):
        self._bufs = {}

    def get(self, n):
        buf = self._bufs.get(n)
        if buf is None:
            buf = self._bufs[n] = np.empty(n)
        return buf
