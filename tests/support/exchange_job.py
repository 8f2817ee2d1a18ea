"""distnewton.exchange.exchange on made-up blocks, run by tests/test_ingest_parallel.py
under ``mpiexec -n P``.  Every rank builds the same random matrix, takes its share
(rows ``[n r / P, n (r+1) / P)`` cut into blocks of 1..7 rows, a rank with no
rows at all included), exchanges, and checks its shards against ``X[parts[k]]``
computed from the whole matrix: exit 0 and "ok" on every rank, else an assertion.

    python tests/support/exchange_job.py SEED WEIGHTED BLOCKS
    (BLOCKS: the workers of each rank, e.g. "0,1;;2;3")
"""

import sys

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from distnewton.exchange import exchange, held

seed, weighted, layout = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
comm = MPI.COMM_WORLD
rank, P = comm.Get_rank(), comm.Get_size()
blocks = [[int(k) for k in part.split(",") if k] for part in layout.split(";")]
assert len(blocks) == P, (layout, P)
K = sum(map(len, blocks))
rng = np.random.default_rng(seed)
n, d = 211, 9
X = sp.random(n, d, density=0.3, format="csr", random_state=seed)
X.data[:] = rng.standard_normal(X.nnz)
y = rng.standard_normal(n)
s = rng.uniform(0.5, 2, n)
owner = rng.integers(-1, K, n).astype(np.int32)           # -1: left out
cuts = [0, 0] + sorted(rng.integers(0, n, P - 1).tolist()) + [n]   # rank 0: no rows
lo, hi = cuts[rank + 1], cuts[rank + 2]
share, at = [], lo
while at < hi:
    step = int(rng.integers(1, 8))
    b = min(at + step, hi)
    share.append(held(X[at:b], y[at:b], s[at:b] if weighted else None))
    at = b
pieces, sent = exchange(comm, share, lo, owner, blocks, d, np.int32)
assert all(b is None for b in share)                      # the share was consumed
assert len(pieces) == len(blocks[rank])
for k, (Xk, yk, sk) in zip(blocks[rank], pieces):
    rows = np.flatnonzero(owner == k)
    ref = X[rows]
    assert Xk.shape == ref.shape and Xk.indices.dtype == np.int32, (Xk.shape, ref.shape)
    np.testing.assert_array_equal(Xk.indptr, ref.indptr)
    np.testing.assert_array_equal(Xk.indices, ref.indices)
    np.testing.assert_array_equal(Xk.data, ref.data)
    np.testing.assert_array_equal(yk, y[rows])
    if weighted:
        np.testing.assert_array_equal(sk, s[rows])
    else:
        assert sk is None
assert comm.allreduce(sent) > 0
print("ok", flush=True)
