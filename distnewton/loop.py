"""The iteration loop on the master, its stopping rules and its record.

One :class:`Loop` runs one algorithm on one runtime::

    evaluate w0                                  (logging only, not charged)
    repeat: alg.step()        timed into wall_time, its rounds counted
            evaluate alg.w    loss, ||grad||, test accuracy (logging only)
            monitors          see the row (lines, progress bar, callbacks)
            stop?             converged / max_rounds / max_iterations /
                              stalled / diverged / stopped (signal, monitor)
            checkpoint due?   every run.checkpoint_every rounds

:class:`~distnewton.session.Session` builds the loop (a one-vs-rest run
builds one per class); the loop owns the :class:`~distnewton.io.record.History`
and ends with an :class:`~distnewton.io.record.Outcome`.
"""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np

from .algorithms import ALGORITHMS
from . import l1 as l1_term
from .algorithms import primitives as P
from .divergence import Guard
from .io.checkpoint import gather_workers, restore_algorithm, scatter_workers
from .io.resume import check_layout
from .io.record import History, Outcome
from .io.schema import TIMING_COLUMNS
from .linalg import preload as preload_linalg
from .monitors import Monitor
from .multinomial import test_metrics as multinomial_metrics
from .objectives import LOSSES, is_classification
from .stopping import cut as stop_cut
from .stopping import loaded as stop_loaded
from .stopping import pending as stop_pending
from .stopping import requested as stop_requested
from .validation import Tracker
from .validation import columns as validation_columns

DIVERGED_HINT = ("the result keeps the best model seen; try a smaller step size "
                 "(step_size, lr, gamma, eta) or a larger model.lambda")

#: why a run whose warm start already has a non-finite loss stops at once (no step
#: size is to blame: every method needs f and grad f at its start)
WARM_NOT_FINITE = ("model.w0: the loss or gradient at the warm start is not finite (e.g. "
                   "poisson's exp(x.w) overflows past x.w = 709.78): no method can step "
                   "from it; start from a smaller model, or from 0 (no model.w0)")


def quiet_overflow():
    """An iteration's float errors: an overflow or NaN is not printed as numpy's
    RuntimeWarning; the loss or gradient it makes is not finite and the run stops
    as ``diverged`` (:func:`stop_reason`) with :data:`DIVERGED_HINT`."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


def algorithm_section(cfg) -> dict:
    """The algorithm section without its name: the algorithm's parameters."""
    return {k: v for k, v in cfg["algorithm"].items() if k != "name"}


def algorithm_params(cfg):
    """The algorithm's parameters as the workers' ``ctx.params``."""
    return SimpleNamespace(**algorithm_section(cfg))


def test_metrics(problem, test, w):
    """(accuracy, mean test loss) on the master's test set; NaNs without one."""
    if test is None:
        return math.nan, math.nan
    if getattr(problem, "classes", 0):          # model.multiclass: multinomial
        return multinomial_metrics(test, w, problem.classes)
    Xt, yt = test
    z = Xt @ w
    loss = float(np.mean(LOSSES[problem.loss].value(z, yt)))
    # sklearn's rule: +1 when x.w > 0, else -1 (rows with no features have x.w = 0)
    acc = (float(np.mean(np.where(z > 0, 1.0, -1.0) == yt))
           if is_classification(problem.loss) else math.nan)
    return acc, loss


def zero_model(rt, problem):
    """(f(0), ||grad f(0)||) in one logging-only round (counted in eval_rounds).
    ||grad f(0)|| is the reference of ``run.grad_rtol``: a warm start's own
    gradient would make a start near the optimum chase a tolerance far below a
    cold run's, and never stop.  f(0) bounds the divergence guard's reference
    loss from below (:func:`distnewton.divergence.reference_loss`).  With an L1
    term, F(0) = f(0) and the pseudo-gradient's norm (:mod:`distnewton.l1`)."""
    w0 = np.zeros(problem.d)
    with rt.evaluating():
        f, g = P.loss_grad(rt, problem, w0)
    if getattr(problem, "l1", 0.0):
        return l1_term.objective(problem, w0, f, g)
    return float(f), float(np.linalg.norm(g))


def zero_gradient_norm(rt, problem):
    """||grad f(0)|| (:func:`zero_model`)."""
    return zero_model(rt, problem)[1]


