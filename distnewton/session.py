"""A run, assembled in one place: :class:`Session`.

From a resolved config (:mod:`distnewton.config`) a session builds the
problem (:mod:`distnewton.ingest`), the runtime with its shards and worker
contexts (sim, or MPI over :mod:`distnewton.runtime`), runs the loop
(:class:`~distnewton.loop.Loop`, one per class for one-vs-rest) with its
monitors (:mod:`distnewton.monitors`) and writes the result file
(:mod:`distnewton.io`).  ``distnewton run`` (:func:`distnewton.cli.execute`),
:func:`distnewton.solve`, the scikit-learn estimators, the benchmarks and the
tests all run through it::

    session = Session.open(cfg, verbosity=1)     # None on an MPI worker rank
    outcome = session.run()                       # an io.record.Outcome
    code = session.write(outcome)                 # the HDF5 file; exit code

MPI flow (every rank runs :meth:`Session.open`):

1. every rank reads and validates the config (identical errors everywhere);
2. rank 0 checks the output path and reads, maps and partitions the data
   while the workers wait; it broadcasts a status word so that a bad input
   ends every rank with exit code 2 and one message, never a hang;
3. rank 0 broadcasts the resolved config and the problem sizes and scatters
   the CSR shards (only the shard's rows stay on a worker; with
   ``data.shards`` each worker reads its own part);
4. workers serve rounds until the master sends stop (and return None); the
   master runs the loop, then writes the file.  From the shards on, any
   exception on any rank aborts the whole job (``MPI_Abort``) after printing
   it once, except a failed result write: the workers are stopped by then, and
   :meth:`Session.write` saves a fallback file and returns exit code 4.
"""

from __future__ import annotations

import warnings

from .algorithms import ALGORITHMS
from .config import SIM_WORKERS
from .errors import EXIT_OK, EXIT_USER, UserError, echo, reason
from .faults import inject
from . import ingest_parallel, shares, standardize
from .ingest import worker_shard
from .io import claim as claims
from .io.checkpoint import write_checkpoint
from .io.fallback import salvage
from .io.provenance import library_line, model_attributes, now, root_attributes
from .io.record import Result
from .io.schema import clean_attr, clean_text, column_description
from .io.write import write_result
from .loop import Loop, algorithm_params
from .monitors import CheckpointWriter, LinePrinter
from .multiclass import drive_ovr
from .multinomial import (classes_of, features_of, is_multinomial, run_multinomial,
                          softmax_shards)
from .objectives import Shard
from .runtime import hosting
from .runtime.sim import SimRuntime
from .session_checks import check_inputs, check_output, check_setup
from .summary import conclude, summary_line


def pick_backend(backend):
    """``auto`` -> ``mpi`` when a launcher (mpiexec, srun) started us, else ``sim``."""
    if backend == "auto":
        from .runtime.mpi import under_launcher
        return "mpi" if under_launcher() else "sim"
    return backend


def build_shards(problem, pieces):
    """The :class:`~distnewton.objectives.Shard` (multinomial: ``SoftmaxShard``) of each piece."""
    if classes_of(problem):
        return softmax_shards(problem, pieces)
    return [Shard(X, y, problem.loss, problem.lam, problem.free_intercept, weights=s)
            for X, y, s in pieces]


def setup_pieces(setup, ks):
    """(X, y, weights) of logical workers ``ks`` from the master's Setup."""
    s = setup.weights
    return [(setup.X[setup.parts[k]], setup.y[setup.parts[k]],
             None if s is None else s[setup.parts[k]]) for k in ks]


