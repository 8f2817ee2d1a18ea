"""The MPI side of ``distnewton run``: every rank's flow (see :mod:`distnewton.run`).

Rank 0 checks the inputs while the workers wait (:func:`check_inputs_mpi`),
sends the config and the shards (:func:`master_job`) and runs the algorithm;
ranks 1..P-1 receive their shards and serve rounds (:func:`serve_worker`).
With ``run.master_shard`` rank 0 also hosts the first block of logical
workers (:func:`~distnewton.runtime.hosting.rank_blocks`).
"""

from __future__ import annotations

from .driver import Printer, algorithm_params
from .errors import EXIT_USER, UserError
from .faults import inject
from .objectives import Shard
from .run import Job, library_line, now, run_algorithm, setup_master


def mpi_workers(cfg, comm):
    """K over MPI: ``run.workers`` logical workers, or one per worker rank."""
    ranks = comm.Get_size() - 1
    K = cfg["run"]["workers"] or ranks
    if K < ranks:
        raise UserError(f"run.workers: {K} workers but {ranks} worker ranks would idle: "
                        f"launch mpiexec -n {K + 1}, or set run.workers >= {ranks}")
    if cfg["run"]["master_shard"] is True and K <= ranks:
        raise UserError(f"run.master_shard: true needs at least as many workers as ranks: "
                        f"{K} workers on mpiexec -n {ranks + 1} (launch mpiexec -n {K}, or "
                        f"set run.workers >= {ranks + 1})")
    return K


def blocks_of(cfg, K, P):
    """Every rank's logical workers (:func:`~distnewton.runtime.hosting.rank_blocks`),
    computed alike on every rank from the broadcast config."""
    from .runtime.hosting import master_hosts, rank_blocks
    return rank_blocks(K, P, master_hosts(cfg["run"]["master_shard"], K, P))


def shards_of(cfg, problem, ks, pairs):
    """The :class:`Shard` of each logical worker in ``ks``: from ``pairs`` of
    (X, y, weights), or read from the pre-split files (``data.shards``)."""
    if cfg["data"]["shards"]:
        from .data.split import worker_shard
        pairs = [(*worker_shard(cfg, int(k)), None) for k in ks]
    return [Shard(X, y, problem.loss, problem.lam, problem.free_intercept, weights=s)
            for X, y, s in pairs]


def preload_worker(cfg):
    """Import scipy.linalg before the first round when this worker's tasks
    solve locally (the losses need only numpy)."""
    from .algorithms import ALGORITHMS
    from .linalg import preload as preload_linalg
    if ALGORITHMS[cfg["algorithm"]["name"]].local_solves:
        preload_linalg()


def start_mpi():
    """Every rank: COMM_WORLD, checked (singletons, size >= 2), abort hook installed."""
    from .runtime.mpi import check_world, comm_world, configure_wait, install_abort_hook
    comm = comm_world()
    install_abort_hook()
    check_world(comm)
    configure_wait(comm)
    return comm


def serve_worker(comm, cfg):
    """Ranks 1..K: receive the shard, serve rounds until the master stops.

    A bad input found by the master raises the same UserError here."""
    from .runtime.hosting import receive_shards
    from .runtime.mpi import abort_on_exception, serve, wait_idle
    rank = comm.Get_rank()
    preload_worker(cfg)                        # while rank 0 reads the data,
    wait_idle(comm)                            # then sleep until it is done
    status = comm.bcast(None, root=0)
    if status:
        raise UserError(status[1])
    cfg, problem = comm.bcast(None, root=0)
    try:
        inject("load", rank)
        ks = blocks_of(cfg, len(problem.sizes), comm.Get_size())[rank]
        pairs = None if cfg["data"]["shards"] else receive_shards(comm, problem.weighted)
        serve(comm, shards_of(cfg, problem, ks, pairs), cfg["run"]["seed"],
              algorithm_params(cfg), ks=ks)
    except Exception as exc:                   # noqa: BLE001 - every fault ends the job
        abort_on_exception(exc)


def check_inputs_mpi(comm, cfg, resume):
    """Rank 0, workers waiting: every input check; a UserError stops every rank
    with the same error (exit code 2), never a hang.  Returns (setup, started)."""
    from .runtime.mpi import wait_idle
    started = now()
    try:
        setup = setup_master(cfg, mpi_workers(cfg, comm), resume)
    except UserError as exc:
        wait_idle(comm)
        comm.bcast((EXIT_USER, str(exc)), root=0)
        raise
    wait_idle(comm)
    comm.bcast(0, root=0)
    return setup, started


def master_job(comm, cfg, setup, started):
    """Rank 0: send the config and the shards; the :class:`Job` on MPIRuntime."""
    from mpi4py import MPI

    from .runtime.mpi import MPIRuntime, send_shards
    comm.bcast((cfg, setup.problem), root=0)
    K = len(setup.problem.sizes)
    rt = MPIRuntime(comm, K, blocks=blocks_of(cfg, K, comm.Get_size()))
    setup_bytes = (0 if cfg["data"]["shards"]
                   else send_shards(comm, setup.X, setup.y, setup.parts, rt.hosts,
                                    setup.weights))
    if len(rt.local):                          # run.master_shard: rank 0's own block
        s = setup.weights
        pairs = None if cfg["data"]["shards"] else [
            (setup.X[setup.parts[k]], setup.y[setup.parts[k]],
             None if s is None else s[setup.parts[k]]) for k in rt.local]
        rt.host(shards_of(cfg, setup.problem, rt.local, pairs), cfg["run"]["seed"],
                algorithm_params(cfg))
    setup.X = setup.y = setup.weights = None   # rank 0 keeps no other rows
    return Job(cfg, setup, rt, started, library_line(MPI.Get_library_version),
               setup_bytes)


def solve_mpi(cfg, verbosity, resume=None):
    """Every rank: the run over MPI.  Rank 0 gets (job, outcome), workers None.

    From the shards on, any exception on any rank aborts the whole job."""
    from .runtime.mpi import abort_on_exception
    comm = start_mpi()
    if comm.Get_rank() != 0:
        serve_worker(comm, cfg)
        return None
    setup, started = check_inputs_mpi(comm, cfg, resume)
    try:
        job = master_job(comm, cfg, setup, started)
        outcome = run_algorithm(job.rt, cfg, setup, Printer(verbosity), resume, job.periodic())
        job.rt.shutdown()
    except Exception as exc:                   # noqa: BLE001
        abort_on_exception(exc)
    return job, outcome
