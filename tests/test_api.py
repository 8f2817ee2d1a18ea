"""The Python API: ``distnewton.solve`` -> ``Result``, against the command line.

``solve`` runs the CLI's own pipeline, so on the sim backend its iterates are
the CLI's bit for bit, and under ``mpiexec`` (every rank calls ``solve``) they
match ``mpiexec ... distnewton run`` to 1e-12.  Also: dict configs, ``set=``
overrides with the ``--set`` semantics, ``output=``/``Result.save`` files that
``results.load`` reads back as the same Result, bad input raising UserError
with the CLI's one-line message, and the optimum against scikit-learn.
"""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from support.launch import ROOT, cli, env, mpiexec, own_lines, read_result, synth, write_config

import distnewton
from distnewton.errors import UserError
from distnewton.io.read import Run, load
from distnewton.io.record import FIELDS, Result

#: Columns that hold seconds: they differ between any two runs.
TIME_COLUMNS = {"wall_time", "time_compute", "time_comm", "time_idle", "modelled_time"}
#: Attributes that are the same for the same run wherever it is started from.
RUN_ATTRS = ("algorithm", "loss", "lambda", "n_workers", "backend", "dataset_sha256",
             "n_samples", "n_features", "seed", "partition_seed", "status", "message",
             "setup_bytes", "eval_rounds", "eval_bytes", "schema_version")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api")
    return synth(folder / "train.svm", 400, 10, density=0.6, seed=5)


def raw_config(train, algorithm="giant", **run):
    return {"data": {"train": str(train)}, "model": {"loss": "logistic", "lambda": "1/n"},
            "algorithm": {"name": algorithm}, "run": {"max_rounds": 40, **run}}


def config_file(tmp_path, train, algorithm="giant", **run):
    return write_config(tmp_path / f"{algorithm}.yaml", **raw_config(train, algorithm, **run))


def assert_same_iterates(result, hist, w, exact=True):
    """``result`` has the model and every non-time history column of (hist, w)."""
    same = (np.testing.assert_array_equal if exact else
            lambda a, b, err_msg="": np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12,
                                                                err_msg=err_msg))
    same(result.w, w)
    assert set(result.history) == set(hist)
    for col in set(hist) - TIME_COLUMNS:
        if hist[col].dtype.kind in "fc":
            same(result.history[col], hist[col], err_msg=col)
        else:
            np.testing.assert_array_equal(result.history[col], hist[col], err_msg=col)


def assert_same_result(a, b):
    """Two Results of one run (in memory and read back): equal field for field."""
    assert set(a) == set(b) == set(FIELDS)
    for key in FIELDS:
        if key in ("w", "history", "attrs", "path"):
            continue
        assert a[key] == b[key], key
    np.testing.assert_array_equal(a.w, b.w)
    assert set(a.history) == set(b.history)
    for col in a.history:
        np.testing.assert_array_equal(a.history[col], b.history[col], err_msg=col)
    assert set(a.attrs) == set(b.attrs)
    for key in a.attrs:
        np.testing.assert_array_equal(np.asarray(a.attrs[key]), np.asarray(b.attrs[key]),
                                      err_msg=key)


# -- the same iterates as the command line ------------------------------------------
@pytest.mark.parametrize("algorithm", ["giant", "localsgd"])
@pytest.mark.slow
def test_solve_gives_the_cli_iterates_bit_for_bit(tmp_path, data, algorithm):
    cfg = config_file(tmp_path, data, algorithm)
    out = tmp_path / "cli.h5"
    res = cli("run", cfg, "--backend", "sim", "--workers", 3, "-o", out, "-q")
    assert res.returncode == 0, res.stderr
    attrs, hist, w = read_result(out)
    result = distnewton.solve(cfg, workers=3)
    assert type(result) is Result and result.path is None
    assert_same_iterates(result, hist, w)
    for key in RUN_ATTRS:
        np.testing.assert_array_equal(result.attrs[key], attrs[key], err_msg=key)
    np.testing.assert_array_equal(result.attrs["shard_sizes"], attrs["shard_sizes"])
    assert result.status == attrs["status"] and result.message == attrs["message"]
    assert result.success == (attrs["status"] == "converged")
    assert (result.rounds, result.bytes_up, result.bytes_down, result.iterations) == (
        hist["comm_rounds"][-1], hist["bytes_up"][-1], hist["bytes_down"][-1],
        hist["iteration"][-1])
    assert (result.eval_rounds, result.eval_bytes) == (attrs["eval_rounds"],
                                                       attrs["eval_bytes"])
    assert result.loss == hist["loss"][-1]


