"""``distnewton run``: resolve the config, start the backend, write the result.

:func:`solve_sim` and :func:`solve_mpi` (:mod:`distnewton.mpi_run`) run a
resolved config and return the master's :class:`Job` and :class:`~distnewton.record.Outcome`; :func:`run_sim`
and :func:`run_mpi` (the command line) then write the file with :func:`finish`,
and :func:`distnewton.solve` turns them into a :class:`~distnewton.record.Result`.

MPI flow (every rank runs :func:`execute`):

1. every rank reads and validates the config (identical errors everywhere);
2. rank 0 checks the output path and reads, maps and partitions the data;
   it broadcasts a status word so that a bad input ends every rank with exit
   code 2 and one message (printed by rank 0), never a hang;
3. rank 0 broadcasts the resolved config and the problem sizes, and scatters
   the CSR shards (only the shard's rows stay on a worker);
4. workers serve rounds until the master sends stop; the master runs the
   algorithm, then writes the HDF5 file.  From here on any exception on any
   rank aborts the whole job (``MPI_Abort``) after printing it once, except a
   failed result write: the workers are stopped by then, and :func:`finish`
   saves a fallback file (:mod:`distnewton.salvage`) and returns exit code 4.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import socket
import sys
from dataclasses import dataclass

import numpy as np

from . import SCHEMA_VERSION, __version__
from .config import dump, load_yaml, resolve
from .driver import Printer, algorithm_params, drive, prepare
from .errors import EXIT_OK, EXIT_STOPPED, UserError
from .faults import inject
from .objectives import Shard
from .results import check_output_path, clean_text, write_result
from .salvage import echo, reason, salvage


def now():
    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def execute(config_path, overrides, verbosity=1, resume_path=None) -> int:
    """Run a config (or continue the run checkpointed in ``resume_path``)."""
    from .stopping import install
    install()                                  # SIGTERM/SIGUSR1: stop cleanly
    resume = None
    if resume_path is not None:
        import yaml

        from .checkpoint import read_checkpoint
        resume = read_checkpoint(resume_path)
        raw = yaml.safe_load(resume.config)
        raw["run"]["backend"] = "auto"
        raw["output"] = {"path": str(resume_path), "overwrite": True}
        cfg = resolve(raw, overrides, source=str(resume_path))
    else:
        cfg = resolve(load_yaml(config_path), overrides, source=config_path)
    cfg["run"]["backend"] = backend = pick_backend(cfg["run"]["backend"])
    if cfg["output"]["path"] is None:
        stem = os.path.splitext(os.path.basename(config_path))[0]
        cfg["output"]["path"] = os.path.join(
            "results", f"{stem}-{dt.datetime.now():%Y%m%d-%H%M%S}.h5")
    pin_blas_threads(cfg["run"]["blas_threads"])
    if backend == "sim":
        return run_sim(cfg, verbosity, resume)
    return run_mpi(cfg, verbosity, resume)


def pick_backend(backend):
    """``auto`` -> ``mpi`` when a launcher (mpiexec, srun) started us, else ``sim``."""
    if backend == "auto":
        from .runtime.mpi import under_launcher
        return "mpi" if under_launcher() else "sim"
    return backend


@dataclass
class Job:
    """A run set up on the master: everything :func:`finish` needs beside the outcome."""

    cfg: dict
    setup: object                  # :class:`~distnewton.problem.Setup`
    rt: object                     # the master's runtime
    started: str
    mpi_library: str = "none (sim backend)"
    setup_bytes: int = 0

    def attrs(self, outcome, into=None):
        """The result file's root attributes for ``outcome`` (filled into ``into``;
        an ovr outcome adds its per-class attributes)."""
        attrs = fill_attrs({} if into is None else into, self.cfg, self.setup, self.rt,
                           outcome.status, outcome.message, self.started, self.mpi_library,
                           self.setup_bytes)
        attrs.update(getattr(outcome, "attrs", {}))
        return attrs

    def periodic(self):
        """drive()'s ``checkpoint`` callback: the result file so far (None: no file)."""
        if self.cfg["output"]["path"] is None:
            return None
        return lambda outcome: finish(self, outcome, 0, final=False)


