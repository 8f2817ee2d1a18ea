"""Algorithm plugins (distnewton/plugins.py): a module on PYTHONPATH named in
``run.plugins`` or ``--plugin``, an entry point of an installed distribution,
under the sim backend and ``mpiexec -n 3``; their optimum against
scikit-learn, their rounds and bytes counted by hand; name clashes, broken
plugins and a plugin present on some ranks only (exit 2, one message, no hang,
no result file); checkpoint and resume of a plugin algorithm."""

import numpy as np
import pytest

from support.launch import cli, own_lines, read_result
from support.plugin_fixture import (BACKENDS, D, K, assert_close, config, pythonpath, round_bytes,
                                    run, write_entry_point)


def check_counts(hist, rounds_per_iteration=1):
    """Every iteration: rounds_per_iteration rounds moving K(64 + 8d) bytes down
    and 8K(d + 1) up in all (the hand count of myplugin.grad)."""
    down, up = round_bytes(K, D)
    its = hist["iteration"]
    assert np.array_equal(hist["comm_rounds"], rounds_per_iteration * its)
    assert np.array_equal(hist["bytes_down"], down * its)
    assert np.array_equal(hist["bytes_up"], up * its)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["run.plugins", "--plugin"])
@pytest.mark.slow
def test_plugin_module_reaches_the_sklearn_optimum(tmp_path, plugin_data, plugins, backend, how):
    train, w_ref = plugin_data
    cfg = config(tmp_path, train, plugins=("myplugin",) if how == "run.plugins" else ())
    out = tmp_path / "r.h5"
    run(cfg, out, backend, *(["--plugin", "myplugin"] if how == "--plugin" else []),
        folders=[plugins])
    attrs, hist, w = read_result(out)
    assert attrs["status"] == "converged" and attrs["algorithm"] == "plugin_gd"
    assert "plugins:\n  - myplugin" in attrs["config"]       # recorded for --resume
    assert_close(w, w_ref, 1e-8)
    check_counts(hist)
    assert np.all(np.isfinite(hist["plugin_norm"][1:]))


@pytest.mark.mpi
def test_plugin_mpi_equals_sim(tmp_path, plugin_data, plugins):
    train, _ = plugin_data
    cfg = config(tmp_path, train)
    run(cfg, tmp_path / "sim.h5", "sim", folders=[plugins])
    run(cfg, tmp_path / "mpi.h5", "mpi", folders=[plugins])
    (_, h_sim, w_sim), (_, h_mpi, w_mpi) = (read_result(tmp_path / f) for f in ("sim.h5",
                                                                                 "mpi.h5"))
    assert_close(w_mpi, w_sim, 1e-12)
    assert np.array_equal(h_sim["comm_rounds"], h_mpi["comm_rounds"])
    assert np.array_equal(h_sim["bytes_down"], h_mpi["bytes_down"])


def test_list_shows_plugins_and_their_origin(tmp_path, plugins):
    site = write_entry_point(tmp_path / "site")
    res = cli("list", "--plugin", "myplugin", extra_env=pythonpath(plugins, site))
    assert res.returncode == 0, res.stderr
    lines = [line for line in res.stdout.splitlines() if line and not line[0].isspace()]
    assert "plugin_gd [module myplugin]: Plugin heavy-ball gradient descent (fixed step)." in lines
    assert ("ep_gd [entry point myplug:ep_gd = myplug_mod:EPGD]: Entry-point heavy-ball "
            "gradient descent.") in lines
    assert any(line.startswith("giant [built-in]: ") for line in lines)
    assert "step_size" in res.stdout and "momentum" in res.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_entry_point_plugin_runs(tmp_path, plugin_data, plugins, backend):
    train, w_ref = plugin_data
    site = write_entry_point(tmp_path / "site")
    out = tmp_path / "r.h5"
    run(config(tmp_path, train, name="ep_gd", plugins=()), out, backend, folders=[plugins, site])
    attrs, hist, w = read_result(out)
    assert attrs["algorithm"] == "ep_gd" and attrs["status"] == "converged"
    assert_close(w, w_ref, 1e-8)
    check_counts(hist)


