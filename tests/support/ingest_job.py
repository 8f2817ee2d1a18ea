"""The parallel ingestion's Problem against the rank-0 path's, run by
tests/test_ingest_parallel.py under ``mpiexec -n 3`` (rank 0 hosts no worker, so
it reads no rows): n, d, the shard sizes, their non-zeros and sum of squared row
lengths (what ``solver: auto`` weighs) must be the rank-0 path's exactly.

    python tests/support/ingest_job.py CONFIG.yaml
"""

import sys

import yaml
from mpi4py import MPI

from distnewton import ingest_parallel
from distnewton.config import resolve
from distnewton.ingest import prepare
from distnewton.session import blocks_of

comm = MPI.COMM_WORLD
cfg = resolve(yaml.safe_load(open(sys.argv[1])))
K = comm.Get_size() - 1
_, problem, _, _ = ingest_parallel.ingest(comm, cfg, K, blocks_of(cfg, K, comm.Get_size()))
if comm.Get_rank() == 0:
    ref = prepare(cfg, K).problem
    for key in ("n", "d", "sizes", "nnz", "row_nnz_sq", "lam", "weighted"):
        assert getattr(problem, key) == getattr(ref, key), (key, getattr(problem, key),
                                                            getattr(ref, key))
    print("ok", flush=True)
