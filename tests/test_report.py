"""`distnewton report` / `plot` and `distnewton.results.load`: values checked against
the HDF5 files by hand, the f* cache, clear errors for foreign/old/new/damaged files."""

import csv
import io
import json
import shutil

import h5py
import numpy as np
import pytest

from support.launch import cli, read_result, write_config, synth
from support.references import logistic_reference

from distnewton.errors import UserError
from distnewton.io.read import load

#: whole runs (processes, MPI or files): outside the `-m "not slow"` inner loop
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """newton, gd (stopped early) and adaptive_localnewton on one small synthetic set."""
    tmp = tmp_path_factory.mktemp("runs")
    data = synth(tmp / "small.svm", 600, 12)
    cfg = write_config(tmp / "c.yaml", data={"train": str(data)},
                       algorithm={"name": "newton"}, run={"max_rounds": 40})
    out = {}
    for name, extra in (("newton", []),
                        ("gd", ["--set", "algorithm.step_size=0.5", "--set", "run.max_rounds=6"]),
                        ("adaptive_localnewton", [])):
        out[name] = tmp / f"{name}.h5"
        res = cli("run", cfg, "--backend", "sim", "--workers", 3, "-q", "-o", out[name],
                  "--set", f"algorithm.name={name}", *extra)
        assert res.returncode == 0, res.stderr
    out["dir"] = tmp
    return out


def cache_env(tmp_path):
    return {"DISTNEWTON_CACHE": str(tmp_path / "cache")}


def report_csv(*args, env=None):
    res = cli("report", *args, "--format", "csv", extra_env=env)
    assert res.returncode == 0, res.stderr
    return list(csv.DictReader(io.StringIO(res.stdout)))


def first_hit(hist, mask):
    return int(np.nonzero(mask)[0][0])


def test_report_rows_and_rounds_to_target_match_the_files(runs, tmp_path):
    f_star = float(read_result(runs["newton"])[1]["loss"][-1])
    files = [runs[k] for k in ("newton", "gd", "adaptive_localnewton")]
    rows = report_csv(*files, "--f-star", repr(f_star), "--target", "rel:1e-6",
                      env=cache_env(tmp_path))
    assert [r["algorithm"] for r in rows] == ["newton", "gd", "adaptive_localnewton"]
    for row, path in zip(rows, files):
        attrs, h, _ = read_result(path)
        assert row["dataset"] == "small.svm" and int(row["workers"]) == 3
        assert row["status"] == attrs["status"]
        assert float(row["loss"]) == h["loss"][-1]
        assert float(row["rel_subopt"]) == pytest.approx((h["loss"][-1] - f_star) / f_star,
                                                         rel=1e-12, abs=1e-300)
        assert int(row["iterations"]) == h["iteration"][-1]
        assert int(row["rounds"]) == h["comm_rounds"][-1]
        assert int(row["bytes"]) == h["bytes_up"][-1] + h["bytes_down"][-1]
        assert float(row["wall_time"]) == pytest.approx(h["wall_time"][-1])
        for col in ("time_compute", "time_comm", "time_idle"):
            assert float(row[col]) == pytest.approx(h[col][-1])
        assert row["f_star_source"] == "--f-star"
        hit = np.nonzero((h["loss"] - f_star) / abs(f_star) <= 1e-6)[0]
        if hit.size:                               # reached: first such row, by hand
            i = int(hit[0])
            assert row["target_reached"] == "True"
            assert int(row["target_rounds"]) == h["comm_rounds"][i]
            assert int(row["target_bytes"]) == h["bytes_up"][i] + h["bytes_down"][i]
            assert float(row["target_seconds"]) == pytest.approx(h["wall_time"][i])
        else:
            assert row["target_reached"] == "False" and row["target_rounds"] == ""
    assert rows[0]["target_reached"] == "True" and rows[1]["target_reached"] == "False"

    # a loss target needs no f*; the table says "not reached"
    attrs, h, _ = read_result(runs["gd"])
    target = float(h["loss"][3])
    rows = report_csv(runs["gd"], "--target", f"loss:{target!r}", "--no-compute",
                      env=cache_env(tmp_path))
    assert int(rows[0]["target_rounds"]) == h["comm_rounds"][first_hit(h, h["loss"] <= target)]
    res = cli("report", runs["gd"], runs["newton"], "--target", "rel:1e-6", "--f-star",
              repr(f_star), extra_env=cache_env(tmp_path))
    assert res.returncode == 0, res.stderr
    gd_line = [l for l in res.stdout.splitlines() if l.startswith("gd.h5")][0]
    assert "not reached" in gd_line and "max_rounds" in gd_line


