"""A one-line progress bar for terminals (carriage return, no dependency).

Used by ``distnewton run`` (rank 0, when a person watches: see
:mod:`distnewton.terminal`) and ``distnewton data fetch``.  On anything that is
not a terminal (SLURM output files, pipes) callers print plain lines instead.
``columns``: the terminal's width when the stream is a pipe to it (a launcher's).
"""

from __future__ import annotations

import shutil
import sys
import time


def is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def human_bytes(n) -> str:
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class Bar:
    """``[#####.....]  52%  text`` redrawn in place; ``close()`` ends the line."""

    def __init__(self, total=None, stream=None, label="", min_interval=0.1, columns=None):
        self.total, self.label, self.columns = total, label, columns
        self.stream = stream if stream is not None else sys.stderr
        self.min_interval, self.last_draw, self.t0 = min_interval, 0.0, time.monotonic()
        self.open = False
        self.last_done, self.last_text = 0, ""

    def update(self, done, text="", force=False):
        self.last_done, self.last_text = done, text
        now = time.monotonic()
        if not force and now - self.last_draw < self.min_interval:
            return
        self.last_draw = now
        cols = self.columns or shutil.get_terminal_size((80, 20)).columns
        width = 20
        if self.total:
            frac = min(max(done / self.total, 0.0), 1.0)
            fill = int(round(frac * width))
            bar = f"[{'#' * fill}{'.' * (width - fill)}] {100 * frac:3.0f}%"
        else:
            bar = ""
        line = " ".join(s for s in (self.label, bar, f"{now - self.t0:5.1f} s ", text) if s)
        self.stream.write("\r" + line[:cols - 1] + "\x1b[K")
        self.stream.flush()
        self.open = True

    def close(self):
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False
