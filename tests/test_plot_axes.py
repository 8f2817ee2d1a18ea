"""`distnewton plot` axes a user can read (issue 29): ``--logx`` (symlog from 0,
automatic past a 30-fold x range), ``--xlim``/``--ylim``, markers only where the
points are apart, phase labels that never overlap, the legend beside many runs.

Each figure is read back (scales, limits, the lines' data, the labels' boxes
as the renderer measures them) and compared with the HDF5 histories read by
h5py and the closed-form rules, not with what the plotting code computes.
"""

import itertools

import numpy as np
import pytest

from support.launch import cli, read_result, synth, write_config

#: whole runs through the CLI: outside the `-m "not slow"` inner loop
pytestmark = pytest.mark.slow

plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """gd (400 rounds), newton, giant and three adaptive_localnewton runs (L0 = 6:
    many L changes at nearly the same rounds) on one small synthetic set; f*."""
    tmp = tmp_path_factory.mktemp("plotruns")
    data = synth(tmp / "small.svm", 800, 15)
    cfg = write_config(tmp / "c.yaml", data={"train": str(data)},
                       algorithm={"name": "newton"}, run={"max_rounds": 60})
    out = {}
    specs = {"gd": ("gd", 3, ["--set", "run.max_rounds=400", "--set", "run.grad_rtol=null",
                              "--set", "algorithm.step_size=0.5"]),
             "newton": ("newton", 3, []), "giant": ("giant", 3, []),
             **{f"al{k}": ("adaptive_localnewton", k,
                           ["--set", "algorithm.L0=6", "--set", "algorithm.delta=0.01"])
                for k in (2, 3, 4)}}
    for key, (name, k, extra) in specs.items():
        out[key] = tmp / f"{key}.h5"
        res = cli("run", cfg, "--backend", "sim", "--workers", k, "-q", "-o", out[key],
                  "--set", f"algorithm.name={name}", *extra)
        assert res.returncode == 0, res.stderr
    out["f_star"] = float(read_result(out["newton"])[1]["loss"][-1])
    return out


def load(runs, *keys):
    from distnewton.report import collect
    loaded, _ = collect([str(runs[k]) for k in keys], f_star=runs["f_star"], target=None,
                        compute=False)
    return loaded


def draw(runs, keys, **kw):
    from distnewton.plot import draw_curves
    notes = []
    fig = draw_curves(load(runs, *keys), "rounds", notes=notes, **kw)
    return fig, fig.axes[0], notes


def curves(ax):
    """The runs' lines (not the phase triangles or the legend's dummy)."""
    return [l for l in ax.get_lines() if l.get_linestyle() != "None"]


def has_markers(line):
    return line.get_marker() not in (None, "None", "", " ")


def history(runs, key):
    _, h, _ = read_result(runs[key])
    ys = np.maximum((h["loss"] - runs["f_star"]) / abs(runs["f_star"]), 1e-16)
    return h["comm_rounds"].astype(float), ys


def test_logx_is_symlog_linear_to_one_round_and_keeps_every_point(runs):
    keys = ("gd", "newton", "giant")
    fig, ax, notes = draw(runs, keys, logx=True)
    assert ax.get_xscale() == "symlog" and ax.get_yscale() == "log"
    tr = ax.xaxis.get_transform()
    assert tr.linthresh == 1.0 and tr.linscale == 1.0       # rounds: the decade of 1
    for line, key in zip(curves(ax), keys):
        xs, ys = history(runs, key)
        assert xs[0] == 0.0                                  # the initial point is drawn
        np.testing.assert_array_equal(line.get_xdata(), xs)
        np.testing.assert_allclose(line.get_ydata(), ys, rtol=1e-15, atol=0)
    assert notes == []                                       # chosen, nothing to say
    plt.close(fig)


def test_log_x_is_automatic_past_a_30_fold_range_with_a_note(runs):
    gd_end = history(runs, "gd")[0][-1]
    newton_end = history(runs, "newton")[0][-1]
    assert gd_end > 30 * newton_end                          # 400 rounds against ~10
    fig, ax, notes = draw(runs, ("gd", "newton"))
    assert ax.get_xscale() == "symlog"
    assert len(notes) == 1 and f"differ {gd_end / newton_end:.0f}-fold" in notes[0]
    assert "--no-logx" in notes[0] and "gd K=3: 400 rounds" in notes[0]
    plt.close(fig)
    for kw in ({"logx": False}, {"xlim": (0.0, 50.0)}):       # a choice made: no guess
        fig, ax, notes = draw(runs, ("gd", "newton"), **kw)
        assert ax.get_xscale() == "linear" and not any("fold" in n for n in notes)
        plt.close(fig)
    giant_end = history(runs, "giant")[0][-1]
    assert max(giant_end, newton_end) <= 30 * min(giant_end, newton_end)
    fig, ax, notes = draw(runs, ("newton", "giant"))         # alike ranges: linear
    assert ax.get_xscale() == "linear" and notes == []
    plt.close(fig)


