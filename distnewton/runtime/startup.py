"""Start-up check of the worker-task tables (MPI): every rank the same tasks.

Called from :func:`distnewton.runtime.mpi.check_world` on every rank, after
the config (and with it ``run.plugins``) is resolved and before any round.
No MPI import here: ``comm`` is the caller's.
"""

from __future__ import annotations

import hashlib

from ..errors import UserError
from . import task_ids


def check_task_table(comm, failure=None):
    """Every rank must have the same worker tasks; else every rank stops (exit 2).

    A round names its task by its index in the sorted names (:func:`task_ids`),
    so a task registered on some ranks only (a plugin module importable on rank
    0 only, or one that registers tasks conditionally) would shift the indices
    and run the wrong task, silently.  Cost: one allgather of (sha256 of the
    sorted names, this rank's start-up failure or None); only when the digests
    differ, a second one of the name lists, so that every rank can say which
    rank lacks which task.  ``failure``: the error of a rank that could not
    resolve the config (:func:`~distnewton.runtime.mpi.join_startup_check`).  Every rank raises the
    same :class:`UserError` (rank 0 prints it).
    """
    _, names = task_ids()
    digest = hashlib.sha256("\0".join(names).encode()).hexdigest()
    infos = comm.allgather((digest, failure))
    if len({d for d, _ in infos}) == 1 and not any(f for _, f in infos):
        return
    tables = comm.allgather(names) if len({d for d, _ in infos}) > 1 else None
    raise UserError(startup_mismatch([f for _, f in infos], tables))


def rank_list(ranks):
    """``rank 2`` / ``ranks 1-3, 5``."""
    runs = []
    for r in ranks:
        if runs and r == runs[-1][1] + 1:
            runs[-1][1] = r
        else:
            runs.append([r, r])
    out = [str(a) if a == b else f"{a}-{b}" for a, b in runs]
    return ("rank " if len(ranks) == 1 else "ranks ") + ", ".join(out)


def startup_mismatch(failures, tables):
    """The message of :func:`check_task_table`: the ranks' failures, then which
    ranks lack which worker tasks (None: the tables agree)."""
    parts, size = [], len(failures)
    by_text = {}
    for rank, text in enumerate(failures):
        if text:
            by_text.setdefault(text, []).append(rank)
    for text, ranks in by_text.items():
        parts.append(text if len(ranks) == size else f"{rank_list(ranks)}: {text}")
    if tables is not None:
        every = sorted(set().union(*map(set, tables)))
        by_missing = {}
        for rank, names in enumerate(tables):
            missing = tuple(n for n in every if n not in set(names))
            if missing:
                by_missing.setdefault(missing, []).append(rank)
        lacks = "; ".join(f"{rank_list(ranks)} lack{'s' if len(ranks) == 1 else ''} worker "
                          f"task{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
                          for missing, ranks in by_missing.items())
        parts.append(f"the ranks' worker-task tables differ: {lacks} (every rank must import "
                     "the same run.plugins and register the same tasks)")
    return "; ".join(parts)
