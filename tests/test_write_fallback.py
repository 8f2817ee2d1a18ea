"""A finished run is never lost.

Strings from the environment (MPI library version, argv, paths) are cleaned
before they reach HDF5; when the result write fails anyway, at any part of it,
the model and history land in ``<result>.fallback.npz`` (exit code 4), which
``results.load``/``report`` read and ``distnewton recover`` turns back into the
result file, equal to an undamaged run's.  Small synthetic data only.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from support.launch import cli, env, mpiexec, synth, write_config

from distnewton.io.fallback import SUFFIX, columns_of, free_name, save_fallback
from distnewton.io.provenance import library_line
from distnewton.io.read import load, load_fallback
from distnewton.io.record import History
from distnewton.io.schema import clean_text
from distnewton.io.write import write_result

#: whole runs (processes, MPI or files): outside the `-m "not slow"` inner loop
pytestmark = pytest.mark.slow

EXIT_SALVAGED = 4
POINTS = ["write", "write:attrs", "write:history", "write:model", "write:checkpoint",
          "write:rename"]
BACKENDS = ["sim", pytest.param("mpi", marks=pytest.mark.mpi)]
#: attributes that differ between two runs of one config (times, the command line)
VARYING = {"started", "finished", "argv", "config", "setup_seconds_json"}   # timings vary


# -- cleaning strings -------------------------------------------------------------
def test_clean_text_drops_control_characters_and_replaces_bad_surrogates():
    assert clean_text("Open MPI v5.0.5, repo rev: v5.0.5, Jul 22, 2024\x00") == \
        "Open MPI v5.0.5, repo rev: v5.0.5, Jul 22, 2024"
    assert clean_text("a\x00b\x07c\x1b[0m\x7f\x85d") == "abc[0md"
    assert clean_text("keep\ttabs\nand newlines") == "keep\ttabs\nand newlines"
    assert clean_text("héllo 日本 ✓") == "héllo 日本 ✓"
    # surrogateescape'd bytes: valid UTF-8 decoded, invalid bytes -> U+FFFD
    assert clean_text(os.fsdecode(b"r\xff-\xc3\xa9.h5")) == "r\ufffd-é.h5"
    assert clean_text("lone \ud800 surrogate") == "lone \ufffd surrogate"
    assert clean_text(b"raw\x00\xffbytes") == "raw\ufffdbytes"


def test_library_line_of_open_mpi_mpich_and_nothing():
    openmpi = "Open MPI v4.1.6, package: Open MPI conda@host Distribution, ident: 4.1.6\x00"
    assert library_line(lambda: openmpi) == openmpi[:-1]
    assert library_line(lambda: "\n  MPICH Version: 4.2.0\nMPICH Release date: x\n") == \
        "MPICH Version: 4.2.0"
    assert library_line(lambda: "\x00") == "unknown"
    assert library_line(lambda: 1 / 0) == "unknown"


def test_hostile_strings_are_written_cleaned_and_read_back(tmp_path):
    hist = History()
    hist.append(iteration=0, loss=1.0)
    out = tmp_path / "r.h5"
    attrs = {"schema_version": 1, "mpi_library": "Open MPI v5.0.5\x00",
             "argv": "distnewton run -o " + os.fsdecode(b"r\xff.h5"),
             "hostname": "node\x001", "message": "stalled\x1b[0m\nsee log",
             "config": "data:\n  train: \ud83d.svm\n", "dataset": None}
    write_result(out, attrs, hist, np.ones(3), column_docs={"loss": "f(w)\x00"})
    run = load(out)
    assert run.attrs["mpi_library"] == "Open MPI v5.0.5"
    assert run.attrs["argv"] == "distnewton run -o r\ufffd.h5"
    assert run.attrs["hostname"] == "node1"
    assert run.attrs["message"] == "stalled[0m\nsee log"
    assert run.attrs["config"] == "data:\n  train: \ufffd.svm\n"
    assert run.attrs["dataset"] == ""
    np.testing.assert_array_equal(run.w, np.ones(3))


def run_raw(args, n=None, **kw):
    """Run ``distnewton ARGS`` where ARGS may hold non-UTF-8 bytes (surrogateescape)."""
    cmd = [sys.executable, "-m", "distnewton", *args]
    if n is not None:
        cmd = [mpiexec(), "-n", str(n), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, errors="surrogateescape",
                          env=env(), timeout=240, **kw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_utf8_bytes_in_argv_and_paths_still_give_a_result(tmp_path, backend):
    data = tmp_path / os.fsdecode(b"d\xfe.svm")
    os.rename(synth(tmp_path / "d.svm", 200, 6, seed=2), data)
    cfg = write_config(tmp_path / "c.yaml", data={"train": str(tmp_path / "d.svm")},
                       algorithm={"name": "newton"}, run={"max_rounds": 4})
    out = tmp_path / os.fsdecode(b"r\xff-\xc3\xa9.h5")
    opts = ["--backend", "sim", "--workers", "2"] if backend == "sim" else []
    res = run_raw(["run", str(cfg), *opts, "--set", f"data.train={data}", "-o", str(out)],
                  n=3 if backend == "mpi" else None)
    assert res.returncode == 0, res.stderr
    assert str(out) in res.stdout                      # the summary names the real file
    run = load(out)
    assert "r\ufffd-é.h5" in run.attrs["argv"]
    assert run.attrs["dataset"] == clean_text(str(data))
    assert "\x00" not in run.attrs["mpi_library"] and run.attrs["mpi_library"]
    assert run.history["iteration"][-1] >= 1


# -- failed writes ---------------------------------------------------------------
@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """A small deterministic run with periodic checkpoints (so the final file has
    /checkpoint), and its undamaged results per backend (computed on demand)."""
    root = tmp_path_factory.mktemp("fallback")
    data = synth(root / "small.svm", 300, 8, seed=4)
    cfg = write_config(root / "c.yaml", data={"train": str(data)},
                       algorithm={"name": "giant"},
                       run={"max_rounds": 12, "checkpoint_every": 4, "grad_rtol": None})
    return {"root": root, "cfg": cfg, "reference": {}}


def launch_run(case, backend, out, fault=None, *more):
    opts = ["--backend", "sim", "--workers", 2] if backend == "sim" else []
    return cli("run", case["cfg"], *opts, "-o", out, "-q", *more,
               n=3 if backend == "mpi" else None,
               extra_env={"DISTNEWTON_TEST_FAULT": fault} if fault else None)


def reference(case, backend):
    if backend not in case["reference"]:
        out = case["root"] / f"reference-{backend}.h5"
        res = launch_run(case, backend, out)
        assert res.returncode == 0, res.stderr
        case["reference"][backend] = load(out)
    return case["reference"][backend]


def assert_same_run(run, ref):
    """Model and history equal to 1e-12 (times aside), attributes equal."""
    np.testing.assert_allclose(run.w, ref.w, rtol=1e-12, atol=1e-12)
    assert set(run.history) == set(ref.history)
    for col, values in ref.history.items():
        if col == "wall_time" or col.startswith("time_"):
            continue
        assert run.history[col].dtype == values.dtype, col
        np.testing.assert_allclose(run.history[col], values, rtol=1e-12, atol=1e-12,
                                   equal_nan=True, err_msg=col)
    assert set(run.attrs) == set(ref.attrs)
    for key, value in ref.attrs.items():
        if key not in VARYING:
            assert np.all(run.attrs[key] == value), key


def assert_salvaged(res, out, fallback, reason):
    assert res.returncode == EXIT_SALVAGED, res.stderr
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("distnewton: error")]
    assert errors == [f"distnewton: error writing {out}: {reason}; model and history "
                      f"saved to {fallback}"], res.stderr      # one line (the launcher's aside)
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".tmp-")]
    assert fallback.exists()


def assert_recovers(out, fallback, ref):
    """load() of the fallback and `distnewton recover` both give the undamaged run."""
    assert_same_run(load(fallback), ref)
    res = cli("recover", fallback)
    assert res.returncode == 0, res.stderr
    assert_same_run(load(out), ref)
    assert cli("recover", fallback).returncode == 2          # exists: no --overwrite


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("point", POINTS)
def test_a_failure_in_any_part_of_the_write_keeps_model_and_history(case, tmp_path,
                                                                    backend, point):
    ref = reference(case, backend)
    out = tmp_path / "r.h5"
    res = launch_run(case, backend, out, f"0:{point}")
    fallback = tmp_path / ("r.h5" + SUFFIX)
    assert_salvaged(res, out, fallback,
                    f"RuntimeError: injected fault at {point} (DISTNEWTON_TEST_FAULT)")
    # the periodic checkpoints failed too: warned, and the run went on
    assert "distnewton: warning: checkpoint at iteration" in res.stderr, res.stderr
    assert_recovers(out, fallback, ref)


@pytest.mark.parametrize("backend", BACKENDS)
def test_disk_full_while_writing_the_model(case, tmp_path, backend):
    ref = reference(case, backend)
    out = tmp_path / "r.h5"
    res = launch_run(case, backend, out, "0:write:model=ENOSPC")
    fallback = tmp_path / ("r.h5" + SUFFIX)
    assert_salvaged(res, out, fallback, "OSError: [Errno 28] No space left on device "
                    "(injected at write:model, DISTNEWTON_TEST_FAULT)")
    assert_recovers(out, fallback, ref)


def test_report_reads_the_fallback_and_an_old_fallback_is_never_replaced(case, tmp_path):
    ref = reference(case, "sim")
    out = tmp_path / "r.h5"
    (tmp_path / ("r.h5" + SUFFIX)).write_bytes(b"an earlier fallback")
    res = launch_run(case, "sim", out, "0:write:rename")
    fallback = tmp_path / "r.h5.fallback-2.npz"
    assert res.returncode == EXIT_SALVAGED and str(fallback) in res.stderr, res.stderr
    assert (tmp_path / ("r.h5" + SUFFIX)).read_bytes() == b"an earlier fallback"
    assert free_name(str(tmp_path), "r.h5") == str(tmp_path / "r.h5.fallback-3.npz")
    rep = cli("report", fallback, "--no-compute", "--format", "json")
    assert rep.returncode == 0, rep.stderr
    row = json.loads(rep.stdout)[0]
    assert row["loss"] == pytest.approx(float(ref.history["loss"][-1]), rel=1e-12)
    assert row["rounds"] == int(ref.history["comm_rounds"][-1])
    bad = cli("report", tmp_path / ("r.h5" + SUFFIX), "--no-compute")
    assert bad.returncode == 2 and "fallback" in bad.stderr, bad.stderr
    resume = cli("run", "--resume", fallback)
    assert resume.returncode == 2 and "keeps no /checkpoint" in resume.stderr, resume.stderr


def test_a_column_numpy_cannot_type_does_not_lose_the_others(tmp_path):
    hist = History({"phase": np.int64})
    hist.append(iteration=0, loss=2.0, phase=1)
    hist.append(iteration=1, loss=1.0, phase=float("nan"))     # not an int64
    attrs = {"schema_version": 1, "argv": os.fsdecode(b"x\xff"), "n_workers": np.int64(2),
             "shard_sizes": np.array([3, 4])}
    saved = save_fallback(str(tmp_path / "r.h5"), attrs, columns_of(hist), np.ones(2))
    run = load(saved)
    np.testing.assert_array_equal(run.history["loss"], [2.0, 1.0])
    np.testing.assert_array_equal(run.history["phase"], [1.0, np.nan])
    assert run.attrs["argv"] == "x\ufffd" and run.attrs["n_workers"] == 2
    np.testing.assert_array_equal(run.attrs["shard_sizes"], [3, 4])


#: Runs distnewton with the result folder replaced by a file just before the write
#: (argv[1]: the folder; argv[2]: "cwd" also removes the current folder, "all" also
#: points the temp folder nowhere; argv[3:]: the command line).
SABOTAGE = """
import os, shutil, sys, tempfile
import distnewton.session as run
real = run.inject
def inject(point, rank):
    if point == "write" and os.path.isdir(sys.argv[1]):
        shutil.rmtree(sys.argv[1])
        with open(sys.argv[1], "w") as fh:
            fh.write("a file now")
        if sys.argv[2] in ("cwd", "all"):
            os.rmdir(os.getcwd())
        if sys.argv[2] == "all":
            tempfile.tempdir = os.path.join(sys.argv[1], "no-such-folder")
    real(point, rank)
