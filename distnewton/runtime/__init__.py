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

A *subset round* goes to some workers only::

    out = rt.round("task", w, up=d, to=[0, 2])     # workers 0 and 2: sum of 2 replies

``to`` lists 0-based worker indices (sorted, unique; None or all K: a full
round).  The other workers take no part and run nothing; over MPI the round is
point-to-point messages to the addressed ranks (:mod:`~distnewton.runtime.p2p`),
no collective.  ``up`` as a list and ``scatter`` then have one entry per
addressed worker, and a gather returns one reply per addressed worker.

Counting (star network model, documented in docs/guide/result-format.md): a broadcast of b
bytes costs K*b bytes down, a scatter the sum of its pieces plus one 8-byte
count per worker; a reduction of b bytes per worker costs K*b bytes up, a
gather the sum of the replies, a ragged gather (replies whose lengths the
master does not know: ``up=[RAGGED] * K``) the replies plus one 8-byte length
per worker.  The 64-byte control header of each round is
counted too.  A subset round to m workers costs m*(64 + b) down, the scatter
pieces (their lengths ride in the per-worker headers: no counts), and m*b
(reduce) or the replies (gather) up.  Rounds done only to log
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
slowest).  Max, sum and mean run over the workers a round addressed: a
worker a subset round left out has no time for it.

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
RAGGED_FLAG = 8                      # | RAGGED_FLAG: a gather of replies of any length
#: ``up=[RAGGED] * m``: every addressed worker replies as many floats as it likes
RAGGED = None

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


