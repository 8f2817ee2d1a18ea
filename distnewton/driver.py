"""A run from resolved config to result: data setup on the master, the
iteration loop, stopping rules and the per-round log line.

The loop (on the master) is::

    evaluate w0                                  (logging only, not charged)
    repeat: alg.step()        timed into wall_time, its rounds counted
            evaluate alg.w    loss, ||grad||, test accuracy (logging only)
            stop? converged / max_rounds / max_iterations / stalled / diverged
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from .algorithms import ALGORITHMS
from .algorithms import primitives as P
from .linalg import preload as preload_linalg
from .objectives import LOSSES
from .problem import Problem, Setup, file_sha256, lambda_value, prepare  # noqa: F401
from .progress import Bar, is_tty
from .record import Outcome
from .stopping import requested as stop_requested
from . import checkpoint as _checkpoint  # noqa: F401  (registers worker tasks on every rank)
from . import multiclass as _multiclass  # noqa: F401  (the same)


def algorithm_params(cfg):
    """The algorithm section without its name, as the workers' ``ctx.params``."""
    from types import SimpleNamespace
    return SimpleNamespace(**{k: v for k, v in cfg["algorithm"].items() if k != "name"})


class Printer:
    """One line per iteration on rank 0 (``-q``: none, ``-v``: bytes too).

    When stderr is a terminal (and neither ``-q`` nor ``-v``), a progress bar
    on stderr (rounds out of ``run.max_rounds``) replaces the lines on a
    terminal stdout; a redirected stdout still gets the lines.
    """

    def __init__(self, verbosity, stream=None, bar_stream=None):
        self.verbosity, self.stream = verbosity, stream or sys.stdout
        self.bar_stream = bar_stream or sys.stderr
        self.bar = None
        self.lines = verbosity > 0

    def header(self, total_rounds=None):
        if self.verbosity == 1 and is_tty(self.bar_stream):
            self.bar = Bar(total_rounds, stream=self.bar_stream)
            self.lines = not is_tty(self.stream)
        if self.lines:
            cols = f"{'iter':>5} {'rounds':>7} {'loss':>22} {'grad_norm':>10} {'test_acc':>8} {'seconds':>9}"
            if self.verbosity > 1:
                cols += f" {'bytes_up':>12} {'bytes_down':>12}"
            print(cols, file=self.stream, flush=True)

    def row(self, h):
        if self.bar is not None:
            self.bar.update(h.last("comm_rounds"),
                            f"{h.last('comm_rounds')}/{self.bar.total} rounds  iter "
                            f"{h.last('iteration')}  loss {h.last('loss'):.8e}  "
                            f"|g| {h.last('grad_norm'):.1e}")
        if not self.lines:
            return
        acc = h.last("test_accuracy")
        line = (f"{h.last('iteration'):5d} {h.last('comm_rounds'):7d} {h.last('loss'):22.15e} "
                f"{h.last('grad_norm'):10.3e} {'' if math.isnan(acc) else f'{acc:.4f}':>8} "
                f"{h.last('wall_time'):9.3f}")
        if self.verbosity > 1:
            line += f" {h.last('bytes_up'):12d} {h.last('bytes_down'):12d}"
        print(line, file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.update(self.bar.last_done, self.bar.last_text, force=True)
            self.bar.close()


def test_metrics(problem, test, w):
    """(accuracy, mean test loss) on the master's test set; NaNs without one."""
    if test is None:
        return math.nan, math.nan
    Xt, yt = test
    z = Xt @ w
    loss = float(np.mean(LOSSES[problem.loss].value(z, yt)))
    # sklearn's rule: +1 when x.w > 0, else -1 (rows with no features have x.w = 0)
    acc = float(np.mean(np.where(z > 0, 1.0, -1.0) == yt)) if problem.loss == "logistic" else math.nan
    return acc, loss


def drive(rt, cfg, problem, test, printer, resume=None, checkpoint=None, w0=None):
    """Run the configured algorithm on ``rt``, from ``w0`` (default zeros).

    ``resume``: a :class:`~distnewton.checkpoint.Resume` to continue from.
    ``checkpoint(outcome)``: called every ``run.checkpoint_every`` rounds with
    a provisional :class:`~distnewton.record.Outcome` (status ``running``).
    Returns the :class:`~distnewton.record.Outcome` (``alg``, ``history``,
    ``status``, ``message``, ``state``), where ``state`` is the checkpoint
    (counters, worker images) when one is due at the end: a stop by signal,
    or ``run.checkpoint_every`` set.
    """
    from .checkpoint import gather_workers, restore_algorithm, scatter_workers
    from .results import TIMING_COLUMNS, History
    cls = ALGORITHMS[cfg["algorithm"]["name"]]
    params = {k: v for k, v in cfg["algorithm"].items() if k != "name"}
    if cfg["run"]["latency_model"]:
        rt.modelled_latency = float(cfg["run"]["latency_model"]["per_round"])
    start = np.zeros(problem.d) if w0 is None else np.array(w0, dtype=np.float64)
    alg = cls(rt, problem, params, start, seed=cfg["run"]["seed"])
    run = cfg["run"]
    lm = run["latency_model"]
    hist = History({**cls.columns, **({"modelled_time": np.float64} if lm else {})})

    times = {k: 0.0 for k in TIMING_COLUMNS}

    def record(iteration, wall, info, step_seconds=None):
        rt_times = rt.collect_times()   # the step's rounds; None: rounds before any step
        if step_seconds is not None:    # wall time = compute (master + workers) + comm
            times["time_compute"] += step_seconds - rt_times.rounds + rt_times.compute
            times["time_comm"] += rt_times.comm
            times["time_idle"] += rt_times.idle
        with rt.evaluating():
            f, g = P.loss_grad(rt, problem, alg.w)
        acc, tloss = test_metrics(problem, test, alg.w)
        c = rt.algo
        if lm:   # the paper's high-latency network, modelled; never changes wall_time
            info["modelled_time"] = (wall + lm["per_round"] * c.rounds
                                     + lm["per_byte"] * (c.bytes_up + c.bytes_down))
        hist.append(iteration=iteration, comm_rounds=c.rounds, bytes_up=c.bytes_up,
                    bytes_down=c.bytes_down, loss=f, grad_norm=float(np.linalg.norm(g)),
                    test_accuracy=acc, test_loss=tloss, wall_time=wall, **times, **info)
        printer.row(hist)
        return f, float(np.linalg.norm(g))

    def snapshot():
        counters = {"iteration": it, "wall_time": wall, "g0": g0, "n_workers": rt.K,
                    "comm_rounds": rt.algo.rounds, "bytes_up": rt.algo.bytes_up,
                    "bytes_down": rt.algo.bytes_down}
        return counters, gather_workers(rt)

    printer.header(run["max_rounds"])
    if run["liblinear_eps"] is not None:           # LIBLINEAR's rule: logging-only round
        with rt.evaluating():
            scale = P.liblinear_scale(rt, problem)
        run = {**run, "liblinear_eps": run["liblinear_eps"] * scale}
    if resume is None:
        f, gnorm = record(0, 0.0, {})
        g0, wall, it = gnorm, 0.0, 0
        if w0 is not None:
            g0 = zero_gradient_norm(rt, problem)
            status, message = stop_reason(run, f, gnorm, g0, 0, 0, "")
            if status in ("converged", "diverged"):         # the warm start is the answer
                printer.close()
                return Outcome(alg, hist, status, message,
                               snapshot() if run["checkpoint_every"] else None)
    else:
        hist.extend(resume.history)
        c = resume.counters
        g0, wall, it = float(c["g0"]), float(c["wall_time"]), int(c["iteration"])
        for k in times:
            times[k] = float(hist.last(k)) if math.isfinite(hist.last(k)) else 0.0
        rt.algo.rounds, rt.algo.bytes_up, rt.algo.bytes_down = (
            int(c["comm_rounds"]), int(c["bytes_up"]), int(c["bytes_down"]))
        restore_algorithm(alg, resume.path)
        if int(c["n_workers"]) == rt.K:
            scatter_workers(rt, resume.images)
    preload_linalg()              # after the first round, before the timed steps
    every = run["checkpoint_every"]
    best_f = f_prev = float(hist.last("loss"))      # divergence guard: best model, rises
    best_w, rising = alg.w.copy(), 0
    while True:
        t0 = time.perf_counter()
        rounds_before = rt.algo.rounds
        info = alg.step()
        step_seconds = time.perf_counter() - t0
        wall += step_seconds
        it += info.pop("iterations", 1)
        f, gnorm = record(it, wall, info, step_seconds)
        rising = rising + 1 if f > f_prev else 0
        f_prev = f
        status, message = stop_reason(run, f, gnorm, g0, rt.algo.rounds, it, alg.stalled, rising)
        if not status and stop_requested():
            status, message = "stopped", (f"{stop_requested()} received: stopped cleanly; "
                                          "continue with distnewton run --resume FILE")
        if status == "diverged":
            alg.w = best_w                    # keep the best model seen
        elif f < best_f:
            best_f, best_w = f, alg.w.copy()
        if status:
            printer.close()
            state = snapshot() if (status == "stopped" or every) else None
            return Outcome(alg, hist, status, message, state)
        if every and rt.algo.rounds // every > rounds_before // every and checkpoint:
            checkpoint(Outcome(alg, hist, "running", "checkpoint", snapshot()))


def zero_gradient_norm(rt, problem):
    """||grad f(0)||, the reference of ``run.grad_rtol`` (one logging-only round,
    counted in eval_rounds): a warm start's own gradient would make a start near
    the optimum chase a tolerance far below a cold run's, and never stop."""
    with rt.evaluating():
        _, g = P.loss_grad(rt, problem, np.zeros(problem.d))
    return float(np.linalg.norm(g))


DIVERGED_HINT = ("the result keeps the best model seen; try a smaller step size "
                 "(step_size, lr, gamma, eta) or a larger model.lambda")


def stop_reason(run, f, gnorm, g0, rounds, it, stalled, rising=0):
    """(status, message) when the run should stop, else ("", "")."""
    if not (math.isfinite(f) and math.isfinite(gnorm)):
        return "diverged", f"loss or gradient is not finite: {DIVERGED_HINT}"
    if run["divergence_patience"] and rising >= run["divergence_patience"]:
        return "diverged", f"loss grew for {rising} iterations in a row: {DIVERGED_HINT}"
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
