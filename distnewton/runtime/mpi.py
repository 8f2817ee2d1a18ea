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

from . import OP_STOP, RAGGED_FLAG, Runtime, contexts, run_task, task_ids
from . import wire
from ..errors import EXIT_INTERNAL, UserError
from ..faults import inject
from .hosting import host_blocks
from .p2p import header_waiting, serve_subset_round, subset_exchange
from .startup import check_task_table
from .waiting import configure_wait, wait, wait_all, wait_idle  # noqa: F401 (kept here)

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


def leave_world(code):
    """End a job that every rank stops with the same user error; the exit code
    this rank should return.

    The UserErrors raised after MPI_Init (world size, task tables, rank 0's
    input checks) are collective: every rank gets the same one.  All ranks
    finalize; the workers then exit 0 and rank 0, a moment later, ``code``.
    Were every rank to exit non-zero, Open MPI's prterun could start killing
    the job while a rank is still in PMIx_Finalize, and print
    ``PMIX ERROR: PMIX_ERR_UNREACH`` after distnewton's one line.  The
    launcher's exit code is still ``code`` (mpiexec and srun return the worst
    status of the job).
    """
    from mpi4py import MPI
    if not MPI.Is_initialized() or MPI.Is_finalized() or MPI.COMM_WORLD.Get_size() < 2:
        return code
    rank = MPI.COMM_WORLD.Get_rank()
    MPI.Finalize()
    if rank != 0:
        return 0
    time.sleep(0.2)            # the workers are gone before the non-zero status
    return code


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
    if "distnewton.io.job" in sys.modules:     # a run's claims (not imported here:
        sys.modules["distnewton.io.job"].release_before_abort()   # no runtime -> io)
    time.sleep(0.3)            # let the launcher forward the message before the kill
    comm.Abort(code)


class MPIRuntime(Runtime):
    """Master side of the MPI backend (rank 0).

    ``K``: logical workers (default one per worker rank; more: see
    :mod:`~distnewton.runtime.hosting`), ``hosts[r - 1]`` those rank r runs;
    ``blocks``: every rank's workers (``rank_blocks``), when rank 0 hosts
    ``local`` = ``blocks[0]`` itself (``run.master_shard``; their contexts come
    with :meth:`host`).  Their tasks run here between a round's sending and
    its receiving (:meth:`_run_local`), while the worker ranks compute theirs.
    """

    backend = "mpi"

    def __init__(self, comm, K=None, blocks=None):
        super().__init__()
        self.comm = comm
        self.K = comm.Get_size() - 1 if K is None else int(K)
        if blocks is None:
            blocks = [np.zeros(0, dtype=np.int64)] + host_blocks(self.K, comm.Get_size() - 1)
        self.local, self.hosts = blocks[0], blocks[1:]
        self.ctxs = []
        self._header = wire.new_header()
        self._send = wire.Buffers()

    @property
    def rank_hosts(self):
        """The workers of each rank that hosts any (what runs one after another)."""
        return ([self.local] if len(self.local) else []) + list(self.hosts)

    def host(self, shards, seed, params):
        """Rank 0's own workers ``local``: their contexts, as a worker rank's."""
        self.ctxs = contexts(self.local, shards, seed, params)

    def _run_local(self, task_id, payload, lens, pieces, evaluating, ctxs=None):
        """This rank's part of a round: its workers' (or ``ctxs``') replies, in
        order of k.  The tasks see the vectors in the send buffer, as a worker
        rank sees its receive buffer."""
        ctxs = self.ctxs if ctxs is None else ctxs
        down = wire.split(payload, lens)
        return [run_task(ctx, self.names, task_id, down,
                         None if pieces is None else pieces[i], evaluating)
                for i, ctx in enumerate(ctxs)]

    def _per_rank(self, lengths):
        """Per-rank totals of per-logical-worker lengths (rank 0: its own workers')."""
        lengths = np.asarray(lengths, dtype=np.int64)
        return np.array([int(lengths[self.local].sum())]
                        + [int(lengths[ks].sum()) for ks in self.hosts], dtype=np.int64)

    def _exchange(self, task_id, down, up, scatter, evaluating, to):
        from mpi4py import MPI
        inject("round", 0)
        if to is not None:                          # a subset round: point-to-point
            return self._subset(task_id, down, up, scatter, evaluating, to)
        comm, ragged = self.comm, wire.is_ragged(up)
        h = wire.encode(self._header, task_id, down, up, evaluating, scatter is not None)
        wait(comm.Ibcast(h, root=0))                            # control header
        lens = [v.size for v in down]
        payload = self._send.get(sum(lens))
        if payload.size:
            np.concatenate(down, out=payload)
            wait(comm.Ibcast(payload, root=0))                  # the broadcast vectors
        n_of = np.array([len(self.local)] + [len(ks) for ks in self.hosts], dtype=np.int64)
        if scatter is not None:                     # each worker's length, then the pieces
            sizes = np.array([v.size for v in scatter], dtype=np.int64)
            comm.Scatterv([sizes, n_of, _displs(n_of), MPI.INT64_T], MPI.IN_PLACE, root=0)
            counts = self._per_rank(sizes)
            comm.Scatterv([np.concatenate(scatter), counts, _displs(counts), MPI.DOUBLE],
                          MPI.IN_PLACE, root=0)
        mine = self._run_local(task_id, payload, lens,        # rank 0's own workers, while
                               scatter, evaluating)          # the worker ranks compute
        if isinstance(up, int):
            total = np.zeros(up)                     # the master's part, added in place
            for out in mine:
                total += out
            wait(comm.Ireduce(MPI.IN_PLACE, total, op=MPI.SUM, root=0))   # workers compute
            return total
        if ragged:                                   # the lengths first (8 bytes each)
            lengths = np.empty(self.K, dtype=np.int64)
            lengths[:len(mine)] = [o.size for o in mine]
            comm.Gatherv(MPI.IN_PLACE, [lengths, n_of, _displs(n_of), MPI.INT64_T], root=0)
            up = [int(n) for n in lengths]
        counts = self._per_rank(up)
        buf = np.empty(int(counts.sum()))
        if mine:
            np.concatenate(mine, out=buf[:counts[0]])
        wait(comm.Igatherv(MPI.IN_PLACE, [buf, counts, _displs(counts), MPI.DOUBLE], root=0))
        return np.split(buf, np.cumsum(up)[:-1])

    def _subset(self, task_id, down, up, scatter, evaluating, to):
        """A subset round: rank 0's own addressed workers here, the others
        point-to-point (:func:`~distnewton.runtime.p2p.subset_exchange`) while
        these compute; a sum is taken in increasing k, as the sim backend does."""
        local = {int(k) for k in self.local}
        here = [i for i, k in enumerate(to) if k in local]
        there = [i for i, k in enumerate(to) if k not in local]
        lens = [v.size for v in down]
        payload = np.concatenate(down) if lens else np.empty(0)
        by_k = {ctx.k: ctx for ctx in self.ctxs}

        def run_here():
            return self._run_local(task_id, payload, lens,
                                   None if scatter is None else [scatter[i] for i in here],
                                   evaluating, ctxs=[by_k[int(to[i])] for i in here])
        if not there:
            mine, theirs = run_here(), None
        else:
            done = {}
            theirs = subset_exchange(
                self.comm, task_id, down, up if isinstance(up, int) else [up[i] for i in there],
                None if scatter is None else [scatter[i] for i in there], evaluating,
                tuple(to[i] for i in there), self._send, self.hosts,
                between=lambda: done.setdefault("mine", run_here()))
            mine = done["mine"]
        if isinstance(up, int):
            total = np.zeros(up)
            for out in mine:
                total += out
            return total if theirs is None else total + theirs
        out = [None] * len(to)
        for i, reply in zip(here, mine):
            out[i] = reply
        for i, reply in zip(there, theirs or []):
            out[i] = reply
        return out

    def shutdown(self):
        self._header[:] = 0
        self._header[0] = OP_STOP
        wait(self.comm.Ibcast(self._header, root=0))          # the workers' serve() returns


