"""How a SLURM batch script starts the ranks: the first launcher that really starts
one MPI world of the job's size.

``slurm/run.sbatch`` and ``slurm/sweep.sbatch`` both ask this module, through
``distnewton launcher choose --ntasks N -- DISTNEWTON...``, for the command prefix
that starts N ranks (printed on stdout, one word per line).  The candidates, in
order (``DISTNEWTON_LAUNCHER`` restricts them):

1. ``srun --mpi=P -n N`` for each plugin P of ``DISTNEWTON_SRUN_MPI`` (a comma
   separated list, default ``pmix,pmi2``), only inside a SLURM job with ``srun``
   on PATH;
2. ``$DISTNEWTON_MPIEXEC -n N`` (default ``mpiexec``).

A plugin that ``srun --mpi=list`` lists is not necessarily usable: Debian's SLURM
lists ``pmix`` without the PMIx library ("pmi/pmix: can not load PMIx library"),
and a plugin the MPI does not speak starts N singletons, each "rank 0 of 1".  So
each candidate is *probed*: it launches ``DISTNEWTON... launcher probe`` (the very
command the run uses, so the same Python and mpi4py) on N tasks, and is accepted
only when every one of the N tasks reports a world of N ranks in which an
allreduce over all of them gives N, and the task count the run's own start-up
check reads from the launcher's variables (``distnewton.runtime.mpi.launched_size``)
agrees.  One line per candidate tried goes to stderr (works or fails, and why) and
one naming the choice; when no candidate works the command exits with code 2 and
says what to set.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import click

from .errors import UserError

LAUNCHERS = ("auto", "srun", "mpiexec")
#: Launcher variables a probe reports (in the messages only).
SIZE_VARS = ("SLURM_NTASKS", "PMI_SIZE", "PMIX_SIZE", "OMPI_COMM_WORLD_SIZE")
DEFAULT_SRUN_MPI = "pmix,pmi2"
DEFAULT_TIMEOUT = 120.0
PREFIX = "distnewton launcher:"
_PROBE_LINE = re.compile(
    r"^distnewton-probe rank (\d+) size (\d+) sum (\d+) announced (\d+|none)(?: (.*))?$")


def say(text):
    click.echo(f"{PREFIX} {text}", err=True)


def srun_plugins(value):
    plugins = [p for p in re.split(r"[,\s]+", value or "") if p]
    if not plugins:
        raise UserError("DISTNEWTON_SRUN_MPI: empty (give e.g. pmix,pmi2; see `srun --mpi=list`)")
    return plugins


def candidates(ntasks, environ):
    """[(label, argv prefix or None, reason it cannot be tried)] in the order to try."""
    mode = environ.get("DISTNEWTON_LAUNCHER", "auto") or "auto"
    if mode not in LAUNCHERS:
        raise UserError(f"DISTNEWTON_LAUNCHER: expected auto, srun or mpiexec, got '{mode}'")
    out = []
    if mode in ("auto", "srun"):
        srun = shutil.which("srun", path=environ.get("PATH"))
        for plugin in srun_plugins(environ.get("DISTNEWTON_SRUN_MPI", DEFAULT_SRUN_MPI)):
            label = f"srun --mpi={plugin}"
            if not srun:
                out.append((label, None, "srun not found on PATH"))
            elif not environ.get("SLURM_JOB_ID"):
                out.append((label, None, "not inside a SLURM job (SLURM_JOB_ID unset)"))
            else:
                out.append((label, [srun, f"--mpi={plugin}", "-n", str(ntasks)], None))
    if mode in ("auto", "mpiexec"):
        words = shlex.split(environ.get("DISTNEWTON_MPIEXEC", "mpiexec") or "mpiexec")
        label = shlex.join(words)
        exe = shutil.which(words[0], path=environ.get("PATH")) if words else None
        if not exe:
            out.append((label, None, f"{words[0] if words else '(empty)'} not found on PATH"))
        else:
            out.append((label, [exe, *words[1:], "-n", str(ntasks)], None))
    return out


def _first_error(text):
    """The most telling line of a failed launch's output, shortened."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    noise = ("queued and waiting", "has been allocated", "Step created", "retrying")
    lines = [ln for ln in lines if not any(n in ln for n in noise)]
    pick = next((ln for ln in lines if "error" in ln.lower()), lines[0] if lines else "")
    return pick if len(pick) <= 200 else pick[:197] + "..."