run.inject = inject
from distnewton.cli import main
main(sys.argv[3:], prog_name="distnewton")
"""


def sabotaged(case, tmp_path, how):
    folder, here, tmp = tmp_path / "results", tmp_path / "here", tmp_path / "tmp"
    for d in (folder, here, tmp):
        d.mkdir()
    out = folder / "r.h5"
    e = env()
    e["TMPDIR"] = str(tmp)
    res = subprocess.run([sys.executable, "-c", SABOTAGE, str(folder), how, "run",
                          str(case["cfg"]), "--backend", "sim", "--workers", "2", "-q",
                          "-o", str(out)], capture_output=True, text=True, cwd=here,
                         env=e, timeout=240)
    return res, out, here, tmp


@pytest.mark.parametrize("how,where", [("folder", "here"), ("cwd", "tmp")])
def test_result_folder_gone_saves_in_the_current_then_the_temp_folder(case, tmp_path,
                                                                      how, where):
    ref = reference(case, "sim")
    res, out, here, tmp = sabotaged(case, tmp_path, how)
    fallback = (here if where == "here" else tmp) / ("r.h5" + SUFFIX)
    assert res.returncode == EXIT_SALVAGED, res.stderr
    assert res.stderr.strip().splitlines()[-1].endswith(
        f"; model and history saved to {fallback}"), res.stderr
    assert "NotADirectoryError" in res.stderr
    assert_same_run(load_fallback(fallback), ref)
    assert load(fallback).path == str(fallback)


def test_nowhere_to_save_is_exit_1_with_one_line(case, tmp_path):
    res, out, here, tmp = sabotaged(case, tmp_path, "all")
    assert res.returncode == 1, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"distnewton: error writing {out}: NotADirectoryError")
    assert "the model and history could not be saved either" in last
    assert "Traceback" not in res.stderr
