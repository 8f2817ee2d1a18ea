"""A fixed sequence of full and subset rounds on test-only worker tasks, run by
tests/test_subset_rounds.py under ``mpiexec -n 4`` (``mpi``) or in one process
(``sim``, 3 workers).  Rank 0 prints one JSON object: every round's result and
the counters.  The tasks' replies depend on the worker index k, so a sum or
gather shows exactly which workers answered.

    python tests/support/subset_rounds_job.py sim|mpi
"""

import json
import sys

import numpy as np

from distnewton.runtime import RAGGED, worker_task


@worker_task("subset_test.scale")
def _scale(ctx, v):
    """(k + 1) v: a sum over workers S is (sum_{k in S} (k + 1)) v."""
    ctx.state["ran"] = ctx.state.get("ran", 0) + 1
    return (ctx.k + 1) * v


@worker_task("subset_test.tag")
def _tag(ctx, v, piece=None):
    """k + 1 values 10 k + v[0] (+ the sum of the scattered piece)."""
    ctx.state["ran"] = ctx.state.get("ran", 0) + 1
    extra = 0.0 if piece is None else float(piece.sum())
    return np.full(ctx.k + 1, 10.0 * ctx.k + v[0] + extra)


@worker_task("subset_test.ran")
def _ran(ctx):
    """How many test tasks this worker ran, and how many round times it holds."""
    return np.array([float(ctx.state.get("ran", 0)), float(len(ctx.times))])


def rounds(rt):
    """The sequence; returns {label: result as lists}."""
    v = np.array([1.0, 2.0])
    out = {}
    out["full_sum"] = rt.round("subset_test.scale", v, up=2)                   # 6 v
    out["to_1_sum"] = rt.round("subset_test.scale", v, up=2, to=[1])           # 2 v
    out["to_02_sum"] = rt.round("subset_test.scale", v, up=2, to=[0, 2])       # 4 v
    out["full_gather"] = rt.round("subset_test.tag", [0.5], up=[1, 2, 3])
    out["to_02_gather"] = rt.round("subset_test.tag", [0.5], up=[1, 3], to=[0, 2],
                                   scatter=[[5.0], [7.0, 8.0]])
    out["to_1_np_int"] = rt.round("subset_test.scale", v, up=np.int64(2), to=np.array([1]))
    out["full_np_int"] = rt.round("subset_test.scale", v, up=np.int64(2))
    with rt.evaluating():
        out["eval_to_2"] = rt.round("subset_test.scale", v, up=2, to=[2])
        out["ran"] = rt.round("subset_test.ran", up=[2, 2, 2])
    t = rt.collect_times()
    out["times"] = [t.rounds, t.compute, t.comm, t.idle]
    with rt.evaluating():
        out["ran_after_collect"] = rt.round("subset_test.ran", up=[2, 2, 2])
    out["to_all_sum"] = rt.round("subset_test.scale", v, up=2, to=[0, 1, 2])  # = full
    out["last_full"] = rt.round("subset_test.scale", v, up=2)
    out["ragged_full"] = rt.round("subset_test.tag", [0.5], up=[RAGGED] * 3)    # any lengths
    out["ragged_to_02"] = rt.round("subset_test.tag", [0.5], up=[RAGGED] * 2, to=[0, 2])
    result = {k: [np.asarray(x).tolist() for x in val] if isinstance(val, list)
              else (np.asarray(val).tolist() if not isinstance(val, list) else val)
              for k, val in out.items()}
    result["times"] = out["times"]
    result["algo"] = [rt.algo.rounds, rt.algo.bytes_down, rt.algo.bytes_up]
    result["eval"] = [rt.eval.rounds, rt.eval.bytes_down, rt.eval.bytes_up]
    return result


def main(mode):
    if mode == "sim":
        from distnewton.runtime.sim import SimRuntime
        print(json.dumps(rounds(SimRuntime([None] * 3, seed=0))))
        return
    from distnewton.runtime.mpi import MPIRuntime, check_world, comm_world, serve
    comm = comm_world()
    check_world(comm)
    if comm.Get_rank() != 0:
        serve(comm, None, seed=0)
        return
    rt = MPIRuntime(comm)
    result = rounds(rt)
    rt.shutdown()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
