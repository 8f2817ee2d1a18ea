"""The axes of ``distnewton plot --kind curves``: ``--logx``, ``--xlim``, ``--ylim``.

Why these exist: gd needs thousands of rounds where the Newton-type methods
need tens, so on a linear x axis every Newton curve is squeezed into the left
1% of the plot.  A log x axis shows both; a limited one zooms in.

- **log x** is matplotlib's ``symlog`` scale, linear between 0 and the
  decade at or below the smallest positive x of any run (:func:`linthresh`:
  1 for rounds), logarithmic beyond: every run starts at x = 0 (its initial
  point), which a plain log axis would drop.
- **automatic log x** (:func:`auto_logx`): when neither ``--logx/--no-logx``
  nor ``--xlim`` is given and the runs' x ranges differ by more than
  :data:`AUTO_LOGX_RATIO` times, the axis is log and a note says so.
- **limits** (:func:`parse_limits`): ``LO:HI`` or ``LO,HI``, either end may be
  left out (``:50``, ``1e-10:``).  With ``--xlim`` and no ``--ylim`` the y
  axis fits the points inside the x window (zooming on gd's first 50 rounds
  shows them, not the whole descent).  The y axis is logarithmic (relative
  suboptimality), so ``--ylim`` ends must be > 0; with ``--y validation_loss``
  (a loss) it is linear and any finite ends do.  A window in which no run
  has a point is an error: the figure would be empty.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import UserError

#: x ranges (largest last x over smallest) past which the x axis becomes log
AUTO_LOGX_RATIO = 30.0
#: width of symlog's linear part [0, linthresh], in decades: one, as wide as
#: a decade, so that the ticks 0 and linthresh keep their labels apart
LINSCALE = 1.0
UNITS = {"rounds": "rounds", "time": "s", "bytes": "bytes", "modelled": "modelled s"}
SYNTAX = "expected LO:HI (numbers; either end may be left out: 10:, :500)"


def parse_limits(text, option, positive=False):
    """``--xlim``/``--ylim`` text as (lo, hi), None for an end left out; None
    for no option.  A UserError names ``option`` and the value."""
    if text is None:
        return None
    parts = text.split(":") if ":" in text else text.split(",")
    if len(parts) != 2:
        raise UserError(f"{option}: {text!r}: {SYNTAX}")
    ends = [_number(p, text, option) for p in parts]
    lo, hi = ends
    if lo is None and hi is None:
        raise UserError(f"{option}: {text!r}: give LO, HI or both")
    if lo is not None and hi is not None and not lo < hi:
        raise UserError(f"{option}: {text!r}: LO must be below HI")
    if positive and any(v is not None and v <= 0 for v in ends):
        raise UserError(f"{option}: {text!r}: the axis is logarithmic: limits must be > 0")
    return lo, hi


def _number(part, text, option):
    part = part.strip()
    if not part:
        return None
    try:
        v = float(part)
    except ValueError:
        raise UserError(f"{option}: {text!r}: {SYNTAX}") from None
    if not math.isfinite(v):
        raise UserError(f"{option}: {text!r}: limits must be finite numbers")
    return v


def auto_logx(series, xlim, x):
    """(log x?, note or None) when the user chose neither: log when the runs'
    last x values differ by more than :data:`AUTO_LOGX_RATIO` times."""
    if xlim is not None:
        return False, None
    ends = [(float(np.max(xs)), label) for label, xs, _, _ in series if len(xs)]
    ends = [(v, label) for v, label in ends if v > 0]
    if len(ends) < 2:
        return False, None
    (lo, lo_label), (hi, hi_label) = min(ends), max(ends)
    if hi <= AUTO_LOGX_RATIO * lo:
        return False, None
    unit = UNITS.get(x, x)
    return True, (f"x ranges differ {hi / lo:.0f}-fold ({hi_label}: {hi:g} {unit}, "
                  f"{lo_label}: {lo:g} {unit}): log x axis (--no-logx keeps it linear, "
                  "--xlim LO:HI zooms in)")


def apply_axes(ax, series, logx, xlim, ylim, x, logy=True):
    """Scales and limits of the curves' axes (see the module's docstring); ``logy``
    False: a linear y axis (``--y validation_loss``: a loss, possibly negative)."""
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("symlog", linthresh=linthresh(series), linscale=LINSCALE)
    visible = _visible(series, xlim, ylim)
    if not visible.size:
        raise UserError(_empty_window(xlim, ylim))
    if xlim is not None:
        ax.set_xlim(*_ends(xlim, [xs for _, xs, _, _ in series], logx))
    if ylim is not None:
        ax.set_ylim(*_ends(ylim, [visible], logy))
    elif xlim is not None:
        lo, hi = float(visible.min()), float(visible.max())
        pad = 0.05 * (hi - lo) or 1.0
        ax.set_ylim(*((lo / 2.0, hi * 2.0) if logy else (lo - pad, hi + pad)))


def linthresh(series):
    """symlog's linear part ends at the decade at or below the smallest positive
    x of any run (1 for rounds): the tick there is a round number."""
    positive = [float(np.min(xs[xs > 0])) for _, xs, _, _ in series if np.any(xs > 0)]
    if not positive:
        return 1.0
    return 10.0 ** math.floor(math.log10(min(positive)))


def _visible(series, xlim, ylim):
    """The y values of the points inside both windows."""
    out = []
    for _, xs, ys, _ in series:
        keep = _within(xs, xlim) & _within(ys, ylim)
        out.append(ys[keep])
    return np.concatenate(out) if out else np.empty(0)


def _within(values, lim):
    keep = np.ones(len(values), dtype=bool)
    if lim is not None:
        lo, hi = lim
        if lo is not None:
            keep &= values >= lo
        if hi is not None:
            keep &= values <= hi
    return keep


def _ends(lim, arrays, log):
    """Both ends of a limit: an end left out is the data's own, with a margin
    (5% of the span on a linear axis, a factor 2 on a log one)."""
    lo, hi = lim
    values = np.concatenate([np.asarray(a, dtype=np.float64) for a in arrays])
    inside = values[_within(values, lim)]
    if lo is None:
        lo = float(inside.min())
        if log:
            lo = lo / 2.0 if lo > 0 else lo          # symlog: x = 0 stays the left edge
        else:
            lo = lo - 0.05 * (hi - lo)
    if hi is None:
        hi = float(inside.max())
        hi = hi * 2.0 if log else hi + 0.05 * (hi - lo)
    if not lo < hi:                 # a single point: widen around it
        lo, hi = (lo / 2.0, hi * 2.0) if log and lo > 0 else (lo - 1.0, hi + 1.0)
    return lo, hi


def _empty_window(xlim, ylim):
    given = [f"{name} {_show(lim)}" for name, lim in (("--xlim", xlim), ("--ylim", ylim))
             if lim is not None]
    return f"{' with '.join(given)} holds no point of any run (the figure would be empty)"


def _show(lim):
    return ":".join("" if v is None else f"{v:g}" for v in lim)