MPI_SCRIPT = """
import sys
import distnewton
from distnewton.errors import UserError
from mpi4py import MPI
rank = MPI.COMM_WORLD.Get_rank()


def report(text):          # one file per rank: the launcher may interleave stdout lines
    with open(f"{sys.argv[2]}.rank{rank}", "w") as f:
        print(text, file=f)


try:
    res = distnewton.solve(sys.argv[1], backend="mpi")
except UserError as exc:
    report(f"rank {rank} UserError: {exc}")
    sys.exit(0)
if rank == 0:
    res.save(sys.argv[2])
    report(" ".join(map(str, ("master", res.status, res.rounds, res.attrs["backend"],
                              res.attrs["n_workers"]))))
else:
    report(f"rank {rank} got {res}")
"""


def mpi_solve(tmp_path, cfg, out, n=4):
    """Run MPI_SCRIPT on n ranks; (CompletedProcess, the ranks' report lines sorted)."""
    script = tmp_path / "solve_mpi.py"
    script.write_text(MPI_SCRIPT)
    res = subprocess.run([mpiexec(), "-n", str(n), sys.executable, str(script), str(cfg),
                          str(out)], capture_output=True, text=True, timeout=240, env=env(),
                         cwd=ROOT)
    reports = [f"{out}.rank{r}" for r in range(n)]
    lines = sorted(open(f).read().strip() for f in reports if os.path.exists(f))
    return res, lines


@pytest.mark.mpi
def test_solve_on_every_rank_of_an_mpi_job_matches_the_cli(tmp_path, data):
    cfg = config_file(tmp_path, data, "giant")
    ref = tmp_path / "cli.h5"
    res = cli("run", cfg, "-o", ref, "-q", n=4)
    assert res.returncode == 0, res.stderr
    out = tmp_path / "api.h5"
    res, lines = mpi_solve(tmp_path, cfg, out)
    assert res.returncode == 0, res.stderr
    assert lines[0].startswith("master ") and lines[0].split()[3:] == ["mpi", "3"], lines
    assert lines[1:] == [f"rank {r} got None" for r in (1, 2, 3)], lines
    attrs, hist, w = read_result(ref)
    result = load(out)
    assert_same_iterates(result, hist, w, exact=False)
    for key in ("status", "n_workers", "backend", "eval_rounds", "eval_bytes"):
        assert result.attrs[key] == attrs[key], key


@pytest.mark.mpi
def test_bad_input_under_mpi_raises_the_same_usererror_on_every_rank(tmp_path):
    cfg = write_config(tmp_path / "bad.yaml", **raw_config(tmp_path / "missing.svm"))
    res, lines = mpi_solve(tmp_path, cfg, tmp_path / "never.h5", n=3)
    assert res.returncode == 0, res.stderr
    assert len(lines) == 3 and all(" UserError: " in ln for ln in lines), (lines, res.stdout)
    assert len({ln.split(" UserError: ", 1)[1] for ln in lines}) == 1, lines
    assert "missing.svm" in lines[0]
    assert not (tmp_path / "never.h5").exists()


# -- configs and overrides ------------------------------------------------------------
def test_dict_config_and_set_overrides_follow_the_cli_semantics(tmp_path, data):
    raw = raw_config(data, "giant")
    given = distnewton.solve(raw, workers=2, set={"algorithm.name": "newton",
                                                 "model.lambda": np.float64(1e-3),
                                                 "run.max_rounds": 12})
    cfg = config_file(tmp_path, data, "giant")
    out = tmp_path / "cli.h5"
    res = cli("run", cfg, "--backend", "sim", "--workers", 2, "--set", "algorithm.name=newton",
              "--set", "model.lambda=1e-3", "--set", "run.max_rounds=12", "-o", out, "-q")
    assert res.returncode == 0, res.stderr
    attrs, hist, w = read_result(out)
    assert given.attrs["algorithm"] == "newton" and given.attrs["lambda"] == 1e-3
    assert_same_iterates(given, hist, w)
    mine, theirs = yaml.safe_load(given.attrs["config"]), yaml.safe_load(attrs["config"])
    for section in ("data", "model", "algorithm"):
        assert mine[section] == theirs[section], section
    assert mine["run"] == {**theirs["run"], "backend": "sim"}
    assert mine["output"]["path"] is None          # the API writes no file by default


