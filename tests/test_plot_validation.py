"""``distnewton plot --y validation_loss`` (and ``test_loss``): the validation loss that
``data.validation`` / ``run.early_stopping`` record, drawn as curves.

The figure is read back (the lines' data, the star, the scales and labels) and
compared with the HDF5 histories read by h5py and with numpy's mean loss of the
kept model on the validation rows, not with what the plotting code computes.  A
Poisson run's validation loss is negative (exp(z) - y z): the y axis is linear."""

import numpy as np
import pytest
import scipy.sparse as sp

from distnewton import solve
from distnewton.data import write_libsvm
from distnewton.errors import UserError

from support.launch import cli, read_result

plt = pytest.importorskip("matplotlib.pyplot")


def noisy(n, d=30, seed=0):
    """An over-fitting logistic problem (small lambda): the validation loss turns up."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(X @ np.linspace(-1, 1, d) + 3.0 * rng.standard_normal(n) > 0, 1.0, -1.0)
    return X, y


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two result files with a validation file (gd with early stopping, newton without)
    and one without data.validation; the validation rows."""
    tmp = tmp_path_factory.mktemp("plotval")
    X, y = noisy(400)
    Xv, yv = noisy(200, seed=1)
    write_libsvm(tmp / "val.svm", Xv, yv)
    out = {"X": Xv, "y": yv}
    for key, name, extra in (("gd", "gd", {"early_stopping": 3}), ("newton", "newton", {})):
        out[key] = tmp / f"{key}.h5"
        solve({"model": {"lambda": 1e-6}, "algorithm": {"name": name},
               "data": {"validation": str(tmp / "val.svm")},
               "run": {"max_rounds": 300, **extra}},
              data=(X, y), output=str(out[key]), warn=False)
    out["plain"] = tmp / "plain.h5"
    solve({"algorithm": {"name": "newton"}}, data=(X, y), output=str(out["plain"]), warn=False)
    return out


def draw(paths, **kw):
    from distnewton.plot import draw_curves
    from distnewton.report import collect
    loaded, _ = collect([str(p) for p in paths], compute=False)
    fig = draw_curves(loaded, "rounds", notes=[], y="validation_loss", **kw)
    return fig, fig.axes[0]


def test_the_curves_are_the_recorded_validation_loss_and_the_star_the_kept_model(runs):
    fig, ax = draw([runs["gd"], runs["newton"]])
    try:
        assert ax.get_yscale() == "linear"
        assert ax.get_ylabel().startswith("validation loss")
        lines = [ln for ln in ax.get_lines() if ln.get_linestyle() != "None"]
        stars = [ln for ln in ax.get_lines() if ln.get_marker() == "*" and len(ln.get_xdata())]
        assert len(lines) == 2 and len(stars) == 2
        for line, star, key in zip(lines, stars, ("gd", "newton")):
            attrs, h, w = read_result(runs[key])
            np.testing.assert_array_equal(line.get_xdata(), h["comm_rounds"].astype(float))
            np.testing.assert_array_equal(line.get_ydata(), h["validation_loss"])
            best = int(np.argmin(h["validation_loss"]))
            assert star.get_xdata()[0] == h["comm_rounds"][best]
            assert star.get_ydata()[0] == h["validation_loss"].min()
        # gd stopped early and kept its best model: numpy's loss of it is the starred value
        attrs, h, w = read_result(runs["gd"])
        numpy_loss = np.mean(np.logaddexp(0.0, -runs["y"] * (runs["X"] @ w)))
        assert stars[0].get_ydata()[0] == pytest.approx(numpy_loss, rel=1e-12)
        assert h["validation_loss"][-1] > h["validation_loss"].min()   # it turned up
    finally:
        plt.close(fig)


def test_ylim_on_the_linear_axis_takes_any_finite_ends(runs):
    fig, ax = draw([runs["gd"]], ylim=(-1.0, 5.0))
    try:
        assert ax.get_ylim() == (-1.0, 5.0)
    finally:
        plt.close(fig)


def test_a_run_without_data_validation_is_refused_naming_its_file(runs):
    with pytest.raises(UserError, match=r"^--y validation_loss: .*plain\.h5 has no "
                                        r"validation_loss values \(the run had no "
                                        r"data\.validation\)$"):
        draw([runs["gd"], runs["plain"]])


def test_a_poisson_runs_negative_validation_loss_is_drawn_as_recorded(tmp_path):
    from support.poisson import count_problem
    X, y = count_problem(n=300, d=4, offset=2.0)
    path = tmp_path / "p.h5"
    solve({"model": {"loss": "poisson", "lambda": 1e-3, "fit_intercept": True},
           "algorithm": {"name": "newton"},
           "data": {"validation": 0.3}}, data=(sp.csr_matrix(X), y), output=str(path),
          warn=False)
    _, h, _ = read_result(path)
    assert h["validation_loss"][0] == 1.0              # w = 0: mean exp(0) - y 0
    assert h["validation_loss"][-1] < 0                # exp(z) - y z, counts ~ e^2
    fig, ax = draw([path])
    try:
        line = next(ln for ln in ax.get_lines() if ln.get_linestyle() != "None")
        np.testing.assert_array_equal(line.get_ydata(), h["validation_loss"])
        lo, hi = ax.get_ylim()
        assert lo <= h["validation_loss"].min() < 0 < hi
    finally:
        plt.close(fig)


@pytest.mark.slow
def test_cli_plot_y_validation_loss_needs_no_f_star_and_refuses_bars(runs, tmp_path):
    out = tmp_path / "v.png"
    res = cli("plot", runs["gd"], runs["newton"], "-o", out, "--y", "validation_loss",
              "--no-compute", "--ylim", "-1:5")
    assert res.returncode == 0, res.stderr
    assert out.stat().st_size > 0
    res = cli("plot", runs["gd"], "-o", tmp_path / "b.png", "--kind", "bars",
              "--target", "rel:1e-6", "--y", "validation_loss")
    assert res.returncode == 2
    assert res.stderr.strip() == ("distnewton: error: --y validation_loss: only for --kind "
                                  "curves")