def test_f_star_is_computed_once_with_newton_and_cached(runs, tmp_path):
    env = cache_env(tmp_path)
    res = cli("report", runs["gd"], "--format", "json", extra_env=env)
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["f_star_source"] == "computed"
    # against scikit-learn's optimum of the same problem (Newton-Cholesky, tol 1e-12)
    f_ref = logistic_reference(runs["dir"] / "small.svm")[4]
    assert row["f_star"] == pytest.approx(f_ref, rel=1e-12)
    cache = json.loads((tmp_path / "cache" / "fstar.json").read_text())
    (key,) = cache
    attrs, _, _ = read_result(runs["gd"])
    assert key.startswith(attrs["dataset_sha256"] + "|logistic|")
    assert f"d={attrs['n_features']}" in key and "intercept=False" in key
    # the second report reads the cache (made recognisable by hand)
    cache[key]["f_star"] = 0.25
    (tmp_path / "cache" / "fstar.json").write_text(json.dumps(cache))
    (row,) = json.loads(cli("report", runs["gd"], "--format", "json", extra_env=env).stdout)
    assert row["f_star_source"] == "cache" and row["f_star"] == 0.25
    # the file's own run.f_star comes first
    out = tmp_path / "fs.h5"
    res = cli("run", runs["dir"] / "c.yaml", "--backend", "sim", "-q", "-o", out,
              "--set", "run.f_star=0.5", "--set", "run.max_rounds=2")
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(cli("report", out, "--format", "json", extra_env=env).stdout)
    assert row["f_star"] == 0.5 and row["f_star_source"].startswith("file")


def test_bad_target_and_missing_files_are_one_line_errors(runs, tmp_path):
    for target, text in (("rel:-1", "must be a finite number > 0"),
                         ("abc:1", "expected a loss"), ("loss:x", "not a number")):
        res = cli("report", runs["gd"], "--target", target, extra_env=cache_env(tmp_path))
        assert res.returncode == 2 and text in res.stderr, res.stderr
    res = cli("report", tmp_path / "nope.h5")
    assert res.returncode == 2 and "no such file" in res.stderr


@pytest.mark.parametrize("damage,text", [
    ("newer", "schema version 99 is newer"),
    ("older", "schema version 0 is older"),
    ("foreign", "not a distnewton result file"),
    ("truncated", "truncated file"),
    ("no_loss", "history lacks loss"),
    ("text", "not a readable HDF5 file"),
])
def test_old_new_foreign_and_damaged_files_give_a_clear_error(runs, tmp_path, damage, text):
    path = tmp_path / "r.h5"
    shutil.copy(runs["newton"], path)
    if damage in ("newer", "older"):
        with h5py.File(path, "r+") as f:
            f.attrs["schema_version"] = 99 if damage == "newer" else 0
    elif damage == "foreign":
        with h5py.File(path, "w") as f:
            f["x"] = np.arange(3)
    elif damage == "truncated":
        data = runs["newton"].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "no_loss":
        with h5py.File(path, "r+") as f:
            del f["history/loss"]
    else:
        path.write_text("iteration,loss\n0,0.69\n")
    with pytest.raises(UserError) as info:      # the API: a UserError, never a KeyError
        load(path)
    assert str(path) in str(info.value) and text in str(info.value)
    res = cli("report", path, "--f-star", "0.5")
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert res.returncode == 2 and len(lines) == 1 and text in lines[0], res.stderr


def test_load_api_arrays_attrs_and_dataframe(runs):
    run = load(runs["adaptive_localnewton"])
    attrs, hist, w = read_result(runs["adaptive_localnewton"])
    assert run.attrs["algorithm"] == "adaptive_localnewton" and run.attrs["n_workers"] == 3
    np.testing.assert_array_equal(run.history["loss"], hist["loss"])
    np.testing.assert_array_equal(run.w, w)
    assert {"L", "phase", "comm_rounds"} <= set(run.history)