def _displs(counts):
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)


def combine(comm, h, outs):
    """Send a worker rank's replies: their sum (reduction) or one after another
    (gather; a ragged gather sends every reply's length first)."""
    from mpi4py import MPI
    if wire.is_reduce(h):
        wait(comm.Ireduce(wire.reduced(outs), None, op=MPI.SUM, root=0))
        return
    if h[0] & RAGGED_FLAG:
        comm.Gatherv(wire.lengths(outs), None, root=0)
    wait(comm.Igatherv(wire.gathered(outs), None, root=0))


def serve(comm, shard, seed, params=None, ks=None):
    """Worker loop (ranks 1..P-1): run tasks until the master says stop.

    ``shard``: this rank's shard, or a list of them, one per logical worker
    ``ks`` (default: the one worker rank - 1).  The next full round's header
    broadcast (``Ibcast``) is posted at once and stays pending while subset
    rounds addressed to this rank come and go (point-to-point,
    :mod:`~distnewton.runtime.p2p`): :func:`wait` polls both.
    """
    from ..stopping import loaded
    loaded()                                         # a stop signal now cuts local phases
    rank = comm.Get_rank()
    shards = shard if isinstance(shard, list) else [shard]
    ks = [rank - 1] if ks is None else [int(k) for k in ks]
    ctxs = contexts(ks, shards, seed, params)
    np.seterr(over="ignore", invalid="ignore", divide="ignore")  # as the master's iterations
                                        # (distnewton.loop.quiet_overflow): a diverging run
                                        # stops as diverged, without numpy's warnings
    _, names = task_ids()
    h = wire.new_header()
    bufs = wire.Buffers()
    subset_header = header_waiting(comm)
    while True:
        full = comm.Ibcast(h, root=0)                # the master's next full round (or stop)
        while not wait(full, subset_header):         # idle until a round comes; a subset
            serve_subset_round(comm, ctxs, names, bufs)  # round first: the Ibcast stays posted
        if h[0] == OP_STOP:
            return
        lens = wire.down_lengths(h)
        payload = bufs.get(sum(lens))
        if payload.size:
            wait(comm.Ibcast(payload, root=0))
        down = wire.split(payload, lens)
        pieces = None
        if h[3]:
            sizes = np.empty(len(ctxs), np.int64)
            comm.Scatterv(None, sizes, root=0)
            scattered = np.empty(int(sizes.sum()))
            comm.Scatterv(None, scattered, root=0)
            pieces = np.split(scattered, np.cumsum(sizes)[:-1])
        inject("round", rank)
        combine(comm, h, wire.run_tasks(ctxs, names, h, down, pieces))

