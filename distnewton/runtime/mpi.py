"""``backend: mpi``: rank 0 is the master, ranks 1..K are the workers.

mpi4py is imported lazily (importing it runs MPI_Init), so ``--help`` and
``distnewton list`` on a login node never touch MPI.  All vectors travel as
float64/int64 numpy buffers through the upper-case (buffer) collectives;
only the resolved config text and control flags use the pickling lower-case
calls.

Faults: :func:`install_abort_hook` makes an uncaught exception on any rank
print ``distnewton: rank R: ...`` once and call ``MPI_Abort``, so the other
ranks never hang in a collective.

Start-up (:func:`check_world`, on every rank before anything else): the
world must be the one the launcher started, and every rank must have the same
worker-task table (:func:`check_task_table`); a rank that could not import a
plugin joins that check instead of leaving alone (:func:`join_startup_check`).
Subset rounds (``to=``) are point-to-point: :mod:`distnewton.runtime.p2p`.
"""

from __future__ import annotations

import os
import sys
import time
import traceback

import numpy as np
import scipy.sparse as sp

from . import (EVAL_FLAG, HEADER_LEN, OP_GATHER, OP_MASK, OP_REDUCE, OP_STOP, Runtime,
               WorkerContext, run_task, task_ids, worker_rng)
from ..errors import EXIT_INTERNAL, UserError
from ..faults import inject
from .startup import check_task_table

#: Environment variables a launcher sets to say how many tasks it started.
LAUNCHER_SIZE_VARS = ("SLURM_NTASKS", "PMI_SIZE", "PMIX_SIZE", "OMPI_COMM_WORLD_SIZE",
                      "MPI_LOCALNRANKS")


def comm_world():
    from mpi4py import MPI
    return MPI.COMM_WORLD


def launched_size():
    """Tasks a launcher (srun, mpiexec) says it started, or None.

    The MPI process managers' own counts come first: an ``mpiexec`` inside a
    SLURM job starts its ranks through a one-task ``srun`` step, so the ranks
    see ``SLURM_NTASKS=1`` beside ``PMI_SIZE=3`` (MPICH's hydra) or
    ``OMPI_COMM_WORLD_SIZE=3`` (Open MPI).  ``SLURM_NTASKS`` alone is what
    ``srun --mpi=none`` leaves: N singletons to detect.
    """
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS"):
        val = os.environ.get(var)
        if val and val.isdigit():
            return int(val)
    return None


def under_launcher():
    return any(v in os.environ for v in LAUNCHER_SIZE_VARS) or "PMI_RANK" in os.environ \
        or "HYDRA_CONTROL_FD" in os.environ or "PMI_FD" in os.environ


def check_world(comm):
    """Stop with a clear message when the launcher and MPI disagree, or the ranks'
    worker-task tables do (:func:`check_task_table`).

    A wrong ``srun``/PMI setup starts N singletons, each "rank 0 of 1": compare
    COMM_WORLD's size with what the launcher says it started.
    """
    check_world_size(comm)
    check_task_table(comm)


def check_world_size(comm):
    expected = launched_size()
    if expected is not None and expected != comm.Get_size():
        raise UserError(
            f"the launcher started {expected} tasks but MPI sees {comm.Get_size()}: "
            "mpi4py is not built for the MPI your launcher uses (try `srun --mpi=pmix` or "
            "`srun --mpi=pmi2`, or launch with that MPI's mpiexec)")
    if comm.Get_size() < 2:
        raise UserError("backend mpi needs at least 2 ranks (rank 0 master + workers): "
                        "run `mpiexec -n K+1 distnewton run ...` or use --backend sim")


def join_startup_check(exc, backend):
    """A rank whose config failed with a PluginError: take part in the start-up
    check the other ranks run (:func:`check_world`), so that they stop too.

    Returns the error to report: the job-wide one, or ``exc`` itself when no
    MPI run is starting (sim backend, no launcher, a world the size checks
    refuse on every rank alike).
    """
    if backend == "sim" or (backend == "auto" and not under_launcher()):
        return exc
    comm = comm_world()
    try:
        check_world_size(comm)             # the others stop here too: no check follows
    except UserError:
        return exc
    try:
        check_task_table(comm, failure=str(exc))
    except UserError as joint:             # always: this rank's failure is in it
        return joint
    return exc


