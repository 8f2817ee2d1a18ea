"""The command line end to end: real mpiexec jobs, exit codes, one-line errors,
no partial result files, faults ending the whole job, the HDF5 schema, and
round/byte counts checked against hand counts."""

import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from support.launch import ROOT, cli, env, own_lines, read_result, write_config, synth

SMALL = {"n_samples": 600, "n_features": 12, "density": 0.5, "noise": 0.05, "seed": 3}


@pytest.fixture
def small(tmp_path):
    """A small synthetic logistic problem written as LIBSVM by `distnewton data synth`."""
    return synth(tmp_path / "small.svm", 600, 12)


def config(tmp_path, train, name="giant", **sections):
    base = {"data": {"train": str(train)}, "algorithm": {"name": name},
            "run": {"max_rounds": 30}}
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return write_config(tmp_path / "c.yaml", **base)


@pytest.mark.mpi
def test_quickstart_runs_under_mpiexec_3_and_5(tmp_path):
    for ranks in (3, 5):
        res = cli("run", ROOT / "configs" / "quickstart.yaml", "-o", tmp_path / f"q{ranks}.h5",
                  n=ranks, cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        assert "converged" in res.stdout
        attrs, hist, w = read_result(tmp_path / f"q{ranks}.h5")
        assert attrs["n_workers"] == ranks - 1 and attrs["status"] == "converged"
    assert (tmp_path / "data" / "quickstart.svm").exists()     # generated on first use


@pytest.mark.slow
def test_hdf5_schema(tmp_path, small):
    out = tmp_path / "r.h5"
    res = cli("run", config(tmp_path, small, "newton"), "--backend", "sim", "-o", out, "-q")
    assert res.returncode == 0, res.stderr
    attrs, hist, w = read_result(out)
    for key in ("schema_version", "distnewton_version", "algorithm", "loss", "lambda",
                "n_workers", "backend", "dataset", "n_samples", "n_features", "seed", "status",
                "mpi_library", "started", "finished", "config"):
        assert key in attrs, key
    assert attrs["algorithm"] == "newton" and attrs["n_samples"] == 600
    assert attrs["lambda"] == pytest.approx(1 / 600)
    resolved = yaml.safe_load(attrs["config"])
    assert resolved["algorithm"]["name"] == "newton" and resolved["run"]["backend"] == "sim"
    lengths = {k: len(v) for k, v in hist.items()}
    assert len(set(lengths.values())) == 1, lengths
    for col in ("iteration", "comm_rounds", "bytes_up", "bytes_down", "loss", "grad_norm",
                "test_accuracy", "wall_time", "step_size"):
        assert col in hist
    assert hist["iteration"][0] == 0 and hist["comm_rounds"][0] == 0
    assert np.all(np.diff(hist["wall_time"]) >= 0) and np.all(np.diff(hist["loss"]) <= 0)
    assert_time_breakdown(hist)
    assert w.shape == (12,)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def assert_time_breakdown(hist):
    """compute + comm = wall time, every part cumulative, imbalance within compute."""
    np.testing.assert_allclose(hist["time_compute"] + hist["time_comm"], hist["wall_time"],
                               rtol=1e-12, atol=1e-12)
    for col in ("time_compute", "time_comm", "time_idle"):
        assert hist[col][0] == 0 and np.all(np.diff(hist[col]) >= 0), col
    assert np.all(hist["time_idle"] <= hist["time_compute"])
    assert hist["time_compute"][-1] > 0


@pytest.mark.mpi
def test_round_and_byte_counts_match_hand_counts(tmp_path, small):
    d, K, header = 12, 3, 64
    out = tmp_path / "gd.h5"
    res = cli("run", config(tmp_path, small, "gd", algorithm={"step_size": 0.5},
                            run={"max_iterations": 7, "grad_rtol": None}),
              "-o", out, "-q", n=K + 1)
    assert res.returncode == 0, res.stderr
    attrs, hist, _ = read_result(out)
    # fixed-step GD: 1 round per iteration, w down (d floats), [loss, g] up (d + 1)
    np.testing.assert_array_equal(hist["comm_rounds"], np.arange(8))
    np.testing.assert_array_equal(hist["bytes_down"], np.arange(8) * K * (header + 8 * d))
    np.testing.assert_array_equal(hist["bytes_up"], np.arange(8) * K * 8 * (d + 1))
    assert_time_breakdown(hist)
    # logging: one evaluation per record, one timing gather per iteration
    assert attrs["eval_rounds"] == 8 + 7
    assert attrs["eval_bytes"] == (8 * K * (header + 8 * d + 8 * (d + 1))
                                   + 7 * (K * (header + 8) + 8 * K * 1))
    # newton: 2 rounds per iteration; giant: 3 (line search accepted in its first round)
    for name, per_iteration in (("newton", 2), ("giant", 3)):
        out = tmp_path / f"{name}.h5"
        res = cli("run", config(tmp_path, small, name, run={"max_iterations": 4,
                                                            "grad_rtol": None}),
                  "--backend", "sim", "--workers", K, "-o", out, "-q")
        assert res.returncode == 0, res.stderr
        _, hist, _ = read_result(out)
        np.testing.assert_array_equal(hist["comm_rounds"], per_iteration * np.arange(5))


@pytest.mark.mpi
@pytest.mark.parametrize("rank,point", [(0, "load"), (2, "load"), (1, "round"), (0, "round")])
def test_an_exception_on_any_rank_ends_the_whole_job(tmp_path, small, rank, point):
    out = tmp_path / "r.h5"
    t0 = time.monotonic()
    res = cli("run", config(tmp_path, small), "-o", out, n=3, timeout=60,
              extra_env={"DISTNEWTON_TEST_FAULT": f"{rank}:{point}"})
    elapsed = time.monotonic() - t0
    assert res.returncode != 0
    assert f"distnewton: rank {rank}: internal error" in res.stderr
    assert res.stderr.count("RuntimeError: injected fault") == 1          # printed once
    assert elapsed < 30
    assert not out.exists()


def bad(res, text, out=None):
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = own_lines(res.stderr)
    assert len(lines) == 1 and text in lines[0], res.stderr
    if out is not None:
        assert not out.exists()


@pytest.mark.mpi
def test_malformed_data_under_mpi_is_one_line_exit_2(tmp_path):
    data = tmp_path / "bad.svm"
    data.write_text("1 1:0.5 2:1\n-1 1:0.25\n1 3:abc\n")
    out = tmp_path / "r.h5"
    bad(cli("run", config(tmp_path, data), "-o", out, n=3), f"{data}:3:", out)


@pytest.mark.mpi
def test_more_workers_than_samples(tmp_path):
    data = tmp_path / "tiny.svm"
    data.write_text("1 1:0.5\n-1 1:0.25\n1 2:1\n")
    out = tmp_path / "r.h5"
    bad(cli("run", config(tmp_path, data), "-o", out, n=5), "4 workers but only 3 samples", out)
    bad(cli("run", config(tmp_path, data), "--backend", "sim", "--workers", 9, "-o", out),
        "9 workers but only 3 samples", out)


@pytest.mark.slow
def test_config_errors(tmp_path, small):
    out = tmp_path / "r.h5"
    bad(cli("run", config(tmp_path, small, run={"max_round": 3}), "-o", out),
        "run.max_round: unknown key (did you mean 'max_rounds'?)", out)
    bad(cli("run", config(tmp_path, small), "--set", "algorithm.beta=2", "-o", out),
        "algorithm.beta: must be in (0.0, 0.5], got 2.0", out)
    bad(cli("run", config(tmp_path, small), "--workers", 0, "-o", out), "--workers", out)
    bad(cli("run", tmp_path / "nope.yaml"), "nope.yaml: no such config file")


@pytest.mark.slow
def test_existing_output_needs_overwrite(tmp_path, small):
    out = tmp_path / "r.h5"
    out.write_bytes(b"keep me")
    bad(cli("run", config(tmp_path, small), "--backend", "sim", "-o", out), "--overwrite")
    assert out.read_bytes() == b"keep me"
    res = cli("run", config(tmp_path, small), "--backend", "sim", "-o", out, "-q", "--overwrite")
    assert res.returncode == 0 and read_result(out)[0]["algorithm"] == "giant"


@pytest.mark.slow
def test_labels_multiclass_and_test_features(tmp_path):
    data = tmp_path / "multi.svm"
    data.write_text("1 1:1\n2 2:1\n3 1:1 2:1\n1 2:0.5\n2 1:0.3\n3 2:2\n")
    out = tmp_path / "r.h5"
    bad(cli("run", config(tmp_path, data), "--backend", "sim", "--workers", 2, "-o", out),
        "positive_labels", out)
    res = cli("run", config(tmp_path, data, data={"positive_labels": [1, 2]}),
              "--backend", "sim", "--workers", 2, "-o", out, "-q")
    assert res.returncode == 0, res.stderr
    test = tmp_path / "test.svm"
    test.write_text("1 1:1\n2 5:1\n")
    bad(cli("run", config(tmp_path, data, data={"positive_labels": [1], "test": str(test)}),
            "--backend", "sim", "--workers", 2, "-o", tmp_path / "t.h5"), f"{test}:2:")


@pytest.mark.slow
def test_singletons_from_a_wrong_launcher_are_detected(tmp_path, small):
    out = tmp_path / "r.h5"
    bad(cli("run", config(tmp_path, small), "--backend", "mpi", "-o", out,
            extra_env={"SLURM_NTASKS": "4"}), "launcher started 4 tasks but MPI sees 1", out)
    bad(cli("run", config(tmp_path, small), "--backend", "mpi", "-o", out),
        "needs at least 2 ranks", out)


def test_help_list_and_data_do_not_start_mpi():
    code = ("import sys\nfrom distnewton.cli import main\n"
            "for args in (['--help'], ['list'], ['run', '--help'], ['data', 'info', '--help']):\n"
            "    try:\n        main(args)\n    except SystemExit as e:\n        assert e.code == 0\n"
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env())
    assert res.returncode == 0, res.stderr
    assert "giant" in res.stdout and "max_backtracks" in res.stdout


@pytest.mark.slow
def test_data_info(tmp_path, small):
    res = cli("data", "info", small)
    assert res.returncode == 0
    info = dict(line.split(None, 1) for line in res.stdout.splitlines())
    assert info["n_samples"] == "600" and info["n_features"] == "12"


# -- an outcome scripts can test (issue 29) ----------------------------------------
def test_quiet_keeps_the_summary_line_and_a_non_converged_run_says_so(tmp_path, small):
    """-q: no lines, no bar, the summary line on stdout; a run that ended max_rounds
    warns on stderr (exit 0 without --require-converged)."""
    out = tmp_path / "r.h5"
    res = cli("run", config(tmp_path, small, "gd", run={"max_rounds": 3}), "--backend", "sim",
              "-o", out, "-q")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [res.stdout.strip()]              # one line
    _, hist, _ = read_result(out)
    assert res.stdout.startswith(
        f"max_rounds: 3 communication rounds (run.max_rounds); {hist['iteration'][-1]} "
        f"iterations, 3 rounds, loss {hist['loss'][-1]:.15e}, ") and str(out) in res.stdout
    assert res.stderr.splitlines() == [
        "distnewton: warning: the run did not converge: max_rounds: 3 communication rounds "
        "(run.max_rounds) (--require-converged makes this exit code 5)"]
    res = cli("run", config(tmp_path, small, "newton"), "--backend", "sim", "-o", out, "-q",
              "--overwrite", "--require-converged")
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert res.stdout.startswith("converged: ||grad|| = ") and len(res.stdout.splitlines()) == 1


@pytest.mark.mpi
@pytest.mark.parametrize("status,how", [
    ("max_rounds", ["--require-converged"]),
    ("diverged", ["--set", "run.require_converged=true"]),
])
def test_require_converged_exits_5_after_writing_the_result(tmp_path, small, status, how):
    sections = ({"run": {"max_rounds": 4}} if status == "max_rounds" else
                {"model": {"loss": "ridge", "lambda": 0.01},
                 "algorithm": {"name": "gd", "step_size": 50.0}, "run": {"max_rounds": 200}})
    out = tmp_path / "r.h5"
    res = cli("run", config(tmp_path, small, "gd", **sections), "-o", out, *how, n=3)
    assert res.returncode == 5, res.stderr
    attrs, hist, w = read_result(out)                   # written as usual
    assert attrs["status"] == status and np.all(np.isfinite(w))
    lines = own_lines(res.stderr)
    assert lines == [f"distnewton: error: the run did not converge: {status}: "
                     f"{attrs['message']}; result written to {out} (exit 5, "
                     "--require-converged)"], res.stderr
    assert res.stdout.splitlines()[-1].startswith(f"{status}: ")


def test_run_help_teaches():
    from click.testing import CliRunner

    from distnewton.cli import main
    text = CliRunner().invoke(main, ["run", "--help"]).output
    assert "  mpiexec -n 5 distnewton run a9a.yaml" in text          # \b: kept as written
    assert "  distnewton run a9a.yaml --backend sim --workers 4" in text
    flat = " ".join(text.split())                         # options' texts are wrapped
    assert "distnewton config" in flat and "distnewton list" in flat
    assert "simulated under sim" in flat and "logical workers spread over the worker" in flat
    for code in ("0  done", "3  stopped", "4  result not written", "5  not converged",
                 "128+N"):
        assert code in text, code
    for option in ("--progress / --no-progress", "--require-converged", "-q, --quiet"):
        assert option in text, option
    assert "kill -USR1" in flat                           # Open MPI: what to do instead


def list_blocks(text):
    """``distnewton list`` output as {name: (header line, [indented lines])}."""
    blocks, name = {}, None
    for line in text.splitlines():
        if line and not line[0].isspace():
            name = line.split(" [", 1)[0]
            blocks[name] = (line, [])
        elif line.strip():
            blocks[name][1].append(line)
    return blocks


def test_list_notes_what_the_defaults_cannot_reach():
    """Issue 30: a method whose defaults cannot reach relative suboptimality 1e-6 in
    500 rounds on the standard sets (benchmarks/defaults_check.py) says why in one
    line right under its name; the second-order methods that do reach it have no
    note; the keys' lines are unchanged (name, default, doc)."""
    from click.testing import CliRunner

    from distnewton.algorithms import ALGORITHMS
    from distnewton.cli import NOTE_PREFIX, main
    res = CliRunner().invoke(main, ["list"])
    assert res.exit_code == 0, res.output
    blocks = list_blocks(res.output)
    assert set(blocks) == set(ALGORITHMS)
    for name in ("gd", "localnewton", "localsgd", "scaled_localsgd", "ist"):
        header, lines = blocks[name]
        assert header.startswith(f"{name} [built-in]: "), header
        assert lines[0] == f"    {NOTE_PREFIX}{ALGORITHMS[name].convergence_note}", lines[0]
        assert "1e-6" in lines[0] and "rounds" in lines[0], lines[0]
        assert sum(NOTE_PREFIX in line for line in lines) == 1
    for name in ("newton", "giant", "lbfgs", "adaptive_localnewton"):
        assert not any(line.lstrip().startswith(NOTE_PREFIX) for line in blocks[name][1]), name
    for name, (_, lines) in blocks.items():
        keys = [line.split()[0] for line in lines if not line.lstrip().startswith(NOTE_PREFIX)]
        assert keys == ["model.loss", "model.multiclass", *ALGORITHMS[name].params], name