class Session:
    """One run on the master: config, problem, runtime, monitors (see the module
    docstring).  Build it with :meth:`open`."""

    def __init__(self, cfg, setup, rt, *, started, verbosity=0, resume=None, monitors=(),
                 mpi_library="none (sim backend)", setup_bytes=0):
        self.cfg, self.setup, self.rt = cfg, setup, rt
        self.started, self.verbosity, self.resume = started, verbosity, resume
        self.mpi_library, self.setup_bytes = mpi_library, setup_bytes
        self.sigma, self.standardize_bytes = None, 0     # model.standardize's round
        self.printer = LinePrinter(verbosity)
        self.monitors = [self.printer, *monitors]
        if cfg["output"]["path"] is not None:
            self.monitors.append(CheckpointWriter(lambda o: self.write(o, final=False)))

    @property
    def problem(self):
        return self.setup.problem

    # -- assembly ---------------------------------------------------------------
    @classmethod
    def open(cls, cfg, *, verbosity=0, resume=None, arrays=None, monitors=(), setup=None):
        """The master's session for a resolved config; None on an MPI worker rank
        (which has served the whole run when this returns).

        ``arrays``: (X, y[, weights]) in memory instead of ``data.train`` (sim);
        ``setup``: a :class:`~distnewton.problem.Setup` prepared before for the
        same data and workers (sim; benchmarks reuse one)."""
        cfg["run"]["backend"] = pick_backend(cfg["run"]["backend"])
        if cfg["run"]["backend"] == "sim":
            started = now()
            setup = setup or check_inputs(cfg, cfg["run"]["workers"] or SIM_WORKERS,
                                          resume, arrays)
            with claims.released_on_error(cfg["output"]["path"]):
                rt = SimRuntime(build_shards(setup.problem, setup_pieces(setup, range(len(
                    setup.parts)))), cfg["run"]["seed"], algorithm_params(cfg))
            return standardize.setup(cls(cfg, setup, rt, started=started, verbosity=verbosity,
                                         resume=resume, monitors=monitors))
        return standardize.setup(open_mpi(cls, cfg, verbosity, resume, monitors))

    # -- running ------------------------------------------------------------------
    def loop(self, test=None, resume=None, w0=None, monitors=None):
        """A :class:`~distnewton.loop.Loop` of the configured algorithm on this runtime."""
        return Loop(self.rt, self.cfg, self.problem, test,
                    self.monitors if monitors is None else monitors, w0=w0,
                    validation=self.setup.validation)

    def run(self):
        """Run the configured algorithm (one run, or one per class for ovr): the
        :class:`~distnewton.io.record.Outcome`.  Over MPI the workers are then
        told to stop, and any exception aborts the whole job."""
        if self.rt.backend == "sim":
            with claims.released_on_error(self.cfg["output"]["path"]):
                return self._run()
        from .runtime.mpi import abort_on_exception
        try:
            outcome = self._run()
            self.rt.shutdown()
        except Exception as exc:                   # noqa: BLE001 - every fault ends the job
            abort_on_exception(exc)
        return outcome

    def _run(self):
        if self.cfg["model"]["multiclass"] == "ovr":
            return drive_ovr(self)
        if is_multinomial(self.cfg):                     # one softmax run
            return run_multinomial(self)
        return self.loop(self.setup.test, w0=self.setup.w0).iterate(self.resume)

    # -- results -------------------------------------------------------------------
    def attrs(self, outcome, into=None):
        """The result file's root attributes for ``outcome`` (filled into ``into``;
        an ovr outcome adds its per-class attributes)."""
        attrs = root_attributes({} if into is None else into, self.cfg, self.setup, self.rt,
                                outcome.status, outcome.message, self.started,
                                self.mpi_library, self.setup_bytes)
        attrs.update(getattr(outcome, "attrs", {}))
        attrs.update(standardize.attributes(self))
        return attrs

    def write_file(self, path, attrs, outcome):
        """Write the HDF5 result of ``outcome`` (with /checkpoint when it carries one)."""
        inject("write", 0)
        extra = None
        if outcome.state is not None:
            extra = lambda f: write_checkpoint(f, outcome.alg, *outcome.state)  # noqa: E731
        extra = standardize.and_sigma(extra, self.sigma)
        write_result(path, attrs, outcome.history, outcome.w,
                     column_docs=column_docs(outcome.alg), extra=extra,
                     model_attrs=model_attributes(self.cfg, features_of(self.problem)))

    def write(self, outcome, final=True):
        """Write the result file, print the summary line at any verbosity; the exit
        code (3 for a stopped run, 5 for one that did not converge under
        ``run.require_converged``: :func:`distnewton.summary.conclude`).  A failed
        final write saves the model and history in a
        fallback file and returns 4 (:func:`distnewton.io.fallback.salvage`); a
        failed periodic checkpoint (``final=False``) is a warning."""
        path, hist, attrs = self.cfg["output"]["path"], outcome.history, {}
        try:
            self.attrs(outcome, into=attrs)
            self.write_file(path, attrs, outcome)
        except Exception as exc:                   # noqa: BLE001 - never lose a finished run
            if not final:
                echo(f"distnewton: warning: checkpoint at iteration {hist.last('iteration')} "
                     f"not written to {path}: {reason(exc)}; the run goes on")
                return EXIT_OK
            return salvage(path, attrs, hist, outcome.w, column_docs(outcome.alg), exc,
                           self.verbosity)
        finally:
            if final:
                claims.release(path)
        if not final:
            return EXIT_OK
        return conclude(outcome, path, self.cfg["run"].get("require_converged", False))

    def result(self, outcome):
        """The :class:`~distnewton.io.record.Result` (the Python API), written to
        ``output.path`` when set (a failed write is a warning: the Result holds
        the model and history)."""
        attrs = self.attrs(outcome)
        path = self.cfg["output"]["path"]
        if path is not None:
            try:
                self.write_file(path, attrs, outcome)
            except Exception as exc:               # noqa: BLE001 - the Result still holds it
                warnings.warn(f"distnewton: result not written to {path}: {reason(exc)}; "
                              "the returned Result holds the model and history "
                              "(Result.save writes them)", RuntimeWarning, stacklevel=4)
                path = None
            finally:
                claims.release(self.cfg["output"]["path"])
        if self.verbosity > 0:
            echo(summary_line(outcome, path), err=False)
        attrs = {clean_text(k): clean_attr(v) for k, v in attrs.items()}
        return Result.build(attrs, outcome.history.arrays(), outcome.w, path)