def stop_reason(run, f, gnorm, g0, rounds, it, stalled, rising=0, diverging=""):
    """(status, message) when the run should stop, else ("", "").  ``diverging``:
    the message of the divergence guard's rule that fired
    (:meth:`distnewton.divergence.Guard.see`), "" when none did."""
    if not (math.isfinite(f) and math.isfinite(gnorm)):
        return "diverged", f"loss or gradient is not finite: {DIVERGED_HINT}"
    if run["divergence_patience"] and rising >= run["divergence_patience"]:
        return "diverged", f"loss grew for {rising} iterations in a row: {DIVERGED_HINT}"
    if diverging:
        return "diverged", f"{diverging}: {DIVERGED_HINT}"
    if run["grad_norm"] is not None and gnorm <= run["grad_norm"]:
        return "converged", f"||grad|| = {gnorm:.3e} <= run.grad_norm"
    if run["grad_rtol"] is not None and gnorm <= run["grad_rtol"] * g0:
        return "converged", f"||grad|| = {gnorm:.3e} <= run.grad_rtol * ||grad f(0)||"
    if run.get("liblinear_eps") is not None and gnorm <= run["liblinear_eps"] * g0:
        return "converged", (f"||grad|| = {gnorm:.3e} <= run.liblinear_eps * "
                             "max(min(#pos, #neg), 1)/n * ||grad f(0)||")
    if run["target_loss"] is not None and f <= run["target_loss"]:
        return "converged", f"loss {f:.15e} <= run.target_loss"
    if run["target_subopt"] is not None:
        fs = run["f_star"]
        if (f - fs) / abs(fs) <= run["target_subopt"]:
            return "converged", "relative suboptimality <= run.target_subopt"
    if stalled:
        return "stalled", stalled
    if rounds >= run["max_rounds"]:
        return "max_rounds", f"{rounds} communication rounds (run.max_rounds)"
    if run["max_iterations"] is not None and it >= run["max_iterations"]:
        return "max_iterations", f"{it} iterations (run.max_iterations)"
    return "", ""


def stop_message(name, before, rounds, cut):
    """The message of a run stopped by signal ``name`` after communication round ``rounds``;
    ``before``: the signal was pending before that iteration's step; ``cut``:
    this process's cut local phase (:func:`distnewton.stopping.cut`; the sim
    backend's workers, or rank 0's own block)."""
    if before:
        where = ""
    elif cut is not None:
        what, done, total = cut
        where = (f" during the local phase of round {rounds}: cut after {done} of "
                 f"{total} {what}")
    else:
        where = f" during round {rounds} (its local phases, if any, were cut short)"
    return (f"{name} received{where}: stopped cleanly; continue with "
            "distnewton run --resume FILE")