def test_load_dataframe_with_pandas(runs):
    pd = pytest.importorskip("pandas")
    run = load(runs["adaptive_localnewton"])
    _, hist, _ = read_result(runs["adaptive_localnewton"])
    df = run.dataframe()
    assert isinstance(df, pd.DataFrame) and len(df) == len(hist["loss"])


def test_plot_curves_and_bars(runs, tmp_path):
    pytest.importorskip("matplotlib")
    from distnewton.plot import phase_changes
    _, h, _ = read_result(runs["adaptive_localnewton"])
    changes = phase_changes(h)
    expected = [i for i in range(2, len(h["L"]))
                if h["L"][i] != h["L"][i - 1] or h["phase"][i] != h["phase"][i - 1]]
    assert [i for i, _ in changes] == expected and expected      # L decrements / GIANT
    assert any(text == "-> giant" for _, text in changes)
    f_star = repr(float(read_result(runs["newton"])[1]["loss"][-1]))
    files = [runs[k] for k in ("newton", "gd", "adaptive_localnewton")]
    for args in (["--x", "rounds"], ["--kind", "bars", "--target", "rel:1e-6"]):
        out = tmp_path / f"{args[1]}.png"
        res = cli("plot", *files, "-o", out, "--f-star", f_star, *args)
        assert res.returncode == 0, res.stderr
        data = out.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    # the other axes and the errors, in-process (the same command through click)
    from click.testing import CliRunner

    from distnewton.cli import main
    runner = CliRunner()
    for x in ("time", "bytes"):
        out = tmp_path / f"{x}.png"
        res = runner.invoke(main, ["plot", *map(str, files), "-o", str(out), "--x", x,
                                   "--f-star", f_star])
        assert res.exit_code == 0, res.output
        assert out.read_bytes()[:4] == b"\x89PNG"
    for args, text in ((["--kind", "bars"], "needs --target"),
                       (["--x", "modelled"], "latency_model")):
        res = runner.invoke(main, ["plot", *map(str, files), "-o", str(tmp_path / "e.png"),
                                   "--f-star", f_star, *args])
        assert res.exit_code == 2 and text in res.output, res.output


def _main_lines(ax):
    """The curves (one per run), not the phase markers or the legend's dummy."""
    return [l for l in ax.get_lines() if l.get_linestyle() != "None"]


