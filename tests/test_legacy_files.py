"""Files written by an earlier distnewton still load, report, predict and resume.

``tests/data/legacy-0.3.0.dev0/`` holds result files written by 0.3.0.dev0
(before the format moved to ``distnewton/io/``; its README says how they were
made).  The references are the runs themselves: the same configs run now must
give the same models (the iterates did not change), and the stopped run
resumed now must end where an uninterrupted run ends.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from support.launch import ROOT, cli, read_result

import distnewton
from distnewton.io.read import load

LEGACY = ROOT / "tests" / "data" / "legacy-0.3.0.dev0"


@pytest.fixture()
def folder(tmp_path):
    """A writable copy of the legacy folder (the configs name files relative to it)."""
    dst = tmp_path / "legacy"
    shutil.copytree(LEGACY, dst)
    return dst


@pytest.mark.parametrize("name", ["newton.h5", "giant-stopped.h5", "ovr.h5",
                                  "failed.h5.fallback.npz"])
def test_every_legacy_file_loads_with_its_history_and_model(name):
    run = load(LEGACY / name)
    assert run.attrs["schema_version"] == 1
    assert run.attrs["distnewton_version"] == "0.3.0.dev0"
    n = len(run.history["iteration"])
    assert n > 2 and all(len(v) == n for v in run.history.values())
    assert run.w is not None and np.all(np.isfinite(run.w))
    assert run.rounds == int(run.history["comm_rounds"][-1])


def test_legacy_models_equal_todays_runs(folder, monkeypatch):
    """Same config, same model: the refactorings kept every iterate."""
    monkeypatch.chdir(folder)
    for cfg, name in (("newton.yaml", "newton.h5"), ("ovr.yaml", "ovr.h5")):
        old = load(folder / name)
        new = distnewton.solve(str(folder / cfg))
        assert new.status == old.status == "converged"
        np.testing.assert_array_equal(new.w, old.w)
        for col in ("iteration", "comm_rounds", "bytes_up", "bytes_down", "loss"):
            np.testing.assert_array_equal(new.history[col], old.history[col], err_msg=col)


def test_a_legacy_checkpoint_resumes_to_the_uninterrupted_run(folder):
    full, stopped = folder / "full.h5", folder / "giant-stopped.h5"
    res = cli("run", "giant.yaml", "-q", "-o", full, cwd=folder)
    assert res.returncode == 0, res.stderr
    before = load(stopped)
    assert before.status == "stopped"
    res = cli("run", "--resume", stopped, "-q", cwd=folder)
    assert res.returncode == 0, res.stderr
    _, hf, wf = read_result(full)
    attrs, hr, wr = read_result(stopped)
    assert attrs["status"] == "converged"
    k = len(before.history["iteration"])
    assert 1 < k < len(hr["iteration"])
    for col in ("iteration", "comm_rounds", "bytes_up", "bytes_down"):
        np.testing.assert_array_equal(hr[col], hf[col], err_msg=col)
    np.testing.assert_allclose(hr["loss"], hf["loss"], rtol=1e-12)
    np.testing.assert_allclose(wr, wf, rtol=0, atol=1e-12 * np.abs(wf).max())


def test_report_and_predict_read_legacy_files(folder):
    res = cli("report", folder / "newton.h5", folder / "ovr.h5", "--format", "json")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count('"algorithm": "newton"') == 2
    res = cli("predict", folder / "newton.h5", folder / "train.svm")
    assert res.returncode == 0, res.stderr
    from sklearn.datasets import load_svmlight_file
    old = load(folder / "newton.h5")
    assert old.attrs["n_features"] == 7                # 6 features and the intercept
    X, y = load_svmlight_file(str(folder / "train.svm"), n_features=6)
    expected = np.where(X @ old.w[:6] + old.w[6] > 0, 1.0, -1.0)
    got = np.array([float(v) for v in res.stdout.split()])
    np.testing.assert_array_equal(got, expected)
