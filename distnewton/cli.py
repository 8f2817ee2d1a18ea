"""Command line: ``distnewton run | list | config | report | plot | recover |
predict | evaluate | data ...``.

``data``: ``info | synth | list | fetch | split``.

Exit codes: 0 done, 1 internal error, 2 user error (one line naming the file
and line, the config key or the argument), 3 stopped with a checkpoint (SIGINT,
SIGTERM, SIGUSR1), 4 finished but the result file could not be written (model
and history saved in a fallback file), 5 ``run --require-converged``: the run
ended without converging (result written), 128 + N stopped by signal N while
loading (nothing written).  mpi4py is imported only by ``run`` with the MPI backend.
"""

from __future__ import annotations

import os
import sys

import click

from .errors import PluginError, UserError
from .stopping import Interrupted, leave


def env_rank():
    """This process's MPI rank as the launcher announces it (before MPI_Init)."""
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID", "PMIX_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def fail(exc: UserError):
    if isinstance(exc, PluginError) and exc.backend is not None:
        # a plugin import may fail on some ranks only: stop them all, one message
        from .runtime.mpi import join_startup_check
        exc = join_startup_check(exc, exc.backend)
    if env_rank() == 0:
        click.echo(f"distnewton: error: {exc}", err=True)
    code = exc.exit_code
    if "mpi4py.MPI" in sys.modules:          # after MPI_Init: every rank is here alike
        from .runtime.mpi import leave_world
        code = leave_world(code)
    elif env_rank() != 0:
        # before MPI_Init every rank finds the same error alone; Open MPI's launcher
        # ends the job when the first rank exits, so the others wait a moment for
        # rank 0 to print its line (the launcher's SIGTERM may end the wait)
        import time

        from .stopping import default_actions
        default_actions()
        time.sleep(1.0)
    sys.exit(code)


