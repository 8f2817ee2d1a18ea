"""Subset rounds, ``rt.round(..., to=[k, ...])``: only the addressed workers run
and answer, counted by hand, in step with full rounds before and after (sim,
and ``mpiexec -n 4`` where they are point-to-point messages), identical
results in both backends; ``up`` as a numpy integer; ragged gathers (replies of
lengths the master does not know, full and subset); a plugin algorithm whose
gradient comes from two subset rounds in a real run."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from support.launch import ROOT, env, mpiexec, read_result
from support.plugin_fixture import BACKENDS, D, K, assert_close, config, round_bytes, run

JOB = Path(__file__).parent / "support" / "subset_rounds_job.py"
V = [1.0, 2.0]

#: tests/support/subset_rounds_job.py's rounds with 3 workers; task scale: (k + 1) v,
#: task tag: k + 1 values 10 k + v[0] (+ the scattered piece's sum)
EXPECTED = {
    "full_sum": [6 * x for x in V],                      # 1 + 2 + 3
    "to_1_sum": [2 * x for x in V],                      # worker 1 only
    "to_02_sum": [4 * x for x in V],                     # 1 + 3
    "full_gather": [[0.5], [10.5] * 2, [20.5] * 3],
    "to_02_gather": [[0.5 + 5], [20.5 + 15] * 3],        # pieces [5], [7, 8]
    "to_1_np_int": [2 * x for x in V],
    "full_np_int": [6 * x for x in V],
    "eval_to_2": [3 * x for x in V],
    # test tasks run per worker (the evaluation round to [2] too), round times held
    "ran": [[5, 5], [5, 5], [6, 5]],
    "ran_after_collect": [[5, 0], [5, 0], [6, 0]],       # collect_times took them all
    "to_all_sum": [6 * x for x in V],                    # to = all three: a full round
    "last_full": [6 * x for x in V],
    "ragged_full": [[0.5], [10.5] * 2, [20.5] * 3],      # lengths the master did not know
    "ragged_to_02": [[0.5], [20.5] * 3],
}


def hand_counts():
    """(rounds, bytes down, bytes up) of the algorithm's and the evaluation rounds.

    A round to m workers with b bytes of vectors costs m (64 + b) down; a
    scatter in a full round its pieces + 8 per worker, in a subset round its
    pieces only; m * 8 n up for a sum of n floats, the replies for a gather.
    """
    H, v = 64, 16
    down = (3 * (H + v) + 1 * (H + v) + 2 * (H + v)            # full, [1], [0, 2] sums
            + 3 * (H + 8)                                       # full gather, down [0.5]
            + 2 * (H + 8) + 8 * (1 + 2)                         # [0, 2] gather, pieces
            + 1 * (H + v) + 3 * (H + v)                         # numpy-integer up
            + 3 * (H + v) + 3 * (H + v)                         # to all, last full
            + 3 * (H + 8) + 2 * (H + 8))                        # ragged gathers
    up = (3 * v + v + 2 * v + 8 * (1 + 2 + 3) + 8 * (1 + 3) + v + 3 * v + 3 * v + 3 * v
          + 8 * 3 + 8 * (1 + 2 + 3) + 8 * 2 + 8 * (1 + 3))     # ragged: a length word each
    # evaluation: the round to [2]; "ran" (no vectors, 2 floats from each); the
    # timing gather after subset rounds (down [r], the count scattered, r_k up:
    # 5 each); "ran" again
    e_down = (H + v) + 3 * H + (3 * (H + 8) + 8 * 3 + 8 * 3) + 3 * H
    e_up = v + 3 * 16 + 8 * (5 + 5 + 5) + 3 * 16
    return [11, down, up], [4, e_down, e_up]


def job(backend):
    cmd = [sys.executable, str(JOB), backend]
    if backend == "mpi":
        cmd = [mpiexec(), "-n", "4", *cmd]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env(), cwd=ROOT)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def check_job(out):
    for key, want in EXPECTED.items():
        got = out[key]
        if isinstance(want[0], list):
            assert len(got) == len(want), key
            for g, w in zip(got, want):
                assert np.array_equal(g, w), (key, got)
        else:
            assert np.array_equal(got, want), (key, got)
    algo, evals = hand_counts()
    assert out["algo"] == algo and out["eval"] == evals
    rounds, compute, comm, idle = out["times"]
    assert rounds > 0 and 0 <= compute <= rounds and comm >= 0 and idle >= 0
    assert compute + comm == pytest.approx(rounds)


def test_subset_rounds_sim():
    check_job(job("sim"))


@pytest.mark.mpi
def test_subset_rounds_mpi_equal_sim():
    """Point-to-point subset rounds between collective ones, in step; the same
    values and counters as in one process."""
    out_mpi, out_sim = job("mpi"), job("sim")
    check_job(out_mpi)
    for key in EXPECTED:
        assert out_mpi[key] == out_sim[key], key


# -- in-process (sim) checks of the arguments ----------------------------------
def sim_runtime(k=3):
    import distnewton.session  # noqa: F401  (registers loss_grad, checkpoint.set)
    from distnewton.objectives import Shard
    from distnewton.runtime.sim import SimRuntime
    rng = np.random.default_rng(0)
    shards = []
    for _ in range(k):
        X = sp.csr_matrix(rng.standard_normal((10, 4)))
        shards.append(Shard(X, np.sign(rng.standard_normal(10)), "logistic", 0.1))
    return SimRuntime(shards, seed=0)


def test_up_may_be_a_numpy_integer():
    """np.int64 lengths (from numpy arithmetic on d) were a TypeError in both backends."""
    rt = sim_runtime()
    w = np.zeros(4)
    ref = rt.round("loss_grad", w, up=5)
    for up in (np.int64(5), np.int32(5), np.intp(5)):
        assert np.array_equal(rt.round("loss_grad", w, up=up), ref)
    parts = rt.round("loss_grad", w, up=np.array([5, 5]), to=np.array([0, 2]))
    assert np.allclose(parts[0] + parts[1] + rt.round("loss_grad", w, up=5, to=[1]), ref,
                       rtol=1e-14, atol=1e-14)
    assert rt.algo.bytes_up == 8 * 5 * (3 + 3 * 3 + 2 + 1)


def test_to_is_checked():
    rt = sim_runtime()
    w = np.zeros(4)
    for to, msg in (([], "at least one worker"), ([2, 1], "sorted and unique"),
                    ([1, 1], "sorted and unique"), ([3], r"in 0\.\.2"), ([-1], r"in 0\.\.2")):
        with pytest.raises(ValueError, match=msg):
            rt.round("loss_grad", w, up=5, to=to)
    with pytest.raises(ValueError, match="one length per addressed worker"):
        rt.round("loss_grad", w, up=[5, 5, 5], to=[0, 1])
    with pytest.raises(ValueError, match="one vector per addressed worker"):
        rt.round("checkpoint.set", [0.0] * 3, up=1, to=[1], scatter=[[1.0], [2.0]])
    with pytest.raises(TypeError):
        rt.round("loss_grad", w, up=5, to=[0.5])
    assert rt.algo.rounds == 0


def test_collect_times_after_subset_rounds():
    """A worker left out of a round has no time for it: compute/idle per round
    over the addressed workers, and each worker's times are taken exactly."""
    rt = sim_runtime()
    w = np.zeros(4)
    rt.round("loss_grad", w, up=5)
    rt.round("loss_grad", w, up=5, to=[1])
    rt.round("loss_grad", w, up=5, to=[0, 2])
    assert [len(ctx.times) for ctx in rt.workers] == [2, 2, 2]
    t = rt.collect_times()
    assert [len(ctx.times) for ctx in rt.workers] == [0, 0, 0]
    assert 0 < t.compute <= t.rounds and t.comm == pytest.approx(t.rounds - t.compute)
    assert rt.eval.rounds == 1 and rt.eval.bytes_down == 3 * (64 + 8) + 3 * 8 + 3 * 8


