"""Is a person watching this output?  Where ``distnewton run``'s progress bar goes.

The bar (:class:`distnewton.progress.Bar`) belongs on a terminal someone looks
at, never in a SLURM output file, a pipe, or the terminal of a job sent to the
background.  A stream is *watched* when it ends on a terminal whose foreground
process group is the one the user started (``os.tcgetpgrp``): a job started
with ``&`` or ``nohup`` is not in the foreground, a redirected one does not
end on the terminal.

- **A plain process** (the sim backend, ``srun --pty``): its own stream is the
  terminal (``isatty``) and its process group is the foreground one.
- **Under a launcher** (``mpiexec``, ``mpirun``): rank 0's stdout and stderr
  are pipes to the launcher, which copies them to its own.  MPICH's ``mpiexec``
  (hydra) starts each rank in a new session through its proxy (``setsid``), so
  a rank has no controlling terminal at all.  What the user sees is the
  launcher's own stream, so the rank looks up its ancestors in ``/proc``
  (Linux) for the launcher (``mpiexec``, ``mpirun``, ... within
  :data:`DEPTH` parents: hydra's proxy is one) and asks the same question of the
  launcher's file descriptor of the same number and its process group.  A
  launcher that is not an ancestor (``srun``: the tasks are children of
  ``slurmstepd``), another system, or a launcher started with pipes (the
  tests) all give "not watched": ``--progress`` then says so.
"""

from __future__ import annotations

import os
import stat

#: process names of launchers that copy rank 0's output to their own
LAUNCHERS = frozenset({"mpiexec", "mpirun", "mpiexec.hydra", "mpiexec.mpich", "mpirun.mpich",
                       "mpiexec.openmpi", "mpirun.openmpi", "prterun", "orterun"})
#: how many parents up the launcher may be (rank -> hydra proxy -> mpiexec: 2)
DEPTH = 4


def proc_stat(pid):
    """``(name, ppid, pgrp, tty_nr, tpgid)`` of process ``pid`` from
    ``/proc/PID/stat``, or None (no /proc, the process is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    name = text[text.find("(") + 1:text.rfind(")")]
    fields = text[text.rfind(")") + 2:].split()     # state ppid pgrp session tty_nr tpgid
    try:
        return name, int(fields[1]), int(fields[2]), int(fields[4]), int(fields[5])
    except (IndexError, ValueError):
        return None


def launcher_pid(depth=DEPTH):
    """The pid of the launcher among this process's nearest ``depth`` parents, or None."""
    pid = os.getpid()
    for _ in range(depth):
        st = proc_stat(pid)
        if st is None or st[1] <= 1:
            return None
        pid = st[1]
        parent = proc_stat(pid)
        if parent is not None and parent[0] in LAUNCHERS:
            return pid
    return None


def foreground_fd(pid, fd):
    """Process ``pid``'s descriptor ``fd`` is its controlling terminal, and its
    process group is that terminal's foreground group."""
    st = proc_stat(pid)
    if st is None or st[3] == 0 or st[2] != st[4]:
        return False
    try:
        info = os.stat(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return False
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == st[3]


def fileno(stream):
    try:
        return stream.fileno()
    except (AttributeError, ValueError, OSError):
        return None


def watched(stream):
    """Where ``stream`` ends, as ``(watched, columns)``: True when it reaches a
    terminal in the foreground, directly or through the launcher; the terminal's
    width (None when unknown)."""
    fd = fileno(stream)
    if fd is None:
        return False, None
    if os.isatty(fd):
        try:
            ok = os.tcgetpgrp(fd) == os.getpgrp()
        except OSError:                    # not our controlling terminal: no job control
            ok = True                      # to ask, but a terminal all the same
        return ok, width(fd)
    from .runtime.mpi import under_launcher     # mpi4py itself stays unimported
    if fd not in (1, 2) or not under_launcher():
        return False, None
    pid = launcher_pid()
    if pid is None or not foreground_fd(pid, fd):
        return False, None
    return True, width_of_path(f"/proc/{pid}/fd/{fd}")


def width(fd):
    try:
        return os.get_terminal_size(fd).columns or None
    except OSError:
        return None


def width_of_path(path):
    """The width of the terminal at ``path`` (opened without becoming ours)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY)
    except OSError:
        return None
    try:
        return width(fd)
    finally:
        os.close(fd)


def plan(mode, stdout, stderr):
    """How ``distnewton run`` shows progress: ``(bar_stream, lines, columns)``.

    ``mode`` is ``run.progress``: ``never`` (no bar), ``always`` (a bar, no
    per-iteration lines) or ``auto``: a bar when stderr is watched, and the lines
    go only when stdout is watched too (a redirected stdout keeps them).  The bar
    goes on stderr when that is the terminal itself; through a launcher, on
    stdout when both streams are watched: stdout and stderr travel in separate
    pipes, so a bar on stderr could land after the summary line on stdout.
    ``bar_stream`` is None for no bar."""
    if mode == "never":
        return None, True, None
    out_seen, out_cols = watched(stdout)
    err_seen, err_cols = watched(stderr)
    if mode == "auto" and not err_seen:
        return None, True, None
    lines = not out_seen if mode == "auto" else False
    direct = fileno(stderr) is not None and os.isatty(fileno(stderr))
    if direct or (mode == "auto" and not out_seen):
        return stderr, lines, err_cols
    return stdout, lines, out_cols or err_cols