def test_a_resolved_config_is_accepted_as_it_is(data):
    from distnewton.config import resolve
    cfg = resolve(raw_config(data, "lbfgs", max_rounds=8))
    a = distnewton.solve(cfg, workers=2)
    b = distnewton.solve(raw_config(data, "lbfgs", max_rounds=8), workers=2)
    np.testing.assert_array_equal(a.w, b.w)
    assert a.attrs["config"] == b.attrs["config"]


def test_seed_option_sets_run_seed(data):
    raw = raw_config(data, "localsgd", max_rounds=3)
    a, b = distnewton.solve(raw, seed=7), distnewton.solve(raw, set={"run.seed": 7})
    c = distnewton.solve(raw)
    np.testing.assert_array_equal(a.w, b.w)
    assert a.attrs["seed"] == 7 and c.attrs["seed"] == 0
    assert not np.array_equal(a.w, c.w)


# -- files ------------------------------------------------------------------------------
def test_output_writes_the_file_load_reads_back_as_the_same_result(tmp_path, data):
    out = tmp_path / "r.h5"
    result = distnewton.solve(raw_config(data, "adaptive_localnewton"), output=out)
    assert result.path == str(out) and out.exists()
    back = load(out)
    assert isinstance(back, Result) and isinstance(back, Run)
    assert back.path == str(out)
    assert_same_result(result, back)
    with pytest.raises(UserError, match="exists"):
        distnewton.solve(raw_config(data, "adaptive_localnewton"), output=out)
    again = distnewton.solve(raw_config(data, "adaptive_localnewton"), output=out,
                             overwrite=True)
    np.testing.assert_array_equal(again.w, result.w)


def test_output_path_of_the_config_file_is_not_used(tmp_path, data):
    raw = raw_config(data, "gd", max_rounds=3)
    raw["output"] = {"path": str(tmp_path / "from-config.h5")}
    result = distnewton.solve(raw)
    assert result.path is None and not (tmp_path / "from-config.h5").exists()


def test_result_save_writes_the_standard_file(tmp_path, data):
    result = distnewton.solve(raw_config(data, "giant"), workers=2)
    path = tmp_path / "saved.h5"
    assert result.save(path) == str(path) and result.path == str(path)
    back = load(path)
    assert_same_result(result, back)
    ref = tmp_path / "cli.h5"
    res = cli("run", config_file(tmp_path, data), "--backend", "sim", "--workers", 2,
              "-o", ref, "-q")
    assert res.returncode == 0, res.stderr
    import h5py
    with h5py.File(path) as f, h5py.File(ref) as g:
        assert set(f.attrs) == set(g.attrs)
        assert set(f["history"]) == set(g["history"])
        for col in f["history"]:
            assert (f["history"][col].attrs.get("description")
                    == g["history"][col].attrs.get("description")), col
            assert f["history"][col].dtype == g["history"][col].dtype, col
    with pytest.raises(UserError, match="exists"):
        result.save(path)
    back.save(path, overwrite=True)                  # a loaded Run saves too
    assert_same_result(load(path), back)


def test_a_failed_write_warns_and_still_returns_the_result(tmp_path, data, monkeypatch):
    monkeypatch.setenv("DISTNEWTON_TEST_FAULT", "0:write:model")
    out = tmp_path / "r.h5"
    with pytest.warns(RuntimeWarning, match="result not written"):
        result = distnewton.solve(raw_config(data, "gd", max_rounds=3), output=out)
    assert result.path is None and not out.exists()
    monkeypatch.delenv("DISTNEWTON_TEST_FAULT")
    assert_same_result(result, load(result.save(out)))


# -- errors -----------------------------------------------------------------------------
@pytest.mark.parametrize("call,cli_args,message", [
    (dict(set={"run.max_roundz": 3}), ["--set", "run.max_roundz=3"],
     "run.max_roundz: unknown key (did you mean 'max_rounds'?)"),
    (dict(set={"algorithm.beta": 0.9}), ["--set", "algorithm.beta=0.9"],
     "algorithm.beta: must be in (0.0, 0.5], got 0.9"),
    (dict(workers=0), ["--workers", "0"], None),
])
def test_bad_input_raises_usererror_with_the_cli_message(tmp_path, data, call, cli_args,
                                                         message):
    cfg = config_file(tmp_path, data, "giant")
    with pytest.raises(UserError) as info:
        distnewton.solve(cfg, **call)
    text = str(info.value)
    assert "\n" not in text
    if message is not None:
        assert text == message
    res = cli("run", cfg, "--backend", "sim", *cli_args, "-o", tmp_path / "x.h5")
    assert res.returncode == 2
    line = own_lines(res.stderr)[-1]
    assert line.startswith("distnewton: error: ")
    if message is not None:
        assert line == f"distnewton: error: {message}"


