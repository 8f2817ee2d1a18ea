"""Phase labels of ``distnewton plot`` placed so that they cannot collide.

A label (``L=2``, ``-> giant``) names the point where a run changed phase.
Drawn at a fixed offset, the labels of nearby changes -- or of several runs
whose changes sit at the same few rounds, squeezed against the y axis beside
gd's thousands -- fall on top of each other and of the axis.  Here each label
tries a ring of offsets around its point (right, left, above, below, then
further out) and takes the first whose box, measured by the renderer in
display pixels:

- lies inside the axes (never over the tick labels or outside the plot);
- overlaps no label placed before (nor its leader line), no phase marker
  and not the legend, and its own leader crosses no label;
- and, on the first pass, crosses no curve (the second pass accepts a curve
  under the label's white box rather than losing the label).

A label with no such place is left out (:func:`place_labels` returns how
many); the triangle on the curve and the legend's "phase / L change" entry
still mark the change.  Measuring needs a drawn figure: call after the axes'
scales, limits, legend and layout are final.
"""

from __future__ import annotations

from dataclasses import dataclass

#: (dx, dy) in points, with the text's alignment: close ones first, then further out
OFFSETS = [(dx * r, dy * r) for r in (1, 2.5, 4)
           for dx, dy in ((6, 5), (6, -5), (-6, 5), (-6, -5), (0, 9), (0, -9))]
PAD = 2.0          # pixels kept free around every box
#: the thin line from a label placed further out to its point
LEADER = {"arrowstyle": "-", "linewidth": 0.6, "shrinkA": 0, "shrinkB": 5, "alpha": 0.7}
BOX = {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85}


@dataclass
class Label:
    """One phase change to label: the data point, its text and colour."""

    x: float
    y: float
    text: str
    color: str
    priority: int = 1       # lower is placed first (gets the closest free spot)


def _alignment(dx, dy):
    ha = "left" if dx > 0 else "right" if dx < 0 else "center"
    va = "bottom" if dy > 0 else "top"
    return ha, va


def _padded(box, pad=PAD):
    """``box`` grown by ``pad`` pixels on every side."""
    return type(box).from_extents(box.x0 - pad, box.y0 - pad, box.x1 + pad, box.y1 + pad)


def _inside(box, frame):
    return (box.x0 >= frame.x0 and box.x1 <= frame.x1
            and box.y0 >= frame.y0 and box.y1 <= frame.y1)


def leader(at, box):
    """The display-space segment from a label's point to its box's centre: the
    leader line drawn lies on it."""
    from matplotlib.path import Path
    return Path([tuple(at), ((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2)])


@dataclass
class Scene:
    """What a label must keep clear of, in display pixels."""

    renderer: object
    frame: object           # the axes' box: labels stay inside
    blocked: list           # boxes no label box may overlap: markers, legend, labels
    labels: list            # boxes no leader may cross: the legend and the labels
    leaders: list           # the placed labels' leaders: no box may lie on one
    curves: list            # the curves' paths (avoided on the first pass)


def _fits(box, at, scene, strict):
    """Whether a label box (for the point ``at``) may go there (see the
    module's rules); its leader may cross no other label either."""
    if not _inside(box, scene.frame) or any(box.overlaps(t) for t in scene.blocked):
        return False
    line = leader(at, box)
    if any(line.intersects_bbox(t, filled=True) for t in scene.labels):
        return False
    if any(other.intersects_bbox(box, filled=True) for other in scene.leaders):
        return False
    return not (strict and any(p.intersects_bbox(box, filled=False) for p in scene.curves))


def obstacles(fig, ax, markers, legend) -> Scene:
    """The :class:`Scene` of a drawn figure.

    ``markers``: the phase-marker Line2D artists (their boxes are blocked);
    ``legend``: the axes' legend or None (blocked when it lies inside the axes)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [] if legend is None else [_padded(legend.get_window_extent(renderer))]
    curves = [line.get_transform().transform_path(line.get_path())
              for line in ax.get_lines()
              if line.get_linestyle() != "None" and len(line.get_xdata()) > 1]
    return Scene(renderer, ax.get_window_extent(renderer),
                 [_padded(m.get_window_extent(renderer)) for m in markers] + boxes,
                 list(boxes), [], curves)


def place_labels(fig, ax, labels, markers=(), legend=None, fontsize=7):
    """Annotate ``labels`` (a list of :class:`Label`, by priority) where they
    collide with nothing; returns the number left out.  Labels whose point is
    outside the axes' view (``--xlim``/``--ylim``) are left out and not counted."""
    scene = obstacles(fig, ax, markers, legend)
    dropped = 0
    for lab in sorted(labels, key=lambda lab: lab.priority):
        at = ax.transData.transform((lab.x, lab.y))
        if not scene.frame.contains(*at):
            continue
        box = _first_place(ax, lab, at, scene, fontsize)
        if box is None:
            dropped += 1
        else:
            scene.blocked.append(box)
            scene.labels.append(box)
            scene.leaders.append(leader(at, box))
    return dropped


def _first_place(ax, lab, at, scene, fontsize):
    """Try the offsets (curves avoided, then not): keep the first annotation
    that fits and return its box, else remove it and return None.  A label
    placed further out gets a leader line to its point; the text's box (not
    the leader's) is what must fit."""
    from matplotlib.text import Text
    for strict in (True, False):
        for dx, dy in OFFSETS:
            ha, va = _alignment(dx, dy)
            far = abs(dx) > 6 or abs(dy) > 9
            ann = ax.annotate(lab.text, (lab.x, lab.y), textcoords="offset points",
                              xytext=(dx, dy), ha=ha, va=va, fontsize=fontsize,
                              color=lab.color, zorder=6, bbox=BOX, annotation_clip=True,
                              arrowprops=LEADER | {"color": lab.color} if far else None)
            ann.update_positions(scene.renderer)
            box = _padded(Text.get_window_extent(ann, scene.renderer))
            if _fits(box, at, scene, strict):
                return box
            ann.remove()
    return None