class Loop:
    """The configured algorithm on ``rt`` from ``w0`` (default zeros), watched by
    ``monitors`` (:mod:`distnewton.monitors`); :meth:`run` returns the Outcome."""

    def __init__(self, rt, cfg, problem, test=None, monitors=(), w0=None, validation=None):
        cls = ALGORITHMS[cfg["algorithm"]["name"]]
        self.rt, self.problem, self.test = rt, problem, test
        self.monitors = list(monitors)
        self.run = dict(cfg["run"])
        self.latency = self.run["latency_model"]
        if self.latency:
            rt.modelled_latency = float(self.latency["per_round"])
        start = np.zeros(problem.d) if w0 is None else np.array(w0, dtype=np.float64)
        self.warm = w0 is not None
        self.alg = cls(rt, problem, algorithm_section(cfg), start, seed=cfg["run"]["seed"])
        self.validation = Tracker.build(cfg, validation)     # data.validation's rows
        self.history = History({**cls.columns,
                                **({"modelled_time": np.float64} if self.latency else {}),
                                **validation_columns(self.validation)})
        self.times = {k: 0.0 for k in TIMING_COLUMNS}
        self.it, self.wall, self.g0 = 0, 0.0, None
        self.f_zero = math.nan            # f(0) of a warm start (the guard's reference)
        self.stop_asked = None                     # the monitor that asked for a stop

    # -- one history row ---------------------------------------------------------
    def record(self, info, step_seconds=None):
        """Evaluate the model (logging only), append a row, show it to the
        monitors; returns (f, ||grad f||)."""
        rt, times = self.rt, self.times
        rt_times = rt.collect_times()   # the step's rounds; None: rounds before any step
        if step_seconds is not None:    # wall time = compute (master + workers) + comm
            times["time_compute"] += step_seconds - rt_times.rounds + rt_times.compute
            times["time_comm"] += rt_times.comm
            times["time_idle"] += rt_times.idle
        with rt.evaluating():
            f, g = P.loss_grad(rt, self.problem, self.alg.w)
        if getattr(self.problem, "l1", 0.0):     # F = f + lambda_1 ||w||_1, ||pg||
            f, gnorm = l1_term.objective(self.problem, self.alg.w, f, g)
        else:
            gnorm = float(np.linalg.norm(g))
        acc, tloss = test_metrics(self.problem, self.test, self.alg.w)
        if self.validation is not None:          # logging only, like the test set
            info.update(self.validation.observe(self.it, *test_metrics(
                self.problem, self.validation.data, self.alg.w), self.alg.w))
        c, lm = rt.algo, self.latency
        if lm:   # the paper's high-latency network, modelled; never changes wall_time
            info["modelled_time"] = (self.wall + lm["per_round"] * c.rounds
                                     + lm["per_byte"] * (c.bytes_up + c.bytes_down))
        self.history.append(iteration=self.it, comm_rounds=c.rounds, bytes_up=c.bytes_up,
                            bytes_down=c.bytes_down, loss=f, grad_norm=gnorm,
                            test_accuracy=acc, test_loss=tloss, wall_time=self.wall,
                            **times, **info)
        row = {k: v[-1] for k, v in self.history.rows.items()}
        for m in self.monitors:
            if m.iteration(self, row) and self.stop_asked is None:
                self.stop_asked = getattr(m, "name", type(m).__name__)
        return f, gnorm

    def snapshot(self):
        """The checkpoint state: (counters, worker images); gathers the workers'."""
        rt = self.rt
        counters = {"iteration": self.it, "wall_time": self.wall, "g0": self.g0,
                    "n_workers": rt.K, "comm_rounds": rt.algo.rounds,
                    "f_zero": self.f_zero,
                    "bytes_up": rt.algo.bytes_up, "bytes_down": rt.algo.bytes_down}
        return counters, gather_workers(rt)

    def resume(self, resume):
        """Continue from a :class:`~distnewton.io.resume.Resume`."""
        check_layout(self.alg, resume)        # before any state changes
        self.history.extend(resume.history)
        c, hist = resume.counters, self.history
        self.g0, self.wall, self.it = (float(c["g0"]), float(c["wall_time"]),
                                       int(c["iteration"]))
        self.f_zero = float(c.get("f_zero", math.nan))
        for k in self.times:
            self.times[k] = float(hist.last(k)) if math.isfinite(hist.last(k)) else 0.0
        self.rt.algo.rounds, self.rt.algo.bytes_up, self.rt.algo.bytes_down = (
            int(c["comm_rounds"]), int(c["bytes_up"]), int(c["bytes_down"]))
        restore_algorithm(self.alg, resume.path)
        if int(c["n_workers"]) == self.rt.K:
            scatter_workers(self.rt, resume.images)

    def finish(self, status, message, state):
        outcome = Outcome(self.alg, self.history, status, message, state)
        for m in self.monitors:
            m.end(self, outcome)
        return outcome

    # -- the loop ------------------------------------------------------------------
    def start(self, resume=None):
        """Row 0 (or the resumed history); an Outcome when a warm start is already
        the answer, else None."""
        stop_loaded()                 # a stop signal now stops at the end of an iteration
        for m in self.monitors:
            m.start(self)
        if self.run["liblinear_eps"] is not None:     # LIBLINEAR's rule: logging-only round
            with self.rt.evaluating():
                scale = P.liblinear_scale(self.rt, self.problem)
            self.run["liblinear_eps"] = self.run["liblinear_eps"] * scale
        if resume is not None:
            self.resume(resume)
            return None
        with quiet_overflow():        # a warm start may overflow (poisson's exp(x.w))
            f, gnorm = self.record({})
        self.g0 = gnorm
        if self.warm:
            self.f_zero, self.g0 = zero_model(self.rt, self.problem)
            status, message = stop_reason(self.run, f, gnorm, self.g0, 0, 0, "")
            if status == "diverged" and not (math.isfinite(f) and math.isfinite(gnorm)):
                message = WARM_NOT_FINITE
            if status in ("converged", "diverged"):         # the warm start is the answer
                return self.finish(status, message,
                                   self.snapshot() if self.run["checkpoint_every"] else None)
        return None

    def iterate(self, resume=None):
        """Run to a stop: the :class:`~distnewton.io.record.Outcome` (``state``:
        the checkpoint when one is due at the end: a stop, or
        ``run.checkpoint_every`` set)."""
        done = self.start(resume)
        if done is not None:
            return done
        preload_linalg()              # after the first round, before the timed steps
        rt, alg, run = self.rt, self.alg, self.run
        every = run["checkpoint_every"]
        writers = [m for m in self.monitors if type(m).checkpoint is not Monitor.checkpoint]
        guard = Guard(run, self.history.rows["loss"][0], self.f_zero, alg.w)
        guard.replay(self.history.rows["loss"])
        while True:
            t0 = time.perf_counter()
            rounds_before = rt.algo.rounds
            signalled = stop_pending()
            with quiet_overflow():
                info = alg.step()
                step_seconds = time.perf_counter() - t0
                self.wall += step_seconds
                self.it += info.pop("iterations", 1)
                f, gnorm = self.record(info, step_seconds)
            diverging = guard.see(f, alg.w)
            status, message = stop_reason(run, f, gnorm, self.g0, rt.algo.rounds, self.it,
                                          alg.stalled, diverging=diverging)
            if not status and self.validation is not None:     # run.early_stopping
                status, message = self.validation.verdict()
                alg.w = self.validation.best_w if status else alg.w
            if not status and stop_requested():
                status, message = "stopped", stop_message(stop_requested(), signalled,
                                                          rt.algo.rounds, stop_cut())
            elif not status and self.stop_asked is not None:
                status, message = "stopped", (f"stopped by the monitor {self.stop_asked}; "
                                              "continue with distnewton run --resume FILE")
            if status == "diverged":
                alg.w = guard.best_w              # keep the best model seen
            if status:
                state = self.snapshot() if (status == "stopped" or every) else None
                return self.finish(status, message, state)
            if every and rt.algo.rounds // every > rounds_before // every and writers:
                outcome = Outcome(alg, self.history, "running", "checkpoint", self.snapshot())
                for m in writers:
                    m.checkpoint(self, outcome)