@pytest.mark.parametrize("args,kwargs,match", [
    (("no-such.yaml",), {}, "no-such.yaml: no such config file"),
    ((42,), {}, "config: expected a YAML file path or a mapping, got int"),
    (({"data": {}, "algorithm": {"name": "newton"}},), {}, "data.train: missing"),
    (({"data": {"train": "x.svm"}, "algorithm": {"name": "newton"}},), {"backend": "cuda"},
     "backend: must be one of sim, mpi, auto, got 'cuda'"),
    (({"data": {"train": "x.svm"}, "algorithm": {"name": "newton"}},),
     {"set": {"nosection.key": 1}}, "set nosection.key: unknown section 'nosection'"),
    (({"data": {"train": "x.svm"}, "algorithm": {"name": "newton"}},),
     {"set": {"lambda": 1}}, "set 'lambda': expected 'section.key'"),
    (({"data": {"train": "no-such.svm"}, "algorithm": {"name": "newton"}},), {},
     "no-such.svm"),
])
def test_bad_arguments_raise_usererror(args, kwargs, match):
    with pytest.raises(UserError, match=re.escape(match)):
        distnewton.solve(*args, **kwargs)


# -- the optimum ------------------------------------------------------------------------
def test_optimum_matches_scikit_learn(tmp_path):
    from sklearn.datasets import load_svmlight_file
    from sklearn.linear_model import LogisticRegression
    train = synth(tmp_path / "opt.svm", 800, 15, density=0.4, seed=11)
    result = distnewton.solve(raw_config(train, "newton", max_rounds=100, grad_rtol=1e-13),
                              workers=4)
    assert result.success, result.message
    X, y = load_svmlight_file(str(train), n_features=15)
    n, lam = X.shape[0], float(result.attrs["lambda"])
    assert lam == 1.0 / n
    ref = LogisticRegression(C=1.0 / (lam * n), fit_intercept=False, tol=1e-12,
                             solver="newton-cholesky", max_iter=500).fit(X, y)

    def f(w):
        return float(np.mean(np.logaddexp(0.0, -y * (X @ w))) + 0.5 * lam * w @ w)

    f_dn, f_sk = f(result.w), f(ref.coef_.ravel())
    assert abs(f_dn - f_sk) / abs(f_sk) <= 1e-10, (f_dn, f_sk)
    assert abs(result.loss - f_dn) <= 1e-12 * abs(f_dn)


# -- the record -------------------------------------------------------------------------
def test_result_is_a_dict_with_attribute_access_and_a_readable_repr(data):
    result = distnewton.solve(raw_config(data, "gd", max_rounds=4), workers=2)
    assert isinstance(result, dict) and list(result) == list(FIELDS)
    assert result.w is result["w"] and result.status == result["status"]
    text = repr(result)
    for key in FIELDS:
        assert f"{key}: " in text
    assert len(text.splitlines()) == len(FIELDS) + 2
    with pytest.raises(AttributeError):
        result.no_such_field
    df = pytest.importorskip("pandas") and result.dataframe()
    assert list(df.columns) == list(result.history)


def test_verbose_prints_the_cli_lines_and_quiet_prints_nothing(data, capsys):
    distnewton.solve(raw_config(data, "newton"), workers=2)
    assert capsys.readouterr().out == ""
    distnewton.solve(raw_config(data, "newton"), workers=2, verbose=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["iter", "rounds", "loss"]
    assert lines[-1].startswith("converged: ") and "->" not in lines[-1]


def test_import_distnewton_stays_light():
    code = ("import sys, distnewton\n"
            "assert 'numpy' not in sys.modules and 'distnewton.api' not in sys.modules\n"
            "from distnewton import solve, Result\n"
            "assert solve.__module__ == 'distnewton.api' and 'h5py' not in sys.modules\n"
            "import distnewton.record\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env())
    assert res.returncode == 0, res.stderr
