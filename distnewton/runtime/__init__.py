"""The communication layer: every byte between master and workers passes here.

An algorithm runs on the master and talks to its K workers only through
:meth:`Runtime.round`, one call per communication round::

    out = rt.round("giant.direction", w, g, up=d)      # w, g down; sum of d-vectors up
    blocks = rt.round("ranl.grad", x, up=[q_1, ..., q_K], scatter=masks)

A round is one master-to-workers-and-back exchange: the master broadcasts a
control header and the concatenated float64 ``down`` vectors (``Bcast``),
optionally gives each worker its own vector (``scatter``: ``Scatterv``), every
worker runs the named *task* on its shard, and the replies come back either
summed (``Reduce``, when ``up`` is the reply length) or one per worker
(``Gatherv``, when ``up`` is a list of K lengths).  Tasks are plain functions registered with
:func:`worker_task`; they receive a :class:`WorkerContext` (the shard, a
per-worker RNG, a dict for state kept across rounds) and the vectors.

Counting (star network model, documented in the README): a broadcast of b
bytes costs K*b bytes down, a scatter the sum of its pieces; a reduction of b
bytes per worker costs K*b bytes up, a gather the sum of the replies.  The
64-byte control header of each round is counted too.  Rounds done only to log
(``with rt.evaluating():``) go to separate counters and never to the
algorithm's.

Timing: every worker times its task in every algorithm round (``c_k``,
seconds of computation); the master times the whole round (``t``).
:meth:`Runtime.collect_times` fetches the workers' times since the last call
(one logging-only gather of one float per round and worker) and splits the
rounds' wall time into the compute part (``max_k c_k`` over MPI, where the
workers run in parallel; ``sum_k c_k`` in the sim backend, where they run one
after another), communication (the rest of ``t``: latency, transfer, the
reduction, waiting for a descheduled rank), and load imbalance
(``max_k c_k - mean_k c_k``, the time the average worker waits for the
slowest).

Backends: :class:`~distnewton.runtime.mpi.MPIRuntime` (rank 0 master, ranks
1..K workers) and :class:`~distnewton.runtime.sim.SimRuntime` (K workers in
one process).  Both count alike and run the same task code, so for the same
config and seed they give the same iterates up to floating-point summation
order.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

import numpy as np

HEADER_LEN = 8                       # int64 control words per round
HEADER_BYTES = HEADER_LEN * 8
MAX_DOWN = HEADER_LEN - 4            # vectors per broadcast (header: op, task, up, n, lens...)
OP_STOP, OP_REDUCE, OP_GATHER = 0, 1, 2
OP_MASK, EVAL_FLAG = 3, 4            # header word 0: op | EVAL_FLAG for logging-only rounds

TASKS: dict = {}


def worker_task(name):
    """Register ``fn(ctx, *vectors) -> np.ndarray`` as a worker task ``name``."""
    def deco(fn):
        if name in TASKS and TASKS[name] is not fn:
            raise RuntimeError(f"worker task {name!r} registered twice")
        TASKS[name] = fn
        return fn
    return deco


def task_ids():
    """Name <-> id tables, identical on every rank (sorted names)."""
    names = sorted(TASKS)
    return {n: i for i, n in enumerate(names)}, names


@dataclass
class WorkerContext:
    """What a worker task sees: its index k (0-based), shard, RNG, the
    algorithm's parameters and a dict for state kept across rounds."""

    k: int
    shard: object
    rng: np.random.Generator
    params: object = None
    state: dict = field(default_factory=dict)
    #: seconds spent in each algorithm round's task since the master last asked
    times: list = field(default_factory=list)
    #: values valid within one iteration only (never checkpointed), e.g. the
    #: point whose Hessian the next Hessian-vector-product rounds use.  The
    #: vectors a task receives live in buffers reused by later rounds: a task
    #: copies what it keeps here or in ``state``.
    scratch: dict = field(default_factory=dict)


def worker_rng(seed, k):
    """Independent, reproducible stream for worker k (SeedSequence((seed, k)))."""
    return np.random.default_rng(np.random.SeedSequence((int(seed), int(k) + 1)))


@dataclass
class Counters:
    rounds: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    seconds: float = 0.0


@dataclass
class RoundTimes:
    """Seconds of algorithm rounds since the last :meth:`Runtime.collect_times`."""

    rounds: float = 0.0       # sum of the rounds' wall time t on the master
    compute: float = 0.0      # workers' computation within them (see module docstring)
    comm: float = 0.0         # rounds - compute
    idle: float = 0.0         # sum over rounds of max_k c_k - mean_k c_k


