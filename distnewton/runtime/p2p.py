"""Subset rounds over MPI: point-to-point messages to the addressed workers only.

``rt.round(task, *down, up=, scatter=, to=[k, ...])`` (see
:mod:`distnewton.runtime`) must not involve the other workers, so it cannot
use a collective.  The master (rank 0), for each rank r hosting addressed
logical workers (rank k + 1 for worker k with one worker per rank; see
:mod:`~distnewton.runtime.hosting`):

1. posts an ``Irecv`` of the rank's reply (tag :data:`TAG_REPLY`, exactly the
   expected length: n floats for a sum of its workers' replies, the sum of
   their ``up[i]`` for a gather; a ragged gather first receives the replies'
   lengths, :data:`TAG_LENGTH`);
2. ``Isend`` s its own copy of the 8-word header (tag :data:`TAG_HEADER`; word
   3 is the number of its addressed workers, :data:`SCATTER_FLAG` in word 0
   when there are scatter pieces), which workers (:data:`TAG_WHO`: their
   indices, then their pieces' lengths), the concatenated ``down`` vectors
   (:data:`TAG_PAYLOAD`, when not empty) and the pieces (:data:`TAG_SCATTER`);
3. waits for all of them (polling, as every wait here) and sums the replies in
   increasing rank (so increasing k, the order the sim backend sums them, with
   one worker per rank), or returns them in order.

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

from . import RAGGED_FLAG, wire
from ..faults import inject
from .waiting import wait, wait_all

TAG_HEADER, TAG_PAYLOAD, TAG_SCATTER, TAG_REPLY, TAG_LENGTH, TAG_WHO = 41, 42, 43, 44, 45, 46
#: header word 0 of a subset round: the addressed workers get scatter pieces
SCATTER_FLAG = 16


def subset_exchange(comm, task_id, down, up, scatter, evaluating, to, send_buffers,
                    hosts=None, between=None):
    """Master side of a subset round (see the module docstring).

    ``hosts``: the logical workers of each worker rank (default one per rank);
    every rank hosting an addressed worker gets one set of messages.
    ``between``: called once every message is posted, before the waits (the
    master's own workers compute then: ``run.master_shard``)."""
    from mpi4py import MPI
    hosts = hosts or [[k] for k in range(max(to) + 1)]
    rank_of = {int(k): r + 1 for r, ks in enumerate(hosts) for k in ks}
    ragged = wire.is_ragged(up)
    sizes = [up] * len(to) if isinstance(up, int) else list(up)
    groups = {}                                   # rank -> positions in ``to``
    for i, k in enumerate(to):
        groups.setdefault(rank_of[int(k)], []).append(i)
    n_down = sum(v.size for v in down)
    payload = send_buffers.get(n_down)
    if n_down:
        np.concatenate(down, out=payload)
    sends, lengths, replies, recvs = [], {}, {}, []
    for r, pos in groups.items():
        if ragged:                                # each reply's length comes first
            lengths[r] = np.zeros(len(pos), dtype=np.int64)
            recvs.append(comm.Irecv(lengths[r], source=r, tag=TAG_LENGTH))
        else:
            n = up if isinstance(up, int) else sum(sizes[i] for i in pos)
            replies[r] = np.empty(n)
            recvs.append(comm.Irecv(replies[r], source=r, tag=TAG_REPLY))
        h = wire.encode(wire.new_header(), task_id, down, up, evaluating, len(pos),
                        flags=SCATTER_FLAG * (scatter is not None))
        who = [int(to[i]) for i in pos] + ([scatter[i].size for i in pos] if scatter else [])
        sends.append(comm.Isend(h, dest=r, tag=TAG_HEADER))                 # header
        sends.append(comm.Isend(np.array(who, dtype=np.int64), dest=r, tag=TAG_WHO))
        if n_down:
            sends.append(comm.Isend(payload, dest=r, tag=TAG_PAYLOAD))      # down vectors
        if scatter is not None:
            sends.append(comm.Isend(np.concatenate([scatter[i] for i in pos]), dest=r,
                                    tag=TAG_SCATTER))
    if between is not None:
        between()
    if ragged:
        wait_all(recvs)                                      # the workers compute
        for r, pos in groups.items():
            for i, n in zip(pos, lengths[r]):
                sizes[i] = int(n)
        recvs = []
        for r, pos in groups.items():
            replies[r] = np.empty(sum(sizes[i] for i in pos))
            recvs.append(comm.Irecv(replies[r], source=r, tag=TAG_REPLY))
    statuses = [MPI.Status() for _ in recvs]
    wait_all(recvs, statuses)                                # the workers compute
    for (r, buf), st in zip(replies.items(), statuses):
        if st.Get_count(MPI.DOUBLE) != buf.size:
            raise RuntimeError(f"rank {r} replied {st.Get_count(MPI.DOUBLE)} values, "
                               f"expected {buf.size}")
    wait_all(sends)
    if isinstance(up, int):
        total = np.zeros(up)
        for r in sorted(replies):                            # increasing k, as sim sums
            total += replies[r]
        return total
    out = [None] * len(to)
    for r, pos in groups.items():
        parts = np.split(replies[r], np.cumsum([sizes[i] for i in pos])[:-1])
        for i, part in zip(pos, parts):
            out[i] = part
    return out


def header_waiting(comm):
    """A predicate for :func:`~distnewton.runtime.mpi.wait`: has rank 0 sent
    this rank a subset round's header?"""
    return lambda: comm.Iprobe(source=0, tag=TAG_HEADER)


def serve_subset_round(comm, ctxs, names, bufs):
    """Worker side of a subset round whose header :func:`header_waiting` saw:
    the addressed ones of this rank's logical workers ``ctxs`` run, in order."""
    h = wire.new_header()
    comm.Recv(h, source=0, tag=TAG_HEADER)
    m, scattered_round = int(h[3]), bool(h[0] & SCATTER_FLAG)
    who = np.empty(m * (2 if scattered_round else 1), dtype=np.int64)
    comm.Recv(who, source=0, tag=TAG_WHO)
    lens = wire.down_lengths(h)
    payload = bufs.get(sum(lens))
    reqs = [comm.Irecv(payload, source=0, tag=TAG_PAYLOAD)] if payload.size else []
    pieces = None
    if scattered_round:
        scattered = np.empty(int(who[m:].sum()))
        reqs.append(comm.Irecv(scattered, source=0, tag=TAG_SCATTER))
    wait_all(reqs)
    if scattered_round:
        pieces = np.split(scattered, np.cumsum(who[m:])[:-1])
    down = wire.split(payload, lens)
    by_k = {ctx.k: ctx for ctx in ctxs}
    inject("round", comm.Get_rank())
    outs = wire.run_tasks([by_k[int(k)] for k in who[:m]], names, h, down, pieces)
    if wire.is_reduce(h):
        reply = wire.reduced(outs)
    else:
        if h[0] & RAGGED_FLAG:
            wait(comm.Isend(wire.lengths(outs), dest=0, tag=TAG_LENGTH))
        reply = wire.gathered(outs)
    wait(comm.Isend(np.ascontiguousarray(reply), dest=0, tag=TAG_REPLY))
