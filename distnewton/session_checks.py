"""The master's input checks of a run, before any worker computes: the
result file's claim, the data (:func:`~distnewton.ingest.prepare`), the warm
start, the algorithm's own checks (its losses, ``model.multiclass:
multinomial``, its parameters) and a resume's data.  Any failure is a
:class:`~distnewton.errors.UserError` (exit 2), raised on rank 0 while the
workers wait (:mod:`distnewton.session` broadcasts it to every rank).

Split from :mod:`distnewton.session`, which re-exports these names.
"""

from __future__ import annotations

from . import checks
from .algorithms import ALGORITHMS
from .algorithms.base import check_loss
from .faults import inject
from .ingest import load_w0, prepare
from .io import claim as claims
from .io.job import refuse_sim_copies
from .io.resume import check_data
from .loop import algorithm_section
from .multinomial import check_algorithm, is_multinomial


def check_inputs(cfg, K, resume, arrays=None):
    """Master, before any worker computes: every input check (UserError -> exit 2);
    the :class:`~distnewton.problem.Setup`."""
    check_output(cfg)
    with claims.released_on_error(cfg["output"]["path"]):
        inject("load", 0)
        return check_setup(cfg, prepare(cfg, K, arrays), K, resume)


def check_output(cfg):
    """The result file can be written, and is claimed (checked before any work;
    :mod:`distnewton.io.claim`)."""
    refuse_sim_copies(cfg)
    if cfg["output"]["path"] is not None:
        claims.claim(cfg["output"]["path"], cfg["output"]["overwrite"])


def check_setup(cfg, setup, K, resume):
    """The checks that need the problem: the warm start, the algorithm's own,
    a resume's data and worker count; the Setup (with its w0)."""
    checks.vectors(setup.problem.d, setup.dataset)      # d from the data: fits in RAM
    if cfg["model"]["w0"] is not None and resume is None:
        setup.w0 = load_w0(cfg["model"]["w0"], setup.problem.d)
    name = cfg["algorithm"]["name"]
    check_loss(ALGORITHMS[name], setup.problem.loss)
    if is_multinomial(cfg):
        check_algorithm(ALGORITHMS[name], resume)
    ALGORITHMS[name].validate(algorithm_section(cfg), setup.problem, cfg["run"]["seed"])
    if resume is not None:                     # the data and K the checkpoint was taken with
        check_data(resume, setup, K, cfg)
    return setup