def _kill(proc):
    """Stop a probe and everything it started (its own session)."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def probe(prefix, ntasks, command, timeout):
    """Launch ``command launcher probe`` with ``prefix``: (accepted, why)."""
    argv = [*prefix, *command, "launcher", "probe"]
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    except OSError as exc:
        return False, f"cannot start: {exc.strerror or exc}"
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:       # a grandchild holds the pipes: leave it
            pass
        return False, f"no answer within {timeout:g} s (DISTNEWTON_PROBE_TIMEOUT)"
    reports = [m.groups() for m in map(_PROBE_LINE.match, out.splitlines()) if m]
    if proc.returncode != 0:
        msg = _first_error(err + "\n" + out)
        return False, f"exit code {proc.returncode}" + (f": {msg}" if msg else ", no output")
    ranks = sorted(int(r[0]) for r in reports)
    sizes = sorted({int(r[1]) for r in reports})
    sums = sorted({int(r[2]) for r in reports})
    announced = sorted({r[3] for r in reports} - {"none"}, key=int)
    seen = sorted({r[4] for r in reports if r[4]})
    if not reports:
        msg = _first_error(err + "\n" + out)
        return False, "the tasks printed no world size" + (f": {msg}" if msg else "")
    if sizes == [1] and len(reports) > 1:
        return False, (f"started {len(reports)} separate singletons (each rank 0 of 1): "
                       "this MPI does not use that launcher's process-management interface")
    if ranks != list(range(ntasks)) or sizes != [ntasks] or sums != [ntasks]:
        return False, (f"{len(reports)} tasks answered, ranks {ranks}, world sizes {sizes}, "
                       f"allreduce sums {sums} (expected {ntasks} tasks in one world of "
                       f"{ntasks})")
    if announced not in ([], [str(ntasks)]):
        return False, (f"one world of {ntasks}, but the ranks see {' / '.join(seen)}, which "
                       f"announce {'/'.join(announced)} tasks: distnewton's start-up check "
                       "would stop the run")
    return True, f"{ntasks} tasks in one MPI world of {ntasks}"


def choose(ntasks, command, environ=None):
    """The argv prefix of the first candidate whose probe succeeds; UserError if none."""
    environ = os.environ if environ is None else environ
    if ntasks < 1:
        raise UserError(f"--ntasks: must be >= 1, got {ntasks}")
    raw = environ.get("DISTNEWTON_PROBE_TIMEOUT") or str(DEFAULT_TIMEOUT)
    try:
        timeout = float(raw)
        assert timeout > 0
    except (ValueError, AssertionError):
        raise UserError(f"DISTNEWTON_PROBE_TIMEOUT: expected seconds > 0, got '{raw}'") from None
    tried = []
    for label, prefix, skip in candidates(ntasks, environ):
        tried.append(label)
        if prefix is None:
            say(f"{label}: skipped, {skip}")
            continue
        t0 = time.monotonic()
        ok, why = probe(prefix, ntasks, command, timeout)
        took = time.monotonic() - t0
        say(f"{label}: {'works' if ok else 'fails'}, {why} ({took:.1f} s)")
        if ok:
            before = f" ({', '.join(tried[:-1])}: no)" if len(tried) > 1 else ""
            say(f"chose {label}, the first that starts {why}{before}: {shlex.join(prefix)}")
            return prefix
    raise UserError(
        f"launcher: nothing here starts one MPI world of {ntasks} ranks (tried "
        f"{', '.join(tried)}; see the lines above): set DISTNEWTON_SRUN_MPI to the plugins "
        "your MPI supports (`srun --mpi=list`), or DISTNEWTON_MPIEXEC to your MPI's mpiexec, "
        "and check that mpi4py is built for that MPI (docs/guide/backends.md, \"On a cluster\")")


@click.group("launcher")
def launcher():
    """Pick how SLURM batch scripts start the ranks (used by slurm/*.sbatch)."""


@launcher.command("choose")
@click.option("-n", "--ntasks", type=int, required=True, help="ranks to start")
@click.argument("command", nargs=-1)
def choose_cmd(ntasks, command):
    """Print the launcher prefix (one word per line) that starts NTASKS ranks of
    COMMAND (the distnewton command; default: this Python's `-m distnewton`).

    Tries `srun --mpi=P` for each P in DISTNEWTON_SRUN_MPI (default pmix,pmi2), then
    DISTNEWTON_MPIEXEC (default mpiexec); DISTNEWTON_LAUNCHER=srun|mpiexec keeps only
    those.  Each is probed with COMMAND's `launcher probe`; exit code 2 if none works.
    """
    command = list(command) or [sys.executable, "-m", "distnewton"]
    for word in choose(ntasks, command):
        click.echo(word)


@launcher.command("probe")
def probe_cmd():
    """One line per rank: its rank, the world size and an allreduce over the world."""
    from .runtime.mpi import comm_world, launched_size
    comm = comm_world()
    total = comm.allreduce(1)
    announced = launched_size()         # what the run's start-up check compares with
    seen = " ".join(f"{v}={os.environ[v]}" for v in SIZE_VARS if v in os.environ)
    click.echo(f"distnewton-probe rank {comm.Get_rank()} size {comm.Get_size()} sum {total} "
               f"announced {'none' if announced is None else announced} {seen}".rstrip())
