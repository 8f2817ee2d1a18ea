"""Monitors: what watches a run's iterations without taking part in them.

A monitor is handed to :class:`~distnewton.session.Session` (``monitors=``)
or :func:`distnewton.solve` (``monitors=``, ``callback=``), like scipy's
``callback`` or PETSc/TAO's monitors.  The loop (:class:`~distnewton.loop.Loop`)
calls, on the master:

- ``start(loop)`` once, before the first history row;
- ``iteration(loop, row)`` after every history row (``row`` a dict of the
  row's columns, the initial point's row 0 included); a true return value
  asks the run to stop after this iteration (status ``stopped``, with a
  checkpoint: ``--resume`` continues it);
- ``checkpoint(loop, outcome)`` every ``run.checkpoint_every`` rounds, with a
  provisional :class:`~distnewton.io.record.Outcome` (status ``running``)
  that carries the checkpoint state;
- ``message(text)`` for a line of news (a one-vs-rest run's next class);
- ``end(loop, outcome)`` once, when the loop ends.

``loop`` gives ``loop.history`` (the :class:`~distnewton.io.record.History`
so far), ``loop.alg`` (its ``w`` is the current model), ``loop.rt`` (the
round and byte counters: ``loop.rt.algo``) and ``loop.problem``.  A monitor
must not run rounds.  The built-in ones: :class:`LinePrinter` (the
per-iteration lines and the progress bar of ``distnewton run``) and
:class:`Callback` (a function); the session adds its periodic checkpoint
writer (:class:`CheckpointWriter`).
"""

from __future__ import annotations

import math
import sys

from .progress import Bar
from .terminal import plan


class Monitor:
    """Base class: every hook does nothing."""

    def start(self, loop):
        pass

    def iteration(self, loop, row) -> bool | None:
        return None

    def checkpoint(self, loop, outcome):
        pass

    def message(self, text):
        pass

    def end(self, loop, outcome):
        pass


class Callback(Monitor):
    """``fn(row)`` after every history row; a true return value stops the run
    (``distnewton.solve(callback=fn)``)."""

    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", type(fn).__name__)

    def iteration(self, loop, row):
        return self.fn(dict(row))


class CheckpointWriter(Monitor):
    """Writes the provisional result file every ``run.checkpoint_every`` rounds
    (``write(outcome)``: the session's file writer)."""

    def __init__(self, write):
        self.write = write

    def checkpoint(self, loop, outcome):
        self.write(outcome)


class LinePrinter(Monitor):
    """One line per iteration on rank 0 (``-q``: none, ``-v``: bytes too; with
    ``data.validation`` the validation loss too).

    Without ``-q`` or ``-v``, a progress bar (rounds out of ``run.max_rounds``)
    when a person watches stderr, directly or through ``mpiexec``
    (``run.progress: auto``; ``always``, ``never`` decide instead); it replaces
    the lines when stdout is watched too, a redirected stdout still gets them
    (:func:`distnewton.terminal.plan`).
    """

    def __init__(self, verbosity, stream=None, bar_stream=None):
        self.verbosity, self.stream = verbosity, stream or sys.stdout
        self.bar_stream = bar_stream or sys.stderr
        self.bar = None
        self.lines = verbosity > 0
        self.validated = False        # the run has data.validation: a val_loss column

    def start(self, loop):
        if self.verbosity == 1:
            stream, self.lines, columns = plan(loop.run.get("progress") or "auto",
                                               self.stream, self.bar_stream)
            if stream is not None:
                self.bar = Bar(loop.run["max_rounds"], stream=stream, columns=columns)
        self.validated = getattr(loop, "validation", None) is not None   # data.validation
        if self.lines:
            cols = (f"{'iter':>5} {'rounds':>7} {'loss':>22} {'grad_norm':>10} "
                    f"{'test_acc':>8} {'seconds':>9}")
            if self.validated:
                cols += f" {'val_loss':>12}"
            if self.verbosity > 1:
                cols += f" {'bytes_up':>12} {'bytes_down':>12}"
            print(cols, file=self.stream, flush=True)

    def iteration(self, loop, row):
        if self.bar is not None:
            self.bar.update(row["comm_rounds"],
                            f"{row['comm_rounds']}/{self.bar.total} rounds  iter "
                            f"{row['iteration']}  loss {row['loss']:.8e}  "
                            f"|g| {row['grad_norm']:.1e}")
        if not self.lines:
            return
        acc = row["test_accuracy"]
        line = (f"{row['iteration']:5d} {row['comm_rounds']:7d} {row['loss']:22.15e} "
                f"{row['grad_norm']:10.3e} {'' if math.isnan(acc) else f'{acc:.4f}':>8} "
                f"{row['wall_time']:9.3f}")
        if self.validated:
            line += f" {row['validation_loss']:12.6e}"
        if self.verbosity > 1:
            line += f" {row['bytes_up']:12d} {row['bytes_down']:12d}"
        print(line, file=self.stream, flush=True)

    def message(self, text):
        if self.lines:
            print(text, file=self.stream, flush=True)

    def end(self, loop, outcome):
        if self.bar is not None:
            self.bar.update(self.bar.last_done, self.bar.last_text, force=True)
            self.bar.close()
            self.bar = None