@pytest.mark.parametrize("x", ["rounds", "bytes", "time"])
def test_plot_draws_each_runs_history(runs, x):
    """The figure's data read back: one line per run, x from the history columns
    and y = (f - f*)/|f*| (floored at 1e-16 for the log axis) computed here by
    numpy from the HDF5 arrays; a marker at every L / phase change."""
    pytest.importorskip("matplotlib")
    from distnewton.plot import draw_curves
    from distnewton.report import collect
    f_star = float(read_result(runs["newton"])[1]["loss"][-1])
    files = [runs[k] for k in ("newton", "gd", "adaptive_localnewton")]
    loaded, _ = collect([str(f) for f in files], f_star=f_star, target=None, compute=False)
    fig = draw_curves(loaded, x)
    (ax,) = fig.axes
    lines = _main_lines(ax)
    assert [l.get_label() for l in lines] == [f"{a} K=3" for a in ("newton", "gd",
                                                                  "adaptive_localnewton")]
    for line, path in zip(lines, files):
        _, h, _ = read_result(path)
        xs = {"rounds": h["comm_rounds"], "bytes": h["bytes_up"] + h["bytes_down"],
              "time": h["wall_time"]}[x]
        ys = np.maximum((h["loss"] - f_star) / abs(f_star), 1e-16)
        np.testing.assert_array_equal(line.get_xdata(), xs.astype(float))
        np.testing.assert_allclose(line.get_ydata(), ys, rtol=1e-15, atol=0)
    assert ax.get_yscale() == "log"
    # markers where L or the phase changes (adaptive_localnewton only), by hand
    _, h, _ = read_result(runs["adaptive_localnewton"])
    changes = [i for i in range(2, len(h["L"]))
               if h["L"][i] != h["L"][i - 1] or h["phase"][i] != h["phase"][i - 1]]
    marks = [l for l in ax.get_lines() if l.get_linestyle() == "None" and len(l.get_xdata())]
    assert len(marks) == len(changes) > 0
    xs = {"rounds": h["comm_rounds"], "bytes": h["bytes_up"] + h["bytes_down"],
          "time": h["wall_time"]}[x]
    assert sorted(float(m.get_xdata()[0]) for m in marks) == sorted(float(xs[i]) for i in changes)
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_plot_bars_are_the_rounds_and_seconds_to_target(runs):
    pytest.importorskip("matplotlib")
    from distnewton.plot import draw_bars
    from distnewton.report import collect, parse_target
    f_star = float(read_result(runs["newton"])[1]["loss"][-1])
    files = [runs[k] for k in ("newton", "gd", "adaptive_localnewton")]
    tgt = parse_target("rel:1e-6")
    loaded, _ = collect([str(f) for f in files], f_star=f_star, target=tgt, compute=False)
    fig = draw_bars(loaded, tgt)
    rounds_ax, seconds_ax = fig.axes
    expect_rounds, expect_seconds = [], []
    for path in files:                                  # first row at 1e-6, by hand
        _, h, _ = read_result(path)
        hit = np.nonzero((h["loss"] - f_star) / abs(f_star) <= 1e-6)[0]
        if hit.size:
            expect_rounds.append(float(h["comm_rounds"][hit[0]]))
            expect_seconds.append(float(h["wall_time"][hit[0]]))
    assert 0 < len(expect_rounds) < len(files)          # gd (6 rounds) does not get there
    assert [b.get_width() for b in rounds_ax.patches] == expect_rounds
    np.testing.assert_allclose([b.get_width() for b in seconds_ax.patches], expect_seconds,
                               rtol=1e-12)
    assert sum(t.get_text() == " not reached" for t in rounds_ax.texts) == \
        len(files) - len(expect_rounds)
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_plot_png_pixels_show_every_curve(runs, tmp_path):
    """The written PNG decoded: the figure's size, and each run's line colour
    drawn on a substantial number of pixels (a blank or partial image fails)."""
    pytest.importorskip("matplotlib")
    import matplotlib.image as mpimg
    from matplotlib.colors import to_rgb
    f_star = repr(float(read_result(runs["newton"])[1]["loss"][-1]))
    files = [runs[k] for k in ("newton", "gd", "adaptive_localnewton")]
    out = tmp_path / "c.png"
    res = cli("plot", *files, "-o", out, "--f-star", f_star, "--x", "rounds")
    assert res.returncode == 0, res.stderr
    img = mpimg.imread(out)[..., :3]
    assert img.shape[:2] == (int(4.8 * 120), int(7.5 * 120))     # figsize x dpi
    for colour in ("C0", "C1", "C2"):                   # the default cycle, in run order
        near = np.all(np.abs(img - np.array(to_rgb(colour))) < 0.06, axis=-1)
        assert near.sum() > 200, (colour, near.sum())


def test_an_f_star_run_that_does_not_converge_gives_no_f_star(runs, tmp_path, monkeypatch,
                                                                capsys):
    """newton stopped by its round budget (here 1 round) has a best loss above f*: the
    report warns and leaves f* unknown instead of printing a wrong suboptimality (seen
    on news20 multinomial, where 500 Newton-CG rounds ended at 0.38 against 0.17)."""
    from distnewton import report
    monkeypatch.setenv("DISTNEWTON_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(report, "F_STAR_ROUNDS", 1)
    f_star, source = report.f_star_of(load(runs["gd"]))
    assert (f_star, source) == (None, "unknown")
    err = capsys.readouterr().err
    assert "cannot compute f*: newton ended max_rounds after 2 rounds" in err   # + f(w0)
    assert not (tmp_path / "cache" / "fstar.json").exists()      # nothing cached
    monkeypatch.setattr(report, "F_STAR_ROUNDS", 500)           # the default converges
    f_star, source = report.f_star_of(load(runs["gd"]))
    assert source == "computed"
    assert f_star == pytest.approx(logistic_reference(runs["dir"] / "small.svm")[4], rel=1e-12)
