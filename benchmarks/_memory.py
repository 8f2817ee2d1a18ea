"""Peak resident memory (VmHWM) per MPI rank, sampled from /proc while a job runs."""

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
    """VmHWM (kB) of every python descendant of ``root``, keyed by PMI_RANK."""

    def __init__(self, root, period=0.1):
        super().__init__(daemon=True)
        self.root, self.period, self.hwm, self.stop = root, period, {}, threading.Event()

    def run(self):
        rank_of = {}
        while not self.stop.is_set():
            for pid in _descendants(self.root):
                try:
                    if pid not in rank_of:
                        with open(f"/proc/{pid}/cmdline", "rb") as fh:
                            if b"distnewton" not in fh.read():
                                continue
                        with open(f"/proc/{pid}/environ", "rb") as fh:
                            env = dict(e.split(b"=", 1) for e in fh.read().split(b"\0") if b"=" in e)
                        rank_of[pid] = int(env.get(b"PMI_RANK", b"-1"))
                    kb = int(_status(pid)["VmHWM"].split()[0])
                    r = rank_of[pid]
                    self.hwm[r] = max(self.hwm.get(r, 0), kb)
                except (OSError, KeyError, ValueError):
                    pass
            self.stop.wait(self.period)


def run_capped(cmd, cap_seconds):
    """Run mpiexec with memory sampling; SIGUSR1 at the cap (clean stop), kill 30 s later."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    mem = MemSampler(proc.pid)
    mem.start()
    capped = False
    try:
        _, err = proc.communicate(timeout=cap_seconds)
    except subprocess.TimeoutExpired:
        capped = True
        proc.send_signal(signal.SIGUSR1)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    whole = time.perf_counter() - t0
    mem.stop.set()
    mem.join()
    if proc.returncode not in (0, 3):
        print(f"  {' '.join(cmd)} exited {proc.returncode}:\n{err[-1500:]}", file=sys.stderr)
    return whole, capped, proc.returncode, mem.hwm


