"""Subset rounds over MPI: point-to-point messages to the addressed workers only.

``rt.round(task, *down, up=, scatter=, to=[k, ...])`` (see
:mod:`distnewton.runtime`) must not involve the other workers, so it cannot
use a collective.  The master (rank 0), for each addressed worker k (rank k+1):

1. posts an ``Irecv`` of the reply (tag :data:`TAG_REPLY`, exactly the
   expected length: n floats for a sum, ``up[i]`` for a gather);
2. ``Isend`` s its own copy of the 8-word header (tag :data:`TAG_HEADER`; word
   3 is 1 + the length of k's scatter piece, 0 without a scatter), the
   concatenated ``down`` vectors (:data:`TAG_PAYLOAD`, when not empty) and k's
   scatter piece (:data:`TAG_SCATTER`);
3. waits for all of them (polling, as every wait here) and sums the replies in
   increasing k, the order the sim backend sums them, or returns them in order.

Cost: m headers of 64 bytes, m copies of the payload, the pieces down; m
replies up (what :meth:`Runtime.round` counts).  A worker waits for its next
round in :func:`distnewton.runtime.mpi.serve`: the ``Ibcast`` of the next full
round's header stays posted while it also probes for a header of its own
(tag :data:`TAG_HEADER` from rank 0), and whichever arrives first is the next
round.  The two cannot both be pending: the master starts a round only when
the previous one is complete, and a round this worker took part in completes
only after its reply.  Collectives and point-to-point messages are matched
separately in MPI, so the pending ``Ibcast`` still matches the master's next
full round after any number of subset rounds.
"""

from __future__ import annotations

import numpy as np

from . import EVAL_FLAG, HEADER_LEN, OP_GATHER, OP_REDUCE, RAGGED, RAGGED_FLAG, run_task
from ..faults import inject

TAG_HEADER, TAG_PAYLOAD, TAG_SCATTER, TAG_REPLY, TAG_LENGTH = 41, 42, 43, 44, 45


def subset_exchange(comm, task_id, down, up, scatter, evaluating, to, send_buffers):
    """Master side of a subset round (see the module docstring)."""
    from mpi4py import MPI

    from .mpi import wait_all
    m = len(to)
    ragged = not isinstance(up, int) and up[0] is RAGGED
    heads = np.zeros((m, HEADER_LEN), dtype=np.int64)
    heads[:, 0] = ((OP_REDUCE if isinstance(up, int) else OP_GATHER) | (EVAL_FLAG * evaluating)
                   | (RAGGED_FLAG * ragged))
    heads[:, 1], heads[:, 2] = task_id, len(down)
    if scatter is not None:
        heads[:, 3] = [1 + v.size for v in scatter]
    heads[:, 4:4 + len(down)] = [v.size for v in down]
    sizes = [up] * m if isinstance(up, int) else up
    if ragged:                                   # each reply's length comes first
        lengths = np.zeros((m, 1), dtype=np.int64)
        recvs = [comm.Irecv(lengths[i], source=k + 1, tag=TAG_LENGTH) for i, k in enumerate(to)]
    else:
        replies = [np.empty(n) for n in sizes]
        recvs = [comm.Irecv(buf, source=k + 1, tag=TAG_REPLY) for buf, k in zip(replies, to)]
    n_down = sum(v.size for v in down)
    payload = send_buffers.get(n_down)
    if n_down:
        np.concatenate(down, out=payload)
    sends = []
    for i, k in enumerate(to):
        sends.append(comm.Isend(heads[i], dest=k + 1, tag=TAG_HEADER))      # header
        if n_down:
            sends.append(comm.Isend(payload, dest=k + 1, tag=TAG_PAYLOAD))  # down vectors
        if scatter is not None:
            sends.append(comm.Isend(scatter[i], dest=k + 1, tag=TAG_SCATTER))
    if ragged:
        wait_all(recvs)                                      # the workers compute
        sizes = [int(n) for n in lengths[:, 0]]
        replies = [np.empty(n) for n in sizes]
        recvs = [comm.Irecv(buf, source=k + 1, tag=TAG_REPLY) for buf, k in zip(replies, to)]
    statuses = [MPI.Status() for _ in recvs]
    wait_all(recvs, statuses)                                # the workers compute
    for k, st, n in zip(to, statuses, sizes):
        if st.Get_count(MPI.DOUBLE) != n:
            raise RuntimeError(f"worker {k} replied {st.Get_count(MPI.DOUBLE)} values, "
                               f"expected {n}")
    wait_all(sends)
    if not isinstance(up, int):
        return replies
    total = np.zeros(up)
    for r in replies:
        total += r
    return total


def header_waiting(comm):
    """A predicate for :func:`~distnewton.runtime.mpi.wait`: has rank 0 sent
    this rank a subset round's header?"""
    return lambda: comm.Iprobe(source=0, tag=TAG_HEADER)


def serve_subset_round(comm, ctx, names, bufs):
    """Worker side of a subset round whose header :func:`header_waiting` saw."""
    from .mpi import wait, wait_all
    h = np.empty(HEADER_LEN, dtype=np.int64)
    comm.Recv(h, source=0, tag=TAG_HEADER)
    lens = [int(n) for n in h[4:4 + int(h[2])]]
    payload = bufs.get(sum(lens))
    reqs = [comm.Irecv(payload, source=0, tag=TAG_PAYLOAD)] if payload.size else []
    scattered = None
    if h[3]:
        scattered = np.empty(int(h[3]) - 1)
        reqs.append(comm.Irecv(scattered, source=0, tag=TAG_SCATTER))
    wait_all(reqs)
    down = np.split(payload, np.cumsum(lens)[:-1]) if lens else []
    inject("round", comm.Get_rank())
    out = run_task(ctx, names, int(h[1]), down, scattered, bool(h[0] & EVAL_FLAG))
    if h[0] & RAGGED_FLAG:
        wait(comm.Isend(np.array([out.size], dtype=np.int64), dest=0, tag=TAG_LENGTH))
    wait(comm.Isend(out, dest=0, tag=TAG_REPLY))