# -- a plugin algorithm on subset rounds, end to end ----------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_plugin_on_subset_rounds_equals_full_rounds(tmp_path, plugin_data, plugins, backend):
    """Each iteration: worker 0, then workers 1..K-1 (2 rounds, the bytes of one
    full round); the iterates equal the full-round run's, the time columns add up."""
    train, _ = plugin_data
    cfg = config(tmp_path, train, max_rounds=40, grad_rtol=None)
    run(cfg, tmp_path / "full.h5", "sim", "--set", "run.max_rounds=20", folders=[plugins])
    run(cfg, tmp_path / "split.h5", backend, "--set", "algorithm.split=true", folders=[plugins])
    (_, h_full, w_full), (_, h, w) = (read_result(tmp_path / f) for f in ("full.h5", "split.h5"))
    assert_close(w, w_full, 1e-12)
    its = h["iteration"]
    assert its[-1] == 20
    down, up = round_bytes(K, D)
    assert np.array_equal(h["comm_rounds"], 2 * its)
    assert np.array_equal(h["bytes_down"], down * its)
    assert np.array_equal(h["bytes_up"], up * its)
    assert np.allclose(h["time_compute"] + h["time_comm"], h["wall_time"], rtol=1e-9, atol=1e-12)
    assert np.all(h["time_idle"] >= 0) and np.all(np.isfinite(h["time_idle"]))
