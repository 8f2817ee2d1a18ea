"""Logical workers: ``run.workers: K`` under ``mpiexec -n P`` runs K clients on the
P - 1 worker ranks.  Each real MPI run equals the sim backend with K workers (iterates
to 1e-12, the same rounds and bytes per round, the same shard sizes) through every
kind of round: reductions, gathers, ragged gathers, scatters and subset rounds, with
rank 0 hosting the first block of workers (``run.master_shard``, the default when
K >= P) and without."""

import numpy as np
import pytest

import distnewton
from support.checkpoints import EXIT_STOPPED, assert_resumed_equals_full, stopped_run
from support.launch import cli, own_lines, read_result, write_config
from support.references import a9a_like

K = 5


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return str(a9a_like(tmp_path_factory.mktemp("lw") / "d.svm", n=1500, d=30, per_row=6))


CASES = {
    "giant": {"name": "giant"},                                            # reductions
    "ranl": {"name": "ranl", "capacities": "uniform(0.3, 1.0)", "regions": 6},  # scatters
    "fednl-toplek-pp": {"name": "fednl", "compressor": "toplek", "participation": 3},
    "lbfgs": {"name": "lbfgs"},
}


@pytest.mark.mpi
@pytest.mark.parametrize("on_master", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_k_logical_workers_on_two_ranks_equal_k_simulated(tmp_path, data, case, on_master):
    cfg = {"data": {"train": data}, "model": {"loss": "logistic", "lambda": 1e-3},
           "algorithm": CASES[case],
           "run": {"workers": K, "max_iterations": 8, "grad_rtol": 1e-16, "max_rounds": 200,
                   "master_shard": on_master}}
    path = write_config(tmp_path / "c.yaml", **cfg)
    res = cli("run", path, "-o", tmp_path / "m.h5", "-q", n=3)       # master + 2 ranks
    assert res.returncode == 0, res.stderr
    attrs, hist, w = read_result(tmp_path / "m.h5")
    sim = distnewton.solve(cfg)
    assert attrs["n_workers"] == K and attrs["backend"] == "mpi"
    assert attrs["master_shard"] == on_master
    assert list(attrs["shard_sizes"]) == list(sim.attrs["shard_sizes"]) == [300] * K
    assert np.linalg.norm(w - sim.w) <= 1e-12 * np.linalg.norm(sim.w)
    for key in ("comm_rounds", "bytes_up", "bytes_down"):
        assert np.array_equal(hist[key], sim.history[key]), key


@pytest.mark.mpi
def test_fewer_workers_than_ranks_is_a_one_line_error(tmp_path, data):
    path = write_config(tmp_path / "c.yaml", data={"train": data},
                        algorithm={"name": "giant"}, run={"workers": 2})
    res = cli("run", path, "-o", tmp_path / "m.h5", "-q", n=4)
    assert res.returncode == 2
    assert own_lines(res.stderr) == ["distnewton: error: run.workers: 2 workers but 3 worker "
                                     "ranks would idle: launch mpiexec -n 3, or set "
                                     "run.workers >= 3"]
    assert not (tmp_path / "m.h5").exists()


@pytest.mark.mpi
def test_master_shard_true_with_one_worker_per_rank_is_a_one_line_error(tmp_path, data):
    path = write_config(tmp_path / "c.yaml", data={"train": data},
                        algorithm={"name": "giant"}, run={"master_shard": True})
    res = cli("run", path, "-o", tmp_path / "m.h5", "-q", n=3)
    assert res.returncode == 2
    assert own_lines(res.stderr) == [
        "distnewton: error: run.master_shard: true needs at least as many workers as "
        "ranks: 2 workers on mpiexec -n 3 (launch mpiexec -n 2, or set run.workers >= 3)"]
    assert not (tmp_path / "m.h5").exists()


@pytest.mark.mpi
def test_master_shard_auto_hosts_on_rank_0_only_when_workers_outnumber_worker_ranks(
        tmp_path, data):
    for n, K, hosted in ((3, None, False), (2, 2, True), (3, 3, True)):
        run = {"max_iterations": 2} | ({} if K is None else {"workers": K})
        path = write_config(tmp_path / "c.yaml", data={"train": data},
                            algorithm={"name": "newton"}, run=run)
        res = cli("run", path, "-o", tmp_path / "m.h5", "-q", "--overwrite", n=n)
        assert res.returncode == 0, res.stderr
        attrs, _, _ = read_result(tmp_path / "m.h5")
        assert (attrs["n_workers"], bool(attrs["master_shard"])) == (K or n - 1, hosted)


@pytest.mark.mpi
def test_stop_and_resume_with_logical_workers_equals_the_full_run(tmp_path, data):
    """Every logical worker's state (FedNL-PP's H_i, its RNG) goes into the
    checkpoint and comes back to the same rank-independent worker k."""
    path = write_config(tmp_path / "c.yaml", data={"train": data},
                        model={"loss": "logistic", "lambda": 1e-3},
                        algorithm={"name": "fednl", "compressor": "randk", "participation": 2},
                        run={"workers": K, "max_rounds": 30, "grad_rtol": 1e-16})
    full, stopped = tmp_path / "full.h5", tmp_path / "stopped.h5"
    assert cli("run", path, "-o", full, "-q", n=3).returncode == 0
    res = stopped_run(path, stopped, "mpi", n=3, sig="SIGUSR1")
    assert res.returncode == EXIT_STOPPED, res.stderr
    _, hist_stop, _ = read_result(stopped)
    res = cli("run", "--resume", stopped, "-q", n=3)
    assert res.returncode == 0, res.stderr
    assert_resumed_equals_full(stopped, full, hist_stop)