def contexts(ks, shards, seed, params=None):
    """The :class:`WorkerContext` of each logical worker ``k`` in ``ks`` with its
    shard: what every backend's workers run in (sim: all K in one process;
    MPI: each rank's block)."""
    return [WorkerContext(int(k), s, worker_rng(seed, k), params) for k, s in zip(ks, shards)]


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
    #: seconds a round waits beyond the workers' compute: what ``solver: auto`` weighs
    #: against forming a Hessian.  One value for every backend (a shared-memory MPI
    #: round on a node whose ranks outnumber its cores, measured 0.4-0.8 ms), so that
    #: ``sim`` and ``mpi`` and any machine choose the same solver and so give the same
    #: iterates; the driver adds ``run.latency_model.per_round`` to
    #: ``modelled_latency`` when a network is modelled
    round_latency = 5e-4
    modelled_latency = 0.0

    def __init__(self):
        self.algo = Counters()
        self.eval = Counters()
        self.setup = Counters()       # setup rounds (model.standardize): never reset
        self._counting = self.algo
        self.ids, self.names = task_ids()
        self._round_seconds = []      # master wall time of each algorithm round
        self._round_to = []           # and its addressed workers (None: all)

    def reset_counters(self):
        """Start counting rounds and bytes from zero (a new run on the same
        workers: one class of ``model.multiclass: ovr``)."""
        self.algo, self.eval = Counters(), Counters()
        self._counting = self.algo

    @contextlib.contextmanager
    def setting_up(self):
        """Rounds inside this block prepare the problem before the algorithm starts
        (``model.standardize``'s column moments): counted in ``self.setup``, never in
        the algorithm's or the logging counters, and not timed by the workers."""
        prev, self._counting = self._counting, self.setup
        try:
            yield
        finally:
            self._counting = prev

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

    def round(self, task, *down, up, scatter=None, to=None):
        """One communication round; see the module docstring.

        down    : float64 vectors broadcast to every addressed worker (at most 4)
        up      : an integer n -> every addressed worker replies n floats, the
                  master gets their sum; a list of m lengths (one per addressed
                  worker) -> replies gathered, returned as a list of m arrays;
                  ``[RAGGED] * m`` -> gathered replies of any length, each
                  preceded by its length (one int64 word, counted)
        scatter : optional list of m float64 vectors, the i-th addressed worker
                  gets scatter[i]
        to      : None (all K workers, m = K) or sorted unique 0-based worker
                  indices (m = len(to)): a subset round
        """
        if len(down) > MAX_DOWN:
            raise ValueError(f"at most {MAX_DOWN} broadcast vectors per round")
        if task not in self.ids:
            raise KeyError(f"no worker task {task!r} (registered with @worker_task in a module "
                           "every rank imports, before the runtime starts)")
        to = addressed(to, self.K)
        m = self.K if to is None else len(to)
        down = [np.ascontiguousarray(np.atleast_1d(v), dtype=np.float64) for v in down]
        if scatter is not None:
            if len(scatter) != m:
                raise ValueError("scatter needs one vector per addressed worker")
            scatter = [np.ascontiguousarray(np.atleast_1d(v), dtype=np.float64) for v in scatter]
        if isinstance(up, (int, np.integer)):
            up = int(up)                 # a numpy integer too (the backends test for int)
        elif all(n is RAGGED for n in up):
            up = [RAGGED] * len(up)
            if len(up) != m:
                raise ValueError("up needs one length per addressed worker")
        else:
            up = [int(n) for n in up]
            if len(up) != m:
                raise ValueError("up needs one length per addressed worker")
        ragged = isinstance(up, list) and up and up[0] is RAGGED
        c = self._counting               # checked: now count it
        c.rounds += 1
        c.bytes_down += m * (HEADER_BYTES + 8 * sum(v.size for v in down))
        if scatter is not None:
            c.bytes_down += (8 * m if to is None else 0) + 8 * sum(v.size for v in scatter)
        if not ragged:
            c.bytes_up += m * 8 * up if isinstance(up, int) else 8 * sum(up)
        evaluating = c is not self.algo      # logging or setup: workers do not time it
        t0 = time.perf_counter()
        out = self._exchange(self.ids[task], down, up, scatter, evaluating, to)
        if ragged:                       # a length word and the reply, per worker
            c.bytes_up += 8 * m + 8 * sum(r.size for r in out)
        if not evaluating:
            self._round_seconds.append(time.perf_counter() - t0)
            self._round_to.append(to)
        return out

    def collect_times(self) -> RoundTimes:
        """Split the algorithm rounds since the last call into compute, comm and idle.

        One logging-only gather (``runtime.times``): each worker replies the
        seconds its task took in each of those rounds it took part in (after
        subset rounds, each worker's count is scattered to it: 16 bytes more
        per worker).  ``c[k, j]`` is worker k's time in round j; the statistics
        of round j run over the workers it addressed.  With logical workers
        (``hosts``: several per MPI rank, run one after another) they run over
        the ranks, a rank's time being the sum of its workers'.
        """
        r = len(self._round_seconds)
        if r == 0:
            return RoundTimes()
        took_part = np.ones((self.K, r), dtype=bool)         # K x r: worker k in round j
        for j, to in enumerate(self._round_to):
            if to is not None:
                took_part[:, j] = False
                took_part[list(to), j] = True
        counts = took_part.sum(axis=1)
        c = np.zeros((self.K, r))
        with self.evaluating():
            if counts.min() == r:                            # full rounds only
                c[:] = self.round("runtime.times", [float(r)], up=[r] * self.K)
            else:
                replies = self.round("runtime.times", [float(r)], up=counts,
                                     scatter=[[float(n)] for n in counts])
                for k, reply in enumerate(replies):
                    c[k, took_part[k]] = reply
        t = np.array(self._round_seconds)
        self._round_seconds, self._round_to = [], []
        hosts = getattr(self, "rank_hosts", None)
        if hosts is not None and any(len(ks) > 1 for ks in hosts):   # logical workers:
            c = np.stack([c[ks].sum(axis=0) for ks in hosts])        # a rank runs its
            took_part = np.stack([took_part[ks].any(axis=0) for ks in hosts])  # in turn
        slowest = np.where(took_part, c, -np.inf).max(axis=0)
        total = c.sum(axis=0)                                # c is 0 where k took no part
        work = slowest if self.parallel_workers else total
        work = np.minimum(work, t)
        return RoundTimes(rounds=float(t.sum()), compute=float(work.sum()),
                          comm=float((t - work).sum()),
                          idle=float((slowest - total / took_part.sum(axis=0)).sum()))

    # implemented by the backends
    def _exchange(self, task_id, down, up, scatter, evaluating, to):
        """Do the exchange; ``up`` is an int (sum) or a list (gather);
        ``evaluating``: a logging-only round (the workers do not time it);
        ``to``: None (all workers) or the addressed workers (a tuple)."""
        raise NotImplementedError

    def shutdown(self):
        pass


def addressed(to, K):
    """``to`` checked: None for all K workers, else a tuple of sorted unique indices.

    Numpy integers are accepted; ``to`` naming every worker is a full round.
    """
    if to is None:
        return None
    import operator
    to = tuple(operator.index(k) for k in to)
    if not to:
        raise ValueError("to: a round needs at least one worker")
    if any(b <= a for a, b in zip(to, to[1:])):
        raise ValueError(f"to: worker indices must be sorted and unique, got {list(to)}")
    if to[0] < 0 or to[-1] >= K:
        raise ValueError(f"to: worker indices must be in 0..{K - 1}, got {list(to)}")
    return None if len(to) == K else to


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
def _times(ctx, r, count=None):
    """The seconds of this worker's last algorithm rounds (see
    :meth:`Runtime.collect_times`): the last r, or ``count`` (scattered) when
    subset rounds left this worker out of some."""
    r = int(r[0] if count is None else count[0])
    out = np.zeros(r)
    got = ctx.times[-r:] if r else []
    out[r - len(got):] = got
    ctx.times.clear()
    return out