def test_xlim_sets_the_view_and_y_fits_the_points_inside(runs):
    fig, ax, _ = draw(runs, ("gd", "newton"), xlim=(0.0, 20.0))
    assert ax.get_xlim() == (0.0, 20.0)
    inside = np.concatenate([ys[xs <= 20] for xs, ys in (history(runs, "gd"),
                                                         history(runs, "newton"))])
    assert ax.get_ylim() == pytest.approx((inside.min() / 2, inside.max() * 2), rel=1e-12)
    plt.close(fig)
    # gd alone from round 100 on: y is its own tail, not the whole descent
    fig, ax, _ = draw(runs, ("gd",), xlim=(100.0, None))
    xs, ys = history(runs, "gd")
    tail = ys[xs >= 100]
    assert ax.get_xlim() == pytest.approx((100.0, 400.0 + 0.05 * 300.0))
    assert ax.get_ylim() == pytest.approx((tail.min() / 2, tail.max() * 2), rel=1e-12)
    assert ax.get_ylim()[1] < ys[0]
    plt.close(fig)


def test_ylim_sets_the_log_view_an_open_end_is_the_datas(runs):
    fig, ax, _ = draw(runs, ("newton", "giant"), ylim=(1e-10, 1.0))
    assert ax.get_ylim() == pytest.approx((1e-10, 1.0), rel=1e-12)
    assert ax.get_yscale() == "log"
    plt.close(fig)
    fig, ax, _ = draw(runs, ("newton",), ylim=(1e-8, None))
    _, ys = history(runs, "newton")
    assert ax.get_ylim() == pytest.approx((1e-8, ys.max() * 2), rel=1e-12)
    plt.close(fig)


def test_markers_only_where_the_points_are_apart(runs):
    """gd's 400 rounds never get markers; Newton's ~10 rounds get them on a log
    x axis or zoomed in, not squeezed beside gd on a linear one."""
    fig, ax, _ = draw(runs, ("gd", "newton"), logx=False)
    gd, newton = curves(ax)
    assert not has_markers(gd) and not has_markers(newton)
    plt.close(fig)
    fig, ax, _ = draw(runs, ("gd", "newton"), logx=True)
    gd, newton = curves(ax)
    assert not has_markers(gd) and has_markers(newton)
    plt.close(fig)
    fig, ax, _ = draw(runs, ("gd", "newton"), xlim=(0.0, 20.0))
    assert all(has_markers(line) for line in curves(ax))     # 1 round = ~30 pixels
    plt.close(fig)


def label_boxes(fig, ax):
    """[(text, its box, its leader: the segment from the point to the box's
    centre)] of the phase labels, in display pixels (the text alone: an
    annotation's own extent includes its leader line)."""
    from matplotlib.path import Path
    from matplotlib.text import Text
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    out = []
    for t in ax.texts:
        box = Text.get_window_extent(t, r)
        at = ax.transData.transform(t.xy)
        out.append((t.get_text(), box, Path([at, ((box.x0 + box.x1) / 2,
                                                   (box.y0 + box.y1) / 2)])))
    return out, r


def phase_count(runs, keys):
    n = 0
    for key in keys:
        _, h, _ = read_result(runs[key])
        if "L" not in h:                              # gd: no phases
            continue
        n += sum(1 for i in range(2, len(h["L"]))
                 if h["L"][i] != h["L"][i - 1] or h["phase"][i] != h["phase"][i - 1])
    return n


@pytest.mark.parametrize("logx", [True, False])
def test_phase_labels_never_overlap_and_stay_inside(runs, logx):
    """Three adaptive runs (many L changes at nearly the same rounds) beside gd:
    every label box inside the axes, clear of the others and of the legend; the
    ones left out are counted in a note, never drawn on top."""
    keys = ("gd", "al2", "al3", "al4")
    fig, ax, notes = draw(runs, keys, logx=logx)
    boxes, r = label_boxes(fig, ax)
    frame = ax.get_window_extent(r)
    legend = ax.get_legend().get_window_extent(r)
    for _, b, _ in boxes:
        assert frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1
        assert not b.overlaps(legend)
    for (t1, b1, l1), (t2, b2, l2) in itertools.permutations(boxes, 2):
        assert not b1.overlaps(b2), (t1, t2)
        assert not l1.intersects_bbox(b2), (t1, "leader over", t2)
    total = phase_count(runs, keys)
    dropped = [int(n.split()[0]) for n in notes if "phase labels left out" in n]
    assert len(boxes) + sum(dropped) == total and total > 10
    if not logx:                          # squeezed against the y axis: some must go
        assert dropped and dropped[0] > 0
    texts = {t for t, _, _ in boxes}
    assert texts <= {"-> giant"} | {f"L={k}" for k in range(1, 7)}
    plt.close(fig)


def test_many_runs_put_the_legend_beside_the_axes(runs):
    keys = ("gd", "newton", "giant", "al2", "al3", "al4")
    fig, ax, _ = draw(runs, keys)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    assert ax.get_legend().get_window_extent(r).x0 > ax.get_window_extent(r).x1
    assert fig.get_size_inches()[0] == pytest.approx(9.5)
    plt.close(fig)


def test_the_options_through_the_cli(runs, tmp_path):
    """The same through `distnewton plot`: a PNG, the note on stderr, the
    file's name alone on stdout."""
    out = tmp_path / "f.png"
    res = cli("plot", runs["gd"], runs["newton"], "-o", out, "--f-star",
              repr(runs["f_star"]))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out) and out.read_bytes()[:4] == b"\x89PNG"
    assert "distnewton: note: x ranges differ" in res.stderr
    res = cli("plot", runs["gd"], runs["newton"], "-o", out, "--f-star",
              repr(runs["f_star"]), "--logx", "--xlim", "0:100", "--ylim", "1e-12:1")
    assert res.returncode == 0 and "note" not in res.stderr, res.stderr