def column_docs(alg):
    """What each of the algorithm's own history columns holds."""
    return {k: column_description(k) for k in type(alg).columns}


def worker_pieces(cfg, problem, ks, received):
    """A worker's (X, y, weights) pieces: ``received`` from the master, or read
    from its own parts of ``data.shards``."""
    if cfg["data"]["shards"]:
        return [(*worker_shard(cfg, int(k)), None) for k in ks]
    return received


# -- the MPI backend: every rank ---------------------------------------------------
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
    return hosting.rank_blocks(K, P, hosting.master_hosts(cfg["run"]["master_shard"], K, P))


def open_mpi(cls, cfg, verbosity, resume, monitors):
    """:meth:`Session.open` over MPI: rank 0's session; None on the workers."""
    from .runtime import mpi
    comm = mpi.comm_world()
    mpi.install_abort_hook()
    mpi.check_world(comm)
    mpi.configure_wait(comm)
    parallel = ingest_parallel.applies(cfg) if comm.Get_rank() == 0 else None
    if comm.bcast(parallel, root=0):           # rank 0 decides for all: one path
        return open_mpi_parallel(cls, comm, cfg, verbosity, resume, monitors)
    if comm.Get_rank() != 0:
        serve_worker(comm, cfg)
        return None
    started = now()
    try:                                       # every input check, the workers waiting
        setup = check_inputs(cfg, mpi_workers(cfg, comm), resume)
    except UserError as exc:                   # the same error on every rank: exit 2
        mpi.wait_idle(comm)
        comm.bcast((EXIT_USER, str(exc)), root=0)
        raise
    mpi.wait_idle(comm)
    comm.bcast(0, root=0)
    try:
        return master_session(cls, comm, cfg, setup, started, verbosity, resume, monitors)
    except shares.Agreed:                      # every rank raised it: exit 2 together
        raise
    except Exception as exc:                   # noqa: BLE001 - every fault ends the job
        mpi.abort_on_exception(exc)


