"""Peak resident memory (VmHWM) per MPI rank, sampled from /proc while a job runs.

``MemSampler`` keys the peaks by ``PMI_RANK``: of the descendants whose command line
names distnewton (``match``), or, with ``match=None``, of every process of the job,
the launched one too (a process without ``PMI_RANK`` is keyed by its name in
``/proc/PID/comm``: ``java``, ``liblinear-train``).  ``run_measured`` runs one
command to its end that way: wall seconds, exit code, the end of stderr, the peaks.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time


def _children():
    kids = collections.defaultdict(list)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            kids[ppid].append(int(pid))
        except (OSError, IndexError, ValueError):
            pass
    return kids


def _descendants(root):
    kids, out, todo = _children(), [], [root]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def _status(pid):
    with open(f"/proc/{pid}/status") as fh:
        return dict(ln.split(":", 1) for ln in fh if ":" in ln)


class MemSampler(threading.Thread):
    """VmHWM (kB) of every descendant of ``root`` whose command line contains ``match``,
    keyed by PMI_RANK (-1 without); ``match=None``: of ``root`` and all its
    descendants, keyed by PMI_RANK or else by the process name."""

    def __init__(self, root, period=0.1, match=b"distnewton"):
        super().__init__(daemon=True)
        self.root, self.period, self.hwm, self.stop = root, period, {}, threading.Event()
        self.match = match

    def run(self):
        rank_of = {}
        while not self.stop.is_set():
            pids = _descendants(self.root) + ([self.root] if self.match is None else [])
            for pid in pids:
                try:
                    if pid not in rank_of:
                        if self.match is not None:
                            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                                if self.match not in fh.read():
                                    continue
                        with open(f"/proc/{pid}/environ", "rb") as fh:
                            env = dict(e.split(b"=", 1) for e in fh.read().split(b"\0") if b"=" in e)
                        if b"PMI_RANK" in env or self.match is not None:
                            rank_of[pid] = int(env.get(b"PMI_RANK", b"-1"))
                        else:
                            with open(f"/proc/{pid}/comm") as fh:
                                rank_of[pid] = fh.read().strip()
                    st = _status(pid)
                    kb = int(st["VmHWM"].split()[0])
                    r = rank_of[pid]
                    if isinstance(r, str):          # by name: the current one (after exec)
                        r = st["Name"].strip()
                    self.hwm[r] = max(self.hwm.get(r, 0), kb)
                except (OSError, KeyError, ValueError):
                    pass
            self.stop.wait(self.period)


def _sampled(cmd, timeout, on_timeout, match=b"distnewton", env=None, cwd=None):
    """Run ``cmd`` with MemSampler; ``on_timeout(proc)`` (returning stderr) after
    ``timeout`` s.  (wall seconds, timed out, exit code, stderr, peaks)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    mem = MemSampler(proc.pid, match=match)
    mem.start()
    expired = False
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        expired = True
        err = on_timeout(proc)
    whole = time.perf_counter() - t0
    mem.stop.set()
    mem.join()
    return whole, expired, proc.returncode, err, mem.hwm


def _kill(proc):
    proc.kill()
    return proc.communicate()[1]


def _stop_cleanly(proc):
    """SIGUSR1 (a checkpointed stop), SIGKILL 30 s later."""
    proc.send_signal(signal.SIGUSR1)
    try:
        return proc.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        return _kill(proc)


def run_capped(cmd, cap_seconds):
    """Run mpiexec with memory sampling; SIGUSR1 at the cap (clean stop), kill 30 s later."""
    whole, capped, rc, err, hwm = _sampled(cmd, cap_seconds, _stop_cleanly)
    if rc not in (0, 3):
        print(f"  {' '.join(cmd)} exited {rc}:\n{err[-1500:]}", file=sys.stderr)
    return whole, capped, rc, hwm


def run_measured(cmd, env=None, cwd=None, match=None, timeout=None):
    """Run ``cmd`` to its end: (wall seconds from start to exit, exit code, the last
    3000 characters of stderr, {rank or process name: peak kB}).  ``match``: as
    MemSampler's (None: every process of the job; b"distnewton": the ranks only);
    killed after ``timeout`` s."""
    whole, _, rc, err, hwm = _sampled(cmd, timeout, _kill, match, env, cwd)
    return whole, rc, err[-3000:], hwm
