"""``backend: sim``: K workers simulated in one process.

Each worker is a :class:`WorkerContext` with its own shard, RNG stream and
state; a round calls the task for k = 0..K-1 in order (a subset round: for the
addressed k only, in order) and sums (or gathers) the replies.  Counting is
done by :class:`Runtime`, exactly as for MPI.
"""

from __future__ import annotations

import numpy as np

from ..faults import mark
from . import RAGGED, Runtime, contexts, run_task


class SimRuntime(Runtime):
    backend = "sim"
    parallel_workers = False          # the workers run one after another

    def __init__(self, shards, seed, params=None):
        super().__init__()
        self.workers = contexts(range(len(shards)), shards, seed, params)
        self.K = len(self.workers)

    def _exchange(self, task_id, down, up, scatter, evaluating, to):
        mark("round", 0)
        workers = self.workers if to is None else [self.workers[k] for k in to]
        replies = (run_task(ctx, self.names, task_id, down,
                            None if scatter is None else scatter[i], evaluating)
                   for i, ctx in enumerate(workers))
        if not isinstance(up, int):
            out = list(replies)
            for ctx, r, n in zip(workers, out, up):
                if n is not RAGGED and r.size != n:
                    raise RuntimeError(f"worker {ctx.k} replied {r.size} values, expected {n}")
            return out
        total = np.zeros(up)
        for ctx, r in zip(workers, replies):
            if r.size != up:
                raise RuntimeError(f"worker {ctx.k} replied {r.size} values, expected {up}")
            total += r
        return total
