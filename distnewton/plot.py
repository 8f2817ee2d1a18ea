"""``distnewton plot``: convergence curves and time-to-target bars (matplotlib, Agg).

``--kind curves`` (default): relative suboptimality ``(f - f*)/|f*|`` on a log
axis against communication rounds, wall time, bytes or modelled time
(``--x rounds|time|bytes|modelled``), one line per result file.  Where an
algorithm changes phase (history columns ``phase`` or ``L``: Adaptive
LocalNewton's L decrements and its switch to GIANT) the line gets a marker
and a small label, placed where it collides with nothing
(:mod:`distnewton.plotlabels`).  Values <= 0 (a run at f* to the last digit)
are drawn at :data:`FLOOR`.  The x axis may be logarithmic or limited, the y
axis limited (``--logx``, ``--xlim``, ``--ylim``: :mod:`distnewton.plotaxes`;
log x is chosen by itself when the runs' x ranges differ more than 30-fold);
a line gets a dot per point only where its points are apart on the drawn
axis (:func:`mark_points`); past 5 runs the legend goes beside the axes.

``--y validation_loss`` (or ``test_loss``) draws that history column instead: the
mean data loss on ``data.validation``'s rows (recorded by :mod:`distnewton.validation`,
the curve ``run.early_stopping`` watches) or on ``data.test``, on a linear y axis
(a loss, not a gap: Poisson's may be negative) with the best iteration starred;
no f* is needed, rows where the column is NaN are left out, and a run without the
column is a one-line error naming its file.

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
#: y axes of the curves: name -> (history column or None for the suboptimality, label)
Y_AXES = {"subopt": (None, "relative suboptimality (f - f*) / |f*|"),
          "validation_loss": ("validation_loss",
                              "validation loss (mean data loss on data.validation)"),
          "test_loss": ("test_loss", "test loss (mean data loss on data.test)")}
#: where each column comes from: the hint of the error for a run without it
Y_SOURCE = {"validation_loss": "data.validation", "test_loss": "data.test"}
#: points at least this many pixels apart along x get markers (:func:`mark_points`)
MARKER_GAP = 4.0
#: line styles after each 10 runs (the colour cycle's length)
LINESTYLES = ("-", "--", ":", "-.")
#: more runs than this: the legend goes to the right of the axes, not over the curves
LEGEND_INSIDE_UP_TO = 5


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


def plot_curves(runs, out, x="rounds", title=None, logx=None, xlim=None, ylim=None,
                y="subopt"):
    """``runs``: [(Run, f*, f* source)].  Writes ``out``; returns the notes for
    the user (the automatic log x axis, labels left out), one line each."""
    notes = []
    _save_and_close(draw_curves(runs, x, title, logx, xlim, ylim, notes, y), out)
    return notes


def curve_series(runs, x, y="subopt"):
    """[(label, xs, ys, phase changes)] in the order of ``runs``.  ``y`` subopt: the
    runs whose f* is known, ys = max((f - f*) / |f*|, FLOOR); a history column
    (:data:`Y_AXES`): its finite values, every run (one without the column: a
    UserError naming its file)."""
    out = []
    for (run, fs, _), label in zip(runs, labels_for(runs)):
        if y != "subopt":
            out.append(column_series(run, label, x, y))
            continue
        if fs is None:
            continue
        ys = np.maximum(rel_subopt(run.history["loss"], fs), FLOOR)
        out.append((label, x_values(run.history, x), ys, phase_changes(run.history)))
    return out


def column_series(run, label, x, y):
    """(label, xs, ys, phase changes) of history column ``y`` at its finite rows (the
    phase changes' row indices renumbered to them)."""
    col = Y_AXES[y][0]
    values = run.history.get(col)
    keep = np.isfinite(np.asarray(values, dtype=np.float64)) if values is not None else None
    if keep is None or not keep.any():
        raise UserError(f"--y {y}: {run.path} has no {col} values (the run had no "
                        f"{Y_SOURCE[y]})")
    rows = np.flatnonzero(keep)
    at = {int(r): i for i, r in enumerate(rows)}
    changes = [(at[j], text) for j, text in phase_changes(run.history) if j in at]
    return (label, x_values(run.history, x)[rows],
            np.asarray(values, dtype=np.float64)[rows], changes)


def line_style(index):
    """Matplotlib keywords of run ``index``'s line: past the 10 colours of the
    cycle, dashed, then dotted... so that no two runs look alike.  Markers are
    decided once the axes are final (:func:`mark_points`)."""
    return {"linewidth": 1.4, "linestyle": LINESTYLES[index // 10 % len(LINESTYLES)]}


def marker_gap(ax, line):
    """The median distance along x, in pixels, between a line's consecutive
    points as drawn (the axes' scale and limits applied)."""
    xs = np.asarray(line.get_xdata(), dtype=np.float64)
    if len(xs) < 2:
        return np.inf
    px = ax.transData.transform(np.column_stack([xs, np.ones_like(xs)]))[:, 0]
    return float(np.median(np.abs(np.diff(px))))


def mark_points(ax, lines):
    """A marker on every point of the lines whose points lie at least
    :data:`MARKER_GAP` pixels apart along x (median): there they show the
    iterations; closer (gd's thousands of rounds, or tens of rounds squeezed
    beside them) they would merge into a thick smear."""
    for line in lines:
        if marker_gap(ax, line) >= MARKER_GAP:
            line.set_marker("o")
            line.set_markersize(2.5)


def draw_curves(runs, x="rounds", title=None, logx=None, xlim=None, ylim=None, notes=None,
                y="subopt"):
    """The figure of :func:`plot_curves`, not saved: one line per run,
    (x, max((f - f*) / |f*|, FLOOR)) on a log y axis, in the order of ``runs``
    (``y``: a history column of :data:`Y_AXES` on a linear axis instead).

    ``logx``: True/False, or None to decide (:func:`distnewton.plotaxes.auto_logx`);
    ``xlim``/``ylim``: (lo, hi) with None for an end left to matplotlib
    (:func:`distnewton.plotaxes.parse_limits`); ``notes``: a list the notes go to."""
    from .plotaxes import apply_axes, auto_logx
    from .plotlabels import place_labels
    series = curve_series(runs, x, y)
    if not series:
        raise UserError("no run to plot: f* is unknown for every file (pass --f-star)")
    notes = [] if notes is None else notes
    if logx is None:
        logx, note = auto_logx(series, xlim, x)
        if note:
            notes.append(note)
    plt = _pyplot()
    many = len(series) > LEGEND_INSIDE_UP_TO
    fig, ax = plt.subplots(figsize=(9.5 if many else 7.5, 4.8), dpi=120)
    lines, markers, labels = _draw_series(ax, series)
    if y != "subopt":
        _star_best(ax, series, lines)
    try:
        apply_axes(ax, series, logx, xlim, ylim, x, logy=y == "subopt")
    except UserError:
        plt.close(fig)
        raise
    ax.set_xlabel(X_AXES[x][1])
    ax.set_ylabel(Y_AXES[y][1])
    ax.grid(True, which="major", alpha=0.4)
    ax.grid(True, which="minor", alpha=0.12)
    ax.set_title(title if title is not None else _default_title(runs))
    if markers:
        ax.plot([], [], marker="v", color="gray", markeredgecolor="black", linestyle="none",
                label="phase / L change")
    legend = (ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                        borderaxespad=0.0) if many else ax.legend(fontsize=8))
    fig.tight_layout()                  # the axes' final place: then markers and labels
    mark_points(ax, lines)
    dropped = place_labels(fig, ax, labels, markers, None if many else legend)
    if dropped:
        notes.append(f"{dropped} of {len(labels)} phase labels left out where they would "
                     "overlap (the triangles mark every change; --logx or --xlim spreads "
                     "them)")
    return fig


def _draw_series(ax, series):
    """One line per run and a triangle at each phase change: (the lines, the
    triangles, the :class:`~distnewton.plotlabels.Label` of each change; a
    switch of phase is placed before the L changes)."""
    from .plotlabels import Label
    lines, markers, labels = [], [], []
    for i, (label, xs, ys, changes) in enumerate(series):
        (line,) = ax.plot(xs, ys, label=label, **line_style(i))
        lines.append(line)
        for j, text in changes:
            markers += ax.plot(xs[j], ys[j], marker="v", markersize=8, color=line.get_color(),
                               markeredgecolor="black", linestyle="none", zorder=5)
            labels.append(Label(float(xs[j]), float(ys[j]), text, line.get_color(),
                                priority=0 if text.startswith("->") else 1))
    return lines, markers, labels


def best_points(series):
    """[(x, y)] of each series' lowest y (the first where tied): for a validation loss,
    the iterate ``run.early_stopping`` keeps."""
    out = []
    for _, xs, ys, _ in series:
        i = int(np.argmin(ys))
        out.append((float(xs[i]), float(ys[i])))
    return out


def _star_best(ax, series, lines):
    """A star on each line's lowest point, and one legend entry for them."""
    for (bx, by), line in zip(best_points(series), lines):
        ax.plot(bx, by, marker="*", markersize=10, color=line.get_color(),
                markeredgecolor="black", linestyle="none", zorder=5)
    ax.plot([], [], marker="*", color="gray", markeredgecolor="black", linestyle="none",
            label="lowest (the model early stopping keeps)")


def _default_title(runs):
    names = sorted({os.path.basename(str(r.attrs.get("dataset", ""))) for r, _, _ in runs})
    return ", ".join(names)


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