def open_mpi_parallel(cls, comm, cfg, verbosity, resume, monitors):
    """:meth:`Session.open` when every rank reads its own part of the file
    (:mod:`distnewton.ingest_parallel`); input errors are agreed on by all ranks."""
    from mpi4py import MPI

    from .runtime.mpi import MPIRuntime, abort_on_exception, serve
    rank, P, started = comm.Get_rank(), comm.Get_size(), now()
    shares.agree(comm, lambda: check_output(cfg) if rank == 0 else None)
    K = mpi_workers(cfg, comm)
    blocks = blocks_of(cfg, K, P)
    inject("load", rank)
    setup, problem, pieces, setup_bytes = ingest_parallel.ingest(comm, cfg, K, blocks)
    setup = shares.agree(comm, lambda: check_setup(cfg, setup, K, resume)
                                  if rank == 0 else None)
    try:
        if rank != 0:
            serve(comm, build_shards(problem, pieces), cfg["run"]["seed"],
                  algorithm_params(cfg), ks=blocks[rank])
            return None
        rt = MPIRuntime(comm, K, blocks=blocks)
        if len(rt.local):
            rt.host(build_shards(problem, pieces), cfg["run"]["seed"], algorithm_params(cfg))
        return cls(cfg, setup, rt, started=started, verbosity=verbosity, resume=resume,
                   monitors=monitors, mpi_library=library_line(MPI.Get_library_version),
                   setup_bytes=setup_bytes)
    except Exception as exc:                   # noqa: BLE001 - every fault ends the job
        abort_on_exception(exc)


def master_session(cls, comm, cfg, setup, started, verbosity, resume, monitors):
    """Rank 0: send the config and the shards; the Session on an MPIRuntime."""
    from mpi4py import MPI

    from .runtime.mpi import MPIRuntime
    comm.bcast((cfg, setup.problem), root=0)
    K = len(setup.problem.sizes)
    rt = MPIRuntime(comm, K, blocks=blocks_of(cfg, K, comm.Get_size()))
    shards = cfg["data"]["shards"]
    setup_bytes = 0 if shards else hosting.send_shards(comm, setup.X, setup.y, setup.parts,
                                                       rt.hosts, setup.weights)
    own = own_shards(comm, cfg, setup.problem, rt.local,
                     None if shards or not len(rt.local) else setup_pieces(setup, rt.local))
    if own is not None:                        # run.master_shard: rank 0's own block
        rt.host(own, cfg["run"]["seed"], algorithm_params(cfg))
    setup.X = setup.y = setup.weights = None   # rank 0 keeps no other rows
    return cls(cfg, setup, rt, started=started, verbosity=verbosity, resume=resume,
               monitors=monitors, mpi_library=library_line(MPI.Get_library_version),
               setup_bytes=setup_bytes)


def serve_worker(comm, cfg):
    """Ranks 1..P-1: receive the shard, serve rounds until the master stops.
    A bad input found by the master raises the same UserError here."""
    from .linalg import preload as preload_linalg
    from .runtime.mpi import abort_on_exception, serve, wait_idle
    rank = comm.Get_rank()
    if ALGORITHMS[cfg["algorithm"]["name"]].local_solves:
        preload_linalg()                       # while rank 0 reads the data,
    wait_idle(comm)                            # then sleep until it is done
    status = comm.bcast(None, root=0)
    if status:
        raise UserError(status[1])
    cfg, problem = comm.bcast(None, root=0)
    try:
        inject("load", rank)
        ks = blocks_of(cfg, len(problem.sizes), comm.Get_size())[rank]
        received = None if cfg["data"]["shards"] else hosting.receive_shards(
            comm, problem.weighted)
        serve(comm, own_shards(comm, cfg, problem, ks, received),
              cfg["run"]["seed"], algorithm_params(cfg), ks=ks)
    except shares.Agreed:                      # every rank raised it: exit 2 together
        raise
    except Exception as exc:                   # noqa: BLE001 - every fault ends the job
        abort_on_exception(exc)


def own_shards(comm, cfg, problem, ks, received):
    """The shards of this rank's workers ``ks`` (None for none).  Parts of
    ``data.shards`` are read here, on each rank: a bad part (a value that
    overflows, a damaged file) is agreed on, so every rank stops with its one
    line and exit code 2 (:func:`~distnewton.shares.agree`; collective)."""
    def build():
        return build_shards(problem, worker_pieces(cfg, problem, ks, received)) \
            if len(ks) else None
    return shares.agree(comm, build) if cfg["data"]["shards"] else build()