class Runtime:
    """Master-side interface shared by the backends (see module docstring)."""

    K: int                     # number of workers
    is_master: bool = True

    def __init__(self):
        self.algo = Counters()
        self.eval = Counters()
        self._counting = self.algo
        self.ids, self.names = task_ids()
        self._round_seconds = []      # master wall time of each algorithm round

    #: how the workers' compute times combine into a round's compute part
    parallel_workers = True

    @contextlib.contextmanager
    def evaluating(self):
        """Rounds inside this block are logging-only: counted apart, timed apart."""
        prev, self._counting = self._counting, self.eval
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.eval.seconds += time.perf_counter() - t0
            self._counting = prev

    def round(self, task, *down, up, scatter=None):
        """One communication round; see the module docstring.

        down    : float64 vectors broadcast to every worker (at most 4)
        up      : an int n -> every worker replies n floats, the master gets
                  their sum; a list of K lengths -> replies gathered, returned
                  as a list of K arrays
        scatter : optional list of K float64 vectors, worker k gets scatter[k]
        """
        if len(down) > MAX_DOWN:
            raise ValueError(f"at most {MAX_DOWN} broadcast vectors per round")
        down = [np.ascontiguousarray(np.atleast_1d(v), dtype=np.float64) for v in down]
        c = self._counting
        c.rounds += 1
        c.bytes_down += self.K * (HEADER_BYTES + 8 * sum(v.size for v in down))
        if scatter is not None:
            if len(scatter) != self.K:
                raise ValueError("scatter needs one vector per worker")
            scatter = [np.ascontiguousarray(np.atleast_1d(v), dtype=np.float64) for v in scatter]
            c.bytes_down += 8 * self.K + 8 * sum(v.size for v in scatter)
        if isinstance(up, (int, np.integer)):
            c.bytes_up += self.K * 8 * int(up)
        else:
            up = [int(n) for n in up]
            if len(up) != self.K:
                raise ValueError("up needs one length per worker")
            c.bytes_up += 8 * sum(up)
        evaluating = c is self.eval
        t0 = time.perf_counter()
        out = self._exchange(self.ids[task], down, up, scatter, evaluating)
        if not evaluating:
            self._round_seconds.append(time.perf_counter() - t0)
        return out

    def collect_times(self) -> RoundTimes:
        """Split the algorithm rounds since the last call into compute, comm and idle.

        One logging-only gather (``runtime.times``): each worker replies the
        seconds its task took in each of those rounds.
        """
        r = len(self._round_seconds)
        if r == 0:
            return RoundTimes()
        with self.evaluating():
            c = np.array(self.round("runtime.times", [float(r)], up=[r] * self.K))   # K x r
        t = np.array(self._round_seconds)
        self._round_seconds = []
        work = c.max(axis=0) if self.parallel_workers else c.sum(axis=0)
        work = np.minimum(work, t)
        return RoundTimes(rounds=float(t.sum()), compute=float(work.sum()),
                          comm=float((t - work).sum()),
                          idle=float((c.max(axis=0) - c.mean(axis=0)).sum()))

    # implemented by the backends
    def _exchange(self, task_id, down, up, scatter, evaluating):
        """Do the exchange; ``up`` is an int (sum) or a list (gather);
        ``evaluating``: a logging-only round (the workers do not time it)."""
        raise NotImplementedError

    def shutdown(self):
        pass


def run_task(ctx, names, task_id, down, scattered, evaluating=False):
    """Worker side of a round: call the task, return a contiguous float64 reply.

    The task's seconds are appended to ``ctx.times`` for algorithm rounds.
    """
    args = list(down) + ([scattered] if scattered is not None else [])
    t0 = time.perf_counter()
    out = TASKS[names[task_id]](ctx, *args)
    out = np.ascontiguousarray(np.atleast_1d(out), dtype=np.float64)
    if not evaluating:
        ctx.times.append(time.perf_counter() - t0)
    return out


@worker_task("runtime.times")
def _times(ctx, r):
    """The seconds of the last r algorithm rounds (see :meth:`Runtime.collect_times`)."""
    r = int(r[0])
    out = np.zeros(r)
    got = ctx.times[-r:]
    out[r - len(got):] = got
    ctx.times.clear()
    return out
