"""The output claim (:mod:`distnewton.io.claim`) seen from a launched job: a
sim run started as several tasks is refused (they would race on one file),
and a rank that ends the job by MPI_Abort removes the lock of the job's rank 0
on its host, which the abort kills before it can do so itself.
"""

from __future__ import annotations

import os
import sys

from ..errors import UserError
from .claim import HOST, holder, lock_path, release_all, remove_stale

#: the output path of the job this process belongs to (every rank; see release_for_job)
JOB = {"path": None}


def parent(pid):
    """The parent pid of ``pid`` (Linux /proc), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def release_before_abort():
    """This rank ends the job by MPI_Abort, which skips the atexit release: its own
    claims (rank 0's) and the lock of its job's rank 0 (:func:`release_for_job`)."""
    release_all()
    release_for_job()


def release_for_job():
    """Before this rank ends the job by MPI_Abort: the lock of the job's output
    (:data:`JOB`) is removed when its holder is a rank of this job on this host
    (a sibling process: the same parent, the launcher's daemon), which may be
    blocked in a collective and killed before it can remove it itself."""
    path = JOB["path"]
    if path is None:
        return
    lock = lock_path(path)
    who = holder(lock)
    if who is None or who[0] != HOST or who[1] == os.getpid():
        return
    if parent(who[1]) == os.getppid() != 1:
        remove_stale(lock, who)


def launched_copies():
    """(tasks, variable) when a launcher started this command as several tasks."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and mpi.COMM_WORLD.Get_size() > 1:
        return mpi.COMM_WORLD.Get_size(), "MPI_COMM_WORLD"
    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "SLURM_STEP_NUM_TASKS"):
        val = os.environ.get(var, "")
        if val.isdigit() and int(val) > 1:
            return int(val), var
    return None


def refuse_sim_copies(cfg):
    """A sim run that writes a file, launched as several tasks, would race on it."""
    copies = launched_copies()
    if cfg["run"]["backend"] == "sim" and cfg["output"]["path"] is not None and copies:
        raise UserError(f"run.backend: sim runs in one process, but the launcher started "
                        f"{copies[0]} copies ({copies[1]}={copies[0]}) that would all "
                        f"write {cfg['output']['path']}: run it without mpiexec/srun, or "
                        "use --backend mpi")