class Group(click.Group):
    """Turns a UserError raised anywhere into one line and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            fail(exc)
        except Interrupted as exc:             # a stop signal while loading: 128 + signum
            leave(exc)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="distnewton")
def main():
    """distnewton: communication-efficient distributed second-order optimization.

    Launch with `mpiexec -n K+1 distnewton run CONFIG` (rank 0 master, K
    workers) or `distnewton run CONFIG --backend sim --workers K`.
    """


@main.command()
@click.argument("config", type=click.Path(), required=False)
@click.option("--resume", type=click.Path(), metavar="RESULT.h5",
              help="continue the run checkpointed in this result file (written in place), "
                   "instead of CONFIG")
@click.option("-o", "--output", metavar="RESULT.h5",
              help="result file (HDF5; output.path, default results/<config>-<time>.h5)")
@click.option("--backend", type=click.Choice(["auto", "mpi", "sim"]),
              help="run.backend: mpi (real ranks), sim (one process) or auto (mpi under a "
                   "launcher)")
@click.option("--workers", type=int, metavar="K",
              help="number of workers K (run.workers): simulated under sim (default 4), "
                   "logical workers spread over the worker ranks under MPI (default one "
                   "per rank)")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="override a config key (repeatable; keys: distnewton config)")
@click.option("--fetch", is_flag=True, help="download a registered data set the config "
              "names (data.train: a9a) if it is not cached yet, verified as `distnewton data "
              "fetch` does (data.fetch: auto)")
@click.option("--mirror", metavar="DIR|URL", help="with --fetch: fetch from this folder or "
              "URL (a9a.bz2, ...) instead of the LIBSVM site (data.mirror)")
@click.option("--overwrite", is_flag=True, help="replace an existing result file "
              "(output.overwrite)")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
              help="import this algorithm plugin module on every rank (appends to "
                   "run.plugins; repeatable)")
@click.option("--progress/--no-progress", default=None,
              help="show the progress bar (and no per-iteration lines), or never; default "
                   "(run.progress: auto): when a person watches the terminal, also under "
                   "mpiexec, never in SLURM output files, pipes or background jobs")
@click.option("--require-converged", is_flag=True,
              help="exit with code 5 when the run ends without converging (max_rounds, "
                   "max_iterations, stalled, diverged; run.require_converged); the result "
                   "file is written as usual")
@click.option("-q", "--quiet", is_flag=True,
              help="no progress bar and no per-iteration lines; the summary line, "
                   "warnings and errors stay")
@click.option("-v", "--verbose", is_flag=True, help="per-iteration lines with the bytes "
              "sent up and down (no bar)")
def run(config, resume, output, backend, workers, overrides, overwrite, plugins, progress,
        require_converged, quiet, verbose, fetch, mirror):
    """Run the algorithm of CONFIG and write one HDF5 result file.

    \b
    Examples:
      mpiexec -n 5 distnewton run a9a.yaml -o results/a9a.h5  # rank 0 + 4 workers
      distnewton run a9a.yaml --backend sim --workers 4       # one process
      distnewton run a9a.yaml --set run.max_rounds=50 --require-converged
      distnewton run --resume results/a9a.h5                  # after a stop

    Every config key, with its type, default and meaning: `distnewton config
    [SECTION]`; the algorithms and their keys: `distnewton list`.

    Ctrl-C (SIGINT), SIGTERM or SIGUSR1 stop the run after the current
    iteration and write the result with a checkpoint (exit 3); a second
    Ctrl-C aborts at once.  Under Open MPI's mpirun, which aborts the job on
    Ctrl-C, send SIGUSR1 instead: kill -USR1 <mpirun pid>.

    \b
    Exit codes:
      0  done (the summary line gives the status)
      1  internal error
      2  user error: bad config, data or arguments (one line)
      3  stopped by SIGINT/SIGTERM/SIGUSR1, checkpoint written (--resume FILE)
      4  result not written: model and history in the fallback file named on
         stderr (distnewton recover FILE)
      5  not converged under --require-converged (result written)
      128+N  stopped by signal N while loading the input (nothing written)
    """
    if (config is None) == (resume is None):
        raise UserError("run: give a CONFIG file or --resume RESULT.h5 (one of the two)")
    from .config import override
    extra = list(overrides)                    # --set texts, then the options' values
    if backend:
        extra.append(override("run.backend", backend, "--backend"))
    if workers is not None:
        if workers < 1:
            raise UserError(f"--workers: must be >= 1, got {workers}")
        extra.append(override("run.workers", workers, "--workers"))
    if output:
        extra.append(override("output.path", output, "--output"))
    if overwrite:
        extra.append(override("output.overwrite", True, "--overwrite"))
    extra += [override("run.plugins", module, "--plugin", append=True) for module in plugins]
    if fetch:
        extra.append(override("data.fetch", "auto", "--fetch"))
    if mirror is not None:
        extra.append(override("data.mirror", mirror, "--mirror"))
    if progress is not None:
        extra.append(override("run.progress", "always" if progress else "never",
                              "--progress" if progress else "--no-progress"))
    if require_converged:
        extra.append(override("run.require_converged", True, "--require-converged"))
    sys.exit(execute(config, extra, verbosity=0 if quiet else (2 if verbose else 1),
                     resume_path=resume))


#: how ``distnewton list`` marks an algorithm's ``convergence_note`` (indented as
#: the keys, but no key name ends with a colon)
NOTE_PREFIX = "note: "


@main.command("list")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
              help="import this algorithm plugin module first (repeatable)")
def list_algorithms(plugins):
    """Algorithms, where each comes from, and their parameters with defaults.

    Origins: built-in, entry point DIST:NAME = MODULE:CLASS (an installed
    distribution's group distnewton.algorithms), module M (a --plugin module).
    A "note:" line under an algorithm's name says what its defaults cannot
    reach (relative suboptimality 1e-6 in 500 rounds on the standard sets) and why.
    """
    from .algorithms import ALGORITHMS, load_plugins
    load_plugins(plugins, where="--plugin")
    for name, cls in sorted(ALGORITHMS.items()):
        doc = ((cls.__doc__ or sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
               or [""])[0]
        click.echo(f"{name} [{ALGORITHMS.origin(name)}]: {doc}")
        if getattr(cls, "convergence_note", ""):
            click.echo(f"    {NOTE_PREFIX}{cls.convergence_note}")
        click.echo(f"    {'model.loss':<16} {', '.join(getattr(cls, 'losses', ()))}")
        multi = "ovr, multinomial" if getattr(cls, "multinomial", False) else "ovr"
        click.echo(f"    {'model.multiclass':<16} {multi}")
        for key, p in cls.params.items():
            choices = f" [{'|'.join(p.choices)}]" if p.choices else ""
            click.echo(f"    {key:<16} {str(p.default):<10} {p.doc}{choices}")
        click.echo("")


@main.command("config")
@click.argument("section", required=False)
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
              help="import this algorithm plugin module first (repeatable)")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown"]), default="text",
              show_default=True)
def config_reference(section, plugins, fmt):
    """Every config key with its type, default and meaning.

    SECTION: data, model, run, output, algorithm (the name and every
    algorithm's keys) or an algorithm name (giant: its keys); default all.
    """
    from . import confdoc
    from .algorithms import load_plugins
    load_plugins(plugins, where="--plugin")
    render = confdoc.render_markdown if fmt == "markdown" else confdoc.render_text
    click.echo(render(section), nl=False)


@main.group()
def data():
    """Data sets: inspect, generate, fetch and split LIBSVM files."""


@data.command("info")
@click.argument("path")
@click.option("--zero-based", is_flag=True, help="indices start at 0")
def data_info(path, zero_based):
    """n, d, nnz, labels and density of a LIBSVM file (or a fetched registered set)."""
    from .data import dataset_info
    from .data.registry import resolve_path
    info = dataset_info(resolve_path(path, "PATH"), zero_based=zero_based)
    for key, value in info.items():
        if key == "labels":
            value = ", ".join(f"{k:g}: {v}" for k, v in sorted(value.items()))
        click.echo(f"{key:<12} {value}")


@data.command("synth")
@click.argument("output")
@click.option("--samples", "n_samples", type=int, default=10000, show_default=True)
@click.option("--features", "n_features", type=int, default=100, show_default=True)
@click.option("--density", type=float, default=0.1, show_default=True)
@click.option("--noise", type=float, default=0.1, show_default=True,
              help="label flip rate (logistic) or noise std (ridge)")
@click.option("--heterogeneity", type=float, default=0.0, show_default=True)
@click.option("--groups", "n_groups", type=int, default=1, show_default=True)
@click.option("--loss", type=click.Choice(["logistic", "ridge", "squared_hinge",
                                          "poisson"]),
              default="logistic")
@click.option("--seed", type=int, default=0, show_default=True)
def data_synth(output, **kwargs):
    """Write a seeded synthetic LIBSVM data set to OUTPUT (under mpiexec: rank 0
    writes it, the other ranks have nothing to do)."""
    from .data import make_synthetic, write_libsvm
    if kwargs["n_samples"] < 1 or kwargs["n_features"] < 1:
        raise UserError("--samples and --features must be >= 1")
    if not 0 < kwargs["density"] <= 1:
        raise UserError(f"--density: must be in (0, 1], got {kwargs['density']}")
    if env_rank() != 0:                        # one writer: not P copies racing
        return
    X, y, _ = make_synthetic(**kwargs)
    write_libsvm(output, X, y)
    click.echo(f"{output}: {X.shape[0]} x {X.shape[1]}, nnz {X.nnz}")


def resolve_run(config_path, overrides, resume_path=None):
    """The resolved config of ``distnewton run`` (and the Resume of ``--resume``)."""
    import datetime as dt                      # here, not at the top: --help stays light

    from .config import load_yaml, resolve
    from .session import pick_backend
    resume = None
    if resume_path is not None:                # checked: distnewton/io/resume.py
        from .inputs import require_regular
        from .io.resume import resolve_resume
        require_regular(resume_path, "--resume")
        cfg, resume = resolve_resume(resume_path, overrides)
        for line in resume.warnings if env_rank() == 0 else ():
            click.echo(f"distnewton: warning: {line}", err=True)
    else:
        cfg = resolve(load_yaml(config_path), overrides, source=config_path)
    from .inputs import check_run_inputs
    check_run_inputs(cfg)                      # every rank, before MPI: no FIFO read
    cfg["run"]["backend"] = pick_backend(cfg["run"]["backend"])
    if cfg["output"]["path"] is None:
        stem = os.path.splitext(os.path.basename(config_path))[0]
        cfg["output"]["path"] = os.path.join(
            "results", f"{stem}-{dt.datetime.now():%Y%m%d-%H%M%S}.h5")
    return cfg, resume


def execute(config_path, overrides, verbosity=1, resume_path=None) -> int:
    """``distnewton run``: run a config (or continue the run checkpointed in
    ``resume_path``), write the file; the exit code."""
    from .errors import EXIT_OK               # the run's modules load here, not for --help
    from .runtime import blas
    from .session import Session
    from .stopping import install
    install()                                  # SIGTERM/SIGUSR1/SIGINT: stop cleanly
    cfg, resume = resolve_run(config_path, overrides, resume_path)
    from .io.job import JOB
    JOB["path"] = cfg["output"]["path"]        # every rank: see job.release_for_job
    blas.pin_blas_threads(cfg["run"]["blas_threads"])
    session = Session.open(cfg, verbosity=verbosity, resume=resume)
    if session is None:                        # an MPI worker: it served the run
        return EXIT_OK
    outcome = session.run()
    if cfg["run"]["backend"] == "sim":
        return session.write(outcome)
    from .runtime.mpi import abort_on_exception
    try:
        return session.write(outcome)
    except Exception as exc:                   # noqa: BLE001
        abort_on_exception(exc)


from .commands import register  # noqa: E402  report, plot, recover, data list/fetch/split

register(main, data)

from .launcher import launcher  # noqa: E402  launcher choose|probe (slurm/*.sbatch)

main.add_command(launcher)


if __name__ == "__main__":
    main()
