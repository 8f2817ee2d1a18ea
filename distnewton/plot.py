"""``distnewton plot``: convergence curves and time-to-target bars (matplotlib, Agg).

``--kind curves`` (default): relative suboptimality ``(f - f*)/|f*|`` on a log
axis against communication rounds, wall time, bytes or modelled time
(``--x rounds|time|bytes|modelled``), one line per result file.  Where an
algorithm changes phase (history columns ``phase`` or ``L``: Adaptive
LocalNewton's L decrements and its switch to GIANT) the line gets a marker
and a small label.  Values <= 0 (a run at f* to the last digit) are drawn at
:data:`FLOOR`.

``--kind bars``: for a ``--target`` (see :func:`distnewton.report.parse_target`)
two panels, communication rounds and seconds to reach it, one bar per run
(like Fig. 4 of the LocalNewton paper); runs that never reach it are marked
"not reached".

Needs matplotlib: ``pip install -e '.[plot]'``.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import UserError
from .report import rel_subopt, target_row

FLOOR = 1e-16
X_AXES = {"rounds": ("comm_rounds", "communication rounds"),
          "time": ("wall_time", "wall time (s)"),
          "bytes": (None, "bytes communicated (up + down)"),
          "modelled": ("modelled_time", "modelled time (s, run.latency_model)")}


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UserError("plot needs matplotlib: pip install -e '.[plot]' "
                        "(or pip install matplotlib)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def labels_for(runs):
    """Legend labels: algorithm and K, plus data set / file name when needed to tell apart."""
    base = [f"{r.attrs.get('algorithm', '?')} K={r.attrs.get('n_workers', '?')}"
            for r, _, _ in runs]
    datasets = {os.path.basename(str(r.attrs.get("dataset", ""))) for r, _, _ in runs}
    if len(datasets) > 1:
        base = [f"{b} {os.path.basename(str(r.attrs.get('dataset', '')))}"
                for b, (r, _, _) in zip(base, runs)]
    if len(set(base)) < len(base):
        base = [f"{b} ({os.path.splitext(os.path.basename(r.path))[0]})"
                for b, (r, _, _) in zip(base, runs)]
    return base


def x_values(history, x):
    col, _ = X_AXES[x]
    if col is None:
        return np.asarray(history["bytes_up"], dtype=np.float64) + history["bytes_down"]
    if col not in history:
        raise UserError(f"--x {x}: a run has no {col} column (set run.latency_model)")
    return np.asarray(history[col], dtype=np.float64)


def phase_changes(history):
    """[(row index, text)] where the ``phase`` or ``L`` column changes (from row 2 on:
    row 0 is the initial point, which has no phase)."""
    out = []
    phase = history.get("phase")
    L = history.get("L")
    for i in range(2, len(history["iteration"])):
        if phase is not None and phase[i] != phase[i - 1]:
            p = phase[i].decode() if isinstance(phase[i], bytes) else str(phase[i])
            out.append((i, f"-> {p}"))
        elif L is not None and L[i] != L[i - 1]:
            out.append((i, f"L={int(L[i])}"))
    return out


def plot_curves(runs, out, x="rounds", title=None):
    """``runs``: [(Run, f*, f* source)].  Writes ``out``."""
    _save_and_close(draw_curves(runs, x, title), out)


def draw_curves(runs, x="rounds", title=None):
    """The figure of :func:`plot_curves`, not saved: one semilog line per run,
    (x, max((f - f*) / |f*|, FLOOR)), in the order of ``runs``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    labels = labels_for(runs)
    drawn = 0
    for (run, fs, _), label in zip(runs, labels):
        if fs is None:
            continue
        xs = x_values(run.history, x)
        ys = np.maximum(rel_subopt(run.history["loss"], fs), FLOOR)
        (line,) = ax.semilogy(xs, ys, marker="o", markersize=2.5, linewidth=1.4, label=label)
        drawn += 1
        for j, (i, text) in enumerate(phase_changes(run.history)):
            ax.semilogy(xs[i], ys[i], marker="v", markersize=8, color=line.get_color(),
                        markeredgecolor="black", linestyle="none", zorder=5)
            ax.annotate(text, (xs[i], ys[i]), textcoords="offset points",
                        xytext=((7, 6), (7, -12), (7, 18))[j % 3], fontsize=7,
                        color=line.get_color(), zorder=4,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                              "alpha": 0.85})
    if not drawn:
        plt.close(fig)
        raise UserError("no run to plot: f* is unknown for every file (pass --f-star)")
    ax.set_xlabel(X_AXES[x][1])
    ax.set_ylabel("relative suboptimality (f - f*) / |f*|")
    ax.grid(True, which="major", alpha=0.4)
    ax.grid(True, which="minor", alpha=0.12)
    if title is None:
        names = sorted({os.path.basename(str(r.attrs.get("dataset", ""))) for r, _, _ in runs})
        title = ", ".join(names)
    ax.set_title(title)
    if any(phase_changes(r.history) for r, _, _ in runs):
        ax.plot([], [], marker="v", color="gray", markeredgecolor="black", linestyle="none",
                label="phase / L change")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def bar_values(runs, target, time="wall_time"):
    """[(label, rounds or None, seconds or None)] to reach ``target``."""
    out = []
    for (run, fs, _), label in zip(runs, labels_for(runs)):
        try:
            hit = target_row(run, fs, target)
        except LookupError:
            hit = None
        out.append((label, None if hit is None else hit["comm_rounds"],
                    None if hit is None else hit.get(time)))
    return out


def plot_bars(runs, out, target, title=None, time="wall_time"):
    """Rounds and seconds (``time``: wall_time or modelled_time) to reach ``target``."""
    _save_and_close(draw_bars(runs, target, title, time), out)


def draw_bars(runs, target, title=None, time="wall_time"):
    """The figure of :func:`plot_bars`, not saved: two panels (rounds, seconds),
    one horizontal bar per run that reached ``target``."""
    plt = _pyplot()
    if time == "modelled_time" and any("modelled_time" not in r.history for r, _, _ in runs):
        raise UserError("--x modelled: a run has no modelled_time column "
                        "(set run.latency_model)")
    values = bar_values(runs, target, time)
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.45 * len(values) + 2.2), dpi=120)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    y = np.arange(len(values))
    for ax, idx, xlabel in ((axes[0], 1, "communication rounds to target"),
                            (axes[1], 2, "seconds to target" if time == "wall_time"
                             else "modelled seconds to target")):
        vals = [v[idx] for v in values]
        top = max([v for v in vals if v is not None] or [1])
        for j, v in enumerate(vals):
            if v is None:
                ax.text(0, j, " not reached", va="center", fontsize=8, color="gray")
            else:
                ax.barh(j, v, color=colors[j % len(colors)])
                ax.text(v, j, f" {v:g}" if idx == 1 else f" {v:.3g}", va="center", fontsize=8)
        ax.set_xlim(0, top * 1.25)
        ax.locator_params(axis="x", nbins=5)
        ax.set_yticks(y)
        ax.set_yticklabels([v[0] for v in values] if idx == 1 else [], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(title or f"to reach {target}", fontsize=10)
    fig.tight_layout()
    return fig


def _save_and_close(fig, out):
    folder = os.path.dirname(os.path.abspath(out))
    try:
        os.makedirs(folder, exist_ok=True)
        fig.savefig(out)
    except (OSError, ValueError) as exc:
        raise UserError(f"-o {out}: cannot write ({exc})") from None
    finally:
        _pyplot().close(fig)