def setup_master(cfg, K, resume, arrays=None):
    """Master, before any worker computes: every input check (UserError -> exit 2)."""
    from .algorithms import ALGORITHMS
    from .checkpoint import workers_are_stateless
    if cfg["output"]["path"] is not None:
        check_output_path(cfg["output"]["path"], cfg["output"]["overwrite"])
    inject("load", 0)
    setup = prepare(cfg, K, arrays)
    if cfg["model"]["w0"] is not None and resume is None:
        from .model import load_w0
        setup.w0 = load_w0(cfg["model"]["w0"], setup.problem.d)
    name = cfg["algorithm"]["name"]
    params = {k: v for k, v in cfg["algorithm"].items() if k != "name"}
    ALGORITHMS[name].validate(params, setup.problem, cfg["run"]["seed"])
    if resume is not None and int(resume.counters["n_workers"]) != K \
            and not workers_are_stateless(resume.images, cfg["run"]["seed"]):
        raise UserError(f"{resume.path}: {name} keeps per-worker state: resume with "
                        f"{int(resume.counters['n_workers'])} workers, not {K}")
    return setup


#: workers of the sim backend when run.workers is not set
SIM_WORKERS = 4


def make_shards(setup):
    p = setup.problem
    s = setup.weights
    return [Shard(setup.X[idx], setup.y[idx], p.loss, p.lam, p.free_intercept,
                  weights=None if s is None else s[idx]) for idx in setup.parts]


def solve_sim(cfg, verbosity, resume=None, arrays=None):
    """The run with ``run.workers`` workers simulated in this process: (job, outcome).
    ``arrays``: (X, y) in memory instead of ``data.train`` (the Python API)."""
    from .runtime.sim import SimRuntime
    started = now()
    setup = setup_master(cfg, cfg["run"]["workers"] or SIM_WORKERS, resume, arrays)
    rt = SimRuntime(make_shards(setup), cfg["run"]["seed"], algorithm_params(cfg))
    job = Job(cfg, setup, rt, started)
    return job, run_algorithm(rt, cfg, setup, Printer(verbosity), resume, job.periodic())


def run_algorithm(rt, cfg, setup, printer, resume, periodic):
    """The configured algorithm on ``rt``: one run, or one per class (ovr)."""
    if cfg["model"]["multiclass"] == "ovr":
        from .multiclass import drive_ovr
        return drive_ovr(rt, cfg, setup, printer, drive)
    return drive(rt, cfg, setup.problem, setup.test, printer, resume, periodic, w0=setup.w0)


def run_sim(cfg, verbosity, resume=None):
    job, outcome = solve_sim(cfg, verbosity, resume)
    return finish(job, outcome, verbosity)


BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


def pin_blas_threads(n):
    """``run.blas_threads`` BLAS threads in this rank, now and later.

    threadpoolctl limits the BLAS libraries already loaded (numpy's); the
    environment variables cover the ones loaded later (scipy.linalg's own
    OpenBLAS is imported lazily, after this).  Without both, a 300 x 300
    Cholesky on an oversubscribed 2-core machine took 120 ms instead of 2.
    """
    for var in BLAS_THREAD_VARS:
        os.environ[var] = str(n)
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=n)


@contextlib.contextmanager
def blas_threads(n):
    """:func:`pin_blas_threads` for the duration of a block (the Python API): the
    environment variables and the loaded libraries' limits are restored after."""
    from threadpoolctl import threadpool_limits
    saved = {var: os.environ.get(var) for var in BLAS_THREAD_VARS}
    os.environ.update({var: str(n) for var in BLAS_THREAD_VARS})
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def solve_mpi(cfg, verbosity, resume=None):
    """Every rank: the run over MPI (:mod:`distnewton.mpi_run`); rank 0 gets
    (job, outcome), workers None."""
    from .mpi_run import solve_mpi as solve
    return solve(cfg, verbosity, resume)


def run_mpi(cfg, verbosity, resume=None):
    done = solve_mpi(cfg, verbosity, resume)
    if done is None:
        return EXIT_OK
    try:
        return finish(*done, verbosity)
    except Exception as exc:                   # noqa: BLE001
        from .runtime.mpi import abort_on_exception
        abort_on_exception(exc)