def one_error(res, *parts):
    """Exit 2 and one line from distnewton containing every part."""
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = own_lines(res.stderr)
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("distnewton: error: ")
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


@pytest.mark.slow
def test_broken_entry_point_is_one_line(tmp_path, plugin_data, plugins):
    train, _ = plugin_data
    site = write_entry_point(tmp_path / "site", "ep_gd = myplug_mod:Missing\n")
    env = pythonpath(plugins, site)
    one_error(cli("list", extra_env=env),
              "entry point myplug:ep_gd = myplug_mod:Missing", "cannot load",
              "AttributeError: module 'myplug_mod' has no attribute 'Missing'")
    out = tmp_path / "r.h5"
    one_error(cli("run", config(tmp_path, train, name="ep_gd", plugins=()), "--backend", "sim",
                  "-o", out, extra_env=env), "entry point myplug:ep_gd", "AttributeError")
    assert not out.exists()
    # a broken entry point does not stop runs of other algorithms
    res = cli("run", config(tmp_path, train), "--backend", "sim", "-o", out, "-q",
              extra_env=env)
    assert res.returncode == 0, res.stderr


@pytest.mark.slow
def test_names_clashing_with_a_built_in_name_both_origins(tmp_path, plugin_data, plugins):
    train, _ = plugin_data
    site = write_entry_point(tmp_path / "site", "gd = myplug_mod:EPGD\n")
    one_error(cli("list", extra_env=pythonpath(plugins, site)),
              "algorithm 'gd' is defined twice", "entry point myplug:gd = myplug_mod:EPGD",
              "built-in (distnewton.algorithms.gd:GD)")
    out = tmp_path / "r.h5"
    one_error(cli("run", config(tmp_path, train, plugins=("clash",)), "--backend", "sim",
                  "-o", out, extra_env=pythonpath(plugins)),
              "run.plugins: clash: algorithm 'giant' is defined twice",
              "clash:Giant (module clash)", "built-in (distnewton.algorithms.giant:GIANT)")
    assert not out.exists()


@pytest.mark.parametrize("module,parts", [
    ("nosuchmodule", ["run.plugins: cannot import 'nosuchmodule' (ModuleNotFoundError: "
                      "No module named 'nosuchmodule')"]),
    ("extra_task.py", ["run.plugins: cannot import 'extra_task.py'", "ModuleNotFoundError"]),
])
def test_plugin_that_cannot_be_imported(tmp_path, plugin_data, plugins, module, parts):
    train, _ = plugin_data
    out = tmp_path / "r.h5"
    one_error(cli("run", config(tmp_path, train, plugins=()), "--plugin", module, "--backend",
                  "sim", "-o", out, extra_env=pythonpath(plugins)), *parts)
    assert not out.exists()


def test_unknown_algorithm_hints_at_register_algorithm(tmp_path, plugin_data, plugins):
    train, _ = plugin_data
    one_error(cli("run", config(tmp_path, train, name="plugin_gdd"), "--backend", "sim",
                  "-o", tmp_path / "r.h5", extra_env=pythonpath(plugins)),
              "unknown algorithm 'plugin_gdd' (did you mean 'plugin_gd'?)",
              "run.plugins myplugin imported")


@pytest.mark.mpi
@pytest.mark.parametrize("module,parts", [
    ("rank0only", ["ranks 1-2: run.plugins: cannot import 'rank0only' (ImportError: rank0only "
                   "needs a library that rank", "ranks 1-2 lack worker task myplugin.grad"]),
    ("extra_task", ["worker-task tables differ: ranks 0-1 lack worker task myplugin.extra"]),
])
def test_plugin_on_some_ranks_only_stops_every_rank(tmp_path, plugin_data, plugins, module, parts):
    """A module importable on rank 0 only, or registering a task on rank 2 only:
    every rank stops with exit code 2 and rank 0's one line, no hang, no file."""
    train, _ = plugin_data
    out = tmp_path / "r.h5"
    res = cli("run", config(tmp_path, train, plugins=(module,)), "-o", out, n=3, timeout=120,
              extra_env=pythonpath(plugins))
    if module == "rank0only":   # each rank names its own number: two texts
        parts = [parts[1], "rank 1: run.plugins: cannot import 'rank0only'",
                 "rank 2: run.plugins: cannot import 'rank0only'"]
    one_error(res, *parts)
    assert not out.exists() and not list(tmp_path.glob("r.h5*"))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.slow