def install_abort_hook():
    """Uncaught exception on any rank -> print it once with the rank, MPI_Abort."""
    def hook(etype, value, tb):
        abort_on_exception(value, tb=tb)
    sys.excepthook = hook


def abort_on_exception(exc, tb=None, code=None):
    """Print ``exc`` with this rank's number and abort the whole job."""
    comm = comm_world()
    rank = comm.Get_rank()
    if isinstance(exc, UserError):
        sys.stderr.write(f"distnewton: rank {rank}: error: {exc}\n")
        code = exc.exit_code if code is None else code
    else:
        text = "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))
        sys.stderr.write(f"distnewton: rank {rank}: internal error:\n{text}")
        code = EXIT_INTERNAL if code is None else code
    sys.stderr.flush()
    time.sleep(0.3)            # let the launcher forward the message before the kill
    comm.Abort(code)


class MPIRuntime(Runtime):
    """Master side of the MPI backend (rank 0)."""

    backend = "mpi"

    @property
    def round_latency(self):
        """0.5 ms when ranks outnumber the node's cores (sleeping waits, measured
        0.4-0.8 ms per round), else 0.15 ms (spinning, 0.1-0.2 ms): ``configure_wait``."""
        return 5e-4 if _sleep_when_waiting else 1.5e-4

    def __init__(self, comm):
        super().__init__()
        self.comm = comm
        self.K = comm.Get_size() - 1
        self._header = np.zeros(HEADER_LEN, dtype=np.int64)
        self._send = Buffers()

    def _exchange(self, task_id, down, up, scatter, evaluating, to):
        from mpi4py import MPI
        inject("round", 0)
        if to is not None:                          # a subset round: point-to-point
            from .p2p import subset_exchange
            return subset_exchange(self.comm, task_id, down, up, scatter, evaluating, to,
                                   self._send)
        comm, h = self.comm, self._header
        h[:] = 0
        h[0] = (OP_REDUCE if isinstance(up, int) else OP_GATHER) | (EVAL_FLAG * evaluating)
        h[1], h[2], h[3] = task_id, len(down), scatter is not None
        h[4:4 + len(down)] = [v.size for v in down]
        wait(comm.Ibcast(h, root=0))                            # control header
        if sum(v.size for v in down):
            payload = self._send.get(sum(v.size for v in down))
            np.concatenate(down, out=payload)
            wait(comm.Ibcast(payload, root=0))                  # the broadcast vectors
        if scatter is not None:
            counts = np.array([0] + [v.size for v in scatter], dtype=np.int64)
            comm.Scatter(counts, np.empty(1, np.int64), root=0)
            displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
            comm.Scatterv([np.concatenate(scatter), counts, displs, MPI.DOUBLE],
                          np.empty(0), root=0)
        if isinstance(up, int):
            total = np.zeros(up)                     # the master's (zero) part, in place
            wait(comm.Ireduce(MPI.IN_PLACE, total, op=MPI.SUM, root=0))   # workers compute
            return total
        counts = np.array([0] + list(up), dtype=np.int64)
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
        buf = np.empty(int(counts.sum()))
        wait(comm.Igatherv(np.empty(0), [buf, counts, displs, MPI.DOUBLE], root=0))
        return np.split(buf, np.cumsum(up)[:-1])

    def shutdown(self):
        self._header[:] = 0
        self._header[0] = OP_STOP
        wait(self.comm.Ibcast(self._header, root=0))


#: polls with sched_yield before a waiting rank starts sleeping between polls
#: (only when the node has more ranks than cores: see :func:`configure_wait`)
SPIN_POLLS = int(os.environ.get("DISTNEWTON_SPIN_POLLS", "200"))
#: seconds slept between polls after that (the kernel makes it ~85 us or more)
POLL_SLEEP = float(os.environ.get("DISTNEWTON_POLL_SLEEP", "1e-5"))
_sleep_when_waiting = True