def library_line(get_version) -> str:
    """The first non-empty line of ``get_version()`` (``MPI.Get_library_version``),
    cleaned: Open MPI's is one line ending in a NUL; "unknown" if it fails."""
    try:
        lines = [line.strip() for line in clean_text(get_version()).splitlines()]
    except Exception:                          # noqa: BLE001 - provenance only
        return "unknown"
    return next((line for line in lines if line), "unknown")


def provenance() -> dict:
    """Where and how the run ran; an item that cannot be found says why."""
    import scipy
    items = {"argv": lambda: " ".join(sys.argv), "hostname": socket.gethostname,
             "python": platform.python_version, "numpy": lambda: np.__version__,
             "scipy": lambda: scipy.__version__}
    out = {}
    for key, get in items.items():
        try:
            out[key] = get()
        except Exception as exc:               # noqa: BLE001 - never lose a run over it
            out[key] = f"unknown ({reason(exc)})"
    return out


def fill_attrs(attrs, cfg, setup, rt, status, message, started, mpi_library, setup_bytes):
    """The root attributes, added to ``attrs`` a group at a time (what was filled
    before a failure still reaches the fallback file)."""
    p = setup.problem
    attrs.update({
        "schema_version": SCHEMA_VERSION, "distnewton_version": __version__,
        "algorithm": cfg["algorithm"]["name"], "loss": p.loss, "lambda": p.lam,
        "n_workers": rt.K, "backend": cfg["run"]["backend"], "dataset": setup.dataset,
        "master_shard": bool(len(getattr(rt, "local", ()))),
        "dataset_sha256": setup.sha256, "n_samples": p.n, "n_features": p.d,
        "seed": cfg["run"]["seed"], "partition_seed": cfg["data"]["seed"],
        "status": status, "message": message, "mpi_library": mpi_library,
        "started": started, "finished": now()})
    attrs["shard_sizes"] = np.asarray(p.sizes, dtype=np.int64)
    attrs.update({"config": dump(cfg), "label_map": repr(setup.label_map),
                  "setup_bytes": int(setup_bytes), "eval_rounds": rt.eval.rounds,
                  "eval_bytes": rt.eval.bytes_up + rt.eval.bytes_down})
    attrs.update(provenance())
    return attrs


def checkpoint_writer(alg, state):
    """``extra`` for :func:`write_result`: the /checkpoint group, or None."""
    if state is None:
        return None
    from .checkpoint import write_checkpoint
    return lambda f: write_checkpoint(f, alg, *state)


def write_outcome(path, attrs, outcome):
    """Write the HDF5 result of ``outcome`` (with /checkpoint when it carries one)."""
    inject("write", 0)
    write_result(path, attrs, outcome.history, outcome.w, column_docs=column_docs(outcome.alg),
                 extra=checkpoint_writer(outcome.alg, outcome.state))


def column_docs(alg):
    return {k: k for k in type(alg).columns}


def summary_line(outcome, path=None):
    """``status: message; N iterations, R rounds, loss F, S s -> PATH``."""
    h = outcome.history
    return (f"{outcome.status}: {outcome.message}; {h.last('iteration')} iterations, "
            f"{h.last('comm_rounds')} rounds, loss {h.last('loss'):.15e}, "
            f"{h.last('wall_time'):.2f} s" + (f" -> {path}" if path else ""))


def finish(job, outcome, verbosity, final=True):
    """Write the HDF5 result (with /checkpoint when the outcome carries one),
    print the summary line; returns the exit code (3 for a stopped run).

    A failed write of the final result saves the model and history in a
    fallback file and returns 4 (:func:`distnewton.salvage.salvage`); a failed
    periodic checkpoint (``final=False``) is a warning and the run goes on.
    """
    path, hist, attrs = job.cfg["output"]["path"], outcome.history, {}
    try:
        job.attrs(outcome, into=attrs)
        write_outcome(path, attrs, outcome)
    except Exception as exc:                   # noqa: BLE001 - never lose a finished run
        if not final:
            echo(f"distnewton: warning: checkpoint at iteration {hist.last('iteration')} "
                 f"not written to {path}: {reason(exc)}; the run goes on")
            return EXIT_OK
        return salvage(path, attrs, hist, outcome.w, column_docs(outcome.alg), exc, verbosity)
    if verbosity > 0:
        echo(summary_line(outcome, path), err=False)
    return EXIT_STOPPED if outcome.status == "stopped" else EXIT_OK