def test_plugin_checkpoint_then_resume_equals_an_uninterrupted_run(tmp_path, plugin_data, plugins,
                                                                   backend):
    """The plugin given by --plugin only; --resume finds it in the recorded config."""
    train, _ = plugin_data
    cfg = config(tmp_path, train, plugins=(), max_rounds=60, grad_rtol=None)
    full, part = tmp_path / "full.h5", tmp_path / "part.h5"
    run(cfg, full, backend, "--plugin", "myplugin", folders=[plugins])
    run(cfg, part, backend, "--plugin", "myplugin", "--set", "run.max_rounds=25",
        "--set", "run.checkpoint_every=5", folders=[plugins])
    attrs, hist_part, _ = read_result(part)
    assert attrs["status"] == "max_rounds" and hist_part["iteration"][-1] == 25
    res = cli("run", "--resume", part, "--set", "run.max_rounds=60", "-q",
              *(["--backend", "sim", "--workers", K] if backend == "sim" else []),
              n=K + 1 if backend == "mpi" else None, extra_env=pythonpath(plugins))
    assert res.returncode == 0, res.stderr
    (_, h_full, w_full), (_, h_res, w_res) = read_result(full), read_result(part)
    assert_close(w_res, w_full, 1e-12)
    assert np.array_equal(h_res["iteration"], h_full["iteration"])
    assert np.allclose(h_res["loss"], h_full["loss"], rtol=1e-12, atol=0)
    assert np.allclose(h_res["plugin_norm"][1:], h_full["plugin_norm"][1:], rtol=1e-12)
    check_counts(h_res)


def test_unstorable_attribute_is_named(tmp_path, plugin_data, plugins):
    """A plugin attribute the checkpoint cannot store: the periodic checkpoint
    warns naming it, the final write falls back (exit 4) with the same reason."""
    train, _ = plugin_data
    out = tmp_path / "r.h5"
    res = cli("run", config(tmp_path, train, name="plugin_unstorable",
                            plugins=("unstorable",), max_rounds=4, checkpoint_every=2),
              "--backend", "sim", "-o", out, "-q", extra_env=pythonpath(plugins))
    assert res.returncode == 4, res.stderr
    assert "cannot checkpoint algorithm.cache['seen']: a builtins.set" in res.stderr
    assert "warning: checkpoint at iteration 2" in res.stderr
    assert not out.exists()


def test_resolve_appends_plugins_and_imports_them(plugins, monkeypatch):
    """``section.key+=value`` appends to the list (what --plugin passes), a
    repeated module is kept once, and resolve imports them."""
    import sys

    from distnewton.algorithms import ALGORITHMS
    from distnewton.config import resolve
    from distnewton.errors import UserError
    monkeypatch.syspath_prepend(str(plugins))
    raw = {"data": {"train": "x.svm"}, "algorithm": {"name": "plugin_gd"}}
    cfg = resolve({**raw, "run": {"plugins": ["myplugin"]}},
                  ["run.plugins+=myplugin", "run.plugins+=[myplugin]"])
    assert cfg["run"]["plugins"] == ["myplugin"] and "myplugin" in sys.modules
    assert ALGORITHMS.origin("plugin_gd") == "module myplugin"
    assert ALGORITHMS["plugin_gd"].__module__ == "myplugin"
    assert resolve(raw, ["run.plugins+=myplugin"])["run"]["plugins"] == ["myplugin"]
    assert resolve({**raw, "run": {"plugins": None}},
                   ["run.plugins+=myplugin"])["run"]["plugins"] == ["myplugin"]
    assert resolve({**raw, "algorithm": {"name": "gd"}})["run"]["plugins"] == []
    with pytest.raises(UserError, match=r"run.plugins: expected importable module names, got 3"):
        resolve(raw, ["run.plugins=[3]"])
    with pytest.raises(UserError, match=r"--set run.max_rounds\+=3: run.max_rounds is not a list"):
        resolve({**raw, "run": {"max_rounds": 5}}, ["run.max_rounds+=3"])