def configure_wait(comm):
    """Sleep while waiting only when this node has more ranks than cores.

    Measured (a round whose task computes 0.5-5 ms, d = 22): with 2 ranks on 2
    cores, spinning costs 0.1-0.2 ms per round and sleeping 0.55 ms (a sleep
    lasts >= 85 us, and a round waits three times); with 3 ranks on 2 cores,
    spinning costs 1-3 ms (the waiting master takes a core a worker needs)
    and sleeping 0.4-0.8 ms.  ``DISTNEWTON_WAIT=spin|sleep`` overrides.
    All ranks of a node decide alike (same counts).
    """
    global _sleep_when_waiting
    mode = os.environ.get("DISTNEWTON_WAIT", "auto")
    if mode in ("spin", "sleep"):
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


def serve(comm, shard, seed, params=None):
    """Worker loop (ranks 1..K): run tasks until the master says stop.

    The next full round's header broadcast (``Ibcast``) is posted at once and
    stays pending while subset rounds addressed to this rank come and go
    (point-to-point, :mod:`~distnewton.runtime.p2p`): :func:`wait` polls both.
    """
    from mpi4py import MPI

    from .p2p import header_waiting, serve_subset_round
    rank = comm.Get_rank()
    ctx = WorkerContext(rank - 1, shard, worker_rng(seed, rank - 1), params)
    _, names = task_ids()
    h = np.zeros(HEADER_LEN, dtype=np.int64)
    bufs = Buffers()
    subset_header = header_waiting(comm)
    while True:
        full = comm.Ibcast(h, root=0)                # the master's next full round (or stop)
        while not wait(full, subset_header):         # idle until a round comes; a subset
            serve_subset_round(comm, ctx, names, bufs)   # round first: the Ibcast stays posted
        if h[0] == OP_STOP:
            return
        lens = [int(n) for n in h[4:4 + int(h[2])]]
        payload = bufs.get(sum(lens))
        if payload.size:
            wait(comm.Ibcast(payload, root=0))
        down = np.split(payload, np.cumsum(lens)[:-1]) if lens else []
        scattered = None
        if h[3]:
            count = np.empty(1, np.int64)
            comm.Scatter(None, count, root=0)
            scattered = np.empty(int(count[0]))
            comm.Scatterv(None, scattered, root=0)
        inject("round", rank)
        out = run_task(ctx, names, int(h[1]), down, scattered, bool(h[0] & EVAL_FLAG))
        if h[0] & OP_MASK == OP_REDUCE:
            wait(comm.Ireduce(out, None, op=MPI.SUM, root=0))
        else:
            wait(comm.Igatherv(out, None, root=0))


# -- distributing the shards (setup, counted apart from the algorithm) -----
def send_shards(comm, X, y, parts):
    """Master: give worker k the rows parts[k] of (X, y) as CSR buffers.

    Returns the bytes sent.  Only rank 0 ever holds the whole matrix.
    """
    from mpi4py import MPI
    pieces = [X[idx] for idx in parts]
    meta = np.zeros((comm.Get_size(), 3), dtype=np.int64)
    meta[1:, 0] = [p.shape[0] for p in pieces]
    meta[1:, 1] = [p.nnz for p in pieces]
    meta[1:, 2] = X.shape[1]
    comm.Scatter(meta, np.empty(3, np.int64), root=0)
    sent = meta.nbytes

    def scatterv(arrays, dtype, mpitype):
        nonlocal sent
        counts = np.array([0] + [a.size for a in arrays], dtype=np.int64)
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
        buf = np.concatenate([np.asarray(a, dtype=dtype) for a in arrays])
        comm.Scatterv([buf, counts, displs, mpitype], np.empty(0, dtype), root=0)
        sent += buf.nbytes

    scatterv([p.indptr for p in pieces], np.int64, MPI.INT64_T)
    scatterv([p.indices for p in pieces], np.int64, MPI.INT64_T)
    scatterv([p.data for p in pieces], np.float64, MPI.DOUBLE)
    scatterv([y[idx] for idx in parts], np.float64, MPI.DOUBLE)
    return sent


def receive_shard(comm):
    """Worker: receive this rank's (X, y) from :func:`send_shards`."""
    meta = np.empty(3, np.int64)
    comm.Scatter(None, meta, root=0)
    n, nnz, d = (int(v) for v in meta)
    indptr, indices = np.empty(n + 1, np.int64), np.empty(nnz, np.int64)
    data, y = np.empty(nnz), np.empty(n)
    for buf in (indptr, indices, data, y):
        comm.Scatterv(None, buf, root=0)
    return sp.csr_matrix((data, indices, indptr), shape=(n, d)), y
