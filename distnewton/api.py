"""The Python API: :func:`solve` runs a config and returns a
:class:`~distnewton.io.record.Result`.

It runs the same :class:`~distnewton.session.Session` as ``distnewton run``
(the same set-up, loop and counting), so the same config gives the same
iterates, bit for bit on the sim backend.  What differs from the command line:

- the backend is ``sim`` unless asked (``backend="mpi"`` inside an MPI job,
  where every rank calls :func:`solve`: rank 0 gets the Result, the workers
  None); ``auto`` picks as the CLI does;
- no file is written unless ``output`` is given (``output.path`` of the
  config is ignored); the Result holds everything the file would
  (:meth:`~distnewton.io.record.Result.save` writes it later);
- nothing is printed unless ``verbose`` (1: the per-iteration lines and the
  summary line, 2: bytes too);
- a bad input raises :class:`~distnewton.errors.UserError` (the CLI prints its
  one-line message and exits with code 2);
- no signal handlers are installed (call :func:`distnewton.stopping.install`
  first for SIGTERM/SIGUSR1/SIGINT to stop a run cleanly, status ``stopped``;
  a signal while the input loads then raises
  :class:`distnewton.stopping.Interrupted`);
  BLAS is pinned to ``run.blas_threads`` only while the run lasts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .errors import UserError

BACKENDS = ("sim", "mpi", "auto")


def solve(config, *, backend="sim", workers=None, set=None, output=None, overwrite=False,
          verbose=0, seed=None, data=None, monitors=(), callback=None, warn=True):
    """Run ``config`` and return its :class:`~distnewton.io.record.Result`.

    ``config``: a YAML file (path), a dict in the YAML schema (sections
    ``data``, ``model``, ``algorithm``, ``run``, ``output``), or a resolved
    config.  Relative paths in it are relative to the current folder.

    ``backend``: ``"sim"`` (default: K simulated workers in this process),
    ``"mpi"`` (inside ``mpiexec -n K+1``: every rank calls ``solve``; rank 0
    returns the Result, ranks 1..K return None) or ``"auto"``.
    ``workers``: K for the sim backend (default ``run.workers``).
    ``set``: ``{"section.key": value}`` overrides, as the CLI's ``--set`` but
    with Python values (``{"model.lambda": 1e-4, "algorithm.name": "newton"}``).
    ``output``: also write the HDF5 result file there (default None: no file);
    ``overwrite``: replace an existing one.  ``verbose``: 0 silent, 1 a line
    per iteration and the summary, 2 with bytes.  ``seed``: ``run.seed``.
    ``data``: ``(X, y)`` or ``(X, y, sample_weight)`` in memory (X a numpy array or
    scipy sparse matrix, y the labels, the rows' weights as ``data.weights``)
    instead of ``data.train`` (sim backend only; ``data.n_features``,
    ``positive_labels``, ``partition`` and ``model.fit_intercept`` apply as for a
    file; the result's dataset is ``<in-memory>`` with the arrays' sha256).
    ``monitors``: :class:`~distnewton.monitors.Monitor` objects that watch the
    iterations (on the master); ``callback``: ``fn(row)`` called after every
    history row with the row's columns as a dict (scipy's ``callback``); a true
    return value (or a monitor's) stops the run with status ``stopped``.

    A run that ended ``max_rounds``, ``max_iterations``, ``stalled`` or
    ``diverged`` issues a :class:`~distnewton.convergence.ConvergenceWarning`
    naming the status, the rounds used and the key to raise (not one that
    converged, nor one ``stopped`` by a monitor, callback or signal: the
    caller asked for that); the Result's ``status``, ``success`` and
    ``message`` say the same.  ``warn=False``: no warning (for callers that
    check ``success`` themselves: thread-safe, unlike a warnings filter).

    Raises :class:`~distnewton.errors.UserError` (one-line message) for a bad
    config, bad data or bad arguments.
    """
    if backend not in BACKENDS:
        raise UserError(f"backend: must be one of {', '.join(BACKENDS)}, got {backend!r}")
    options = {"run.backend": backend, "run.workers": workers, "run.seed": seed}
    if data is not None:
        from .problem import IN_MEMORY
        if backend != "sim":
            raise UserError("data: arrays in memory run on the sim backend only (an MPI "
                            "job reads its data from files: write them with "
                            "distnewton.data.write_libsvm)")
        if not (isinstance(data, (tuple, list)) and len(data) in (2, 3)):
            raise UserError("data: expected (X, y) or (X, y, sample_weight)")
        options["data.train"] = IN_MEMORY
    try:
        cfg = resolve_config(config, set, {k: v for k, v in options.items() if v is not None},
                             output, overwrite)
    except UserError as exc:
        raise joined(exc) from None
    if callback is not None:
        from .monitors import Callback
        monitors = [*monitors, Callback(callback)]
    result = run_config(cfg, verbose, arrays=data, monitors=monitors)
    if warn and result is not None:            # rank 0 (the workers return None)
        from .convergence import warn_if_unconverged
        warn_if_unconverged(result, limits=limits_of(cfg), stacklevel=2)
    return result


def limits_of(cfg):
    """The values of the keys a :class:`~distnewton.convergence.ConvergenceWarning`
    may advise to raise, as this run had them."""
    run = cfg["run"]
    return {"max_rounds": run["max_rounds"], "max_iterations": run["max_iterations"],
            "tol": run["grad_rtol"]}


def joined(exc):
    """As the CLI does: a plugin error under MPI (``exc.backend`` set; it may hit
    some ranks only) joins the other ranks' start-up check, so every rank stops
    with the same message instead of some hanging."""
    backend = getattr(exc, "backend", None)
    if backend is None:
        return exc
    from .runtime.mpi import join_startup_check
    return join_startup_check(exc, backend)


def resolve_config(config, overrides=None, options=None, output=None, overwrite=False):
    """The resolved config of ``solve``'s arguments (see :func:`solve`)."""
    from .config import load_yaml, override, resolve
    from .sections import plain as plain_config
    if isinstance(config, (str, os.PathLike)):
        source = os.fspath(config)
        raw = load_yaml(source)
    elif isinstance(config, Mapping):
        source, raw = "config", plain_config(config)
    else:
        raise UserError(f"config: expected a YAML file path or a mapping, "
                        f"got {type(config).__name__}")
    if isinstance(raw.get("output"), Mapping):
        raw["output"] = {k: v for k, v in raw["output"].items() if k != "path"}
    if overrides is not None and not isinstance(overrides, Mapping):
        raise UserError(f"set: expected a mapping of 'section.key' to values, "
                        f"got {type(overrides).__name__}")
    pairs = {**(overrides or {}), **(options or {})}
    if output is not None:
        pairs["output.path"] = os.fspath(output)
    if overwrite:
        pairs["output.overwrite"] = True
    cfg = resolve(raw, [override(path, plain(value)) for path, value in pairs.items()],
                  source=source)
    from .session import pick_backend
    cfg["run"]["backend"] = pick_backend(cfg["run"]["backend"])
    return cfg


def plain(value):
    """A Python value as YAML would give it: numpy scalars and arrays, paths,
    tuples become int/float/str/list."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()                  # numpy scalar or array
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def run_config(cfg, verbose=0, arrays=None, monitors=()):
    """Run a resolved config (backend ``sim`` or ``mpi``): the Result, None on workers."""
    from .runtime.blas import blas_threads
    from .session import Session
    with blas_threads(cfg["run"]["blas_threads"]):
        session = Session.open(cfg, verbosity=verbose, arrays=arrays, monitors=monitors)
        if session is None:                    # an MPI worker: it served the run
            return None
        outcome = session.run()
    return session.result(outcome)
