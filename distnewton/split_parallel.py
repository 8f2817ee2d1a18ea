"""``mpiexec -n P distnewton data split``: the split with every rank reading its share.

Each rank reads its share of the rows (:func:`~distnewton.shares.local_rows`:
from the binary cache, else its byte range of the text, caching it), the ranks
agree on n, d and the labels, compute the partition exactly as the one-process
split does (:func:`~distnewton.data.split.split_file`, so the parts are the same
rows), move every row to the rank that writes its part (part k on rank k mod P,
``Alltoallv``) and write their parts; rank 0 writes the manifest last.
"""

from __future__ import annotations

import numpy as np

from .data import partition as make_parts
from .data.registry import file_sha256
from .data.split import prepare_out, write_manifest, write_part
from .errors import UserError
from .exchange import exchange
from .ingest_parallel import blockwise, gather_labels, global_rows
from .shares import agree, agree_bcast, index_dtype, local_rows


def split_mpi(path, n_parts, out, partition="iid", seed=0, alpha=0.5, n_features=None,
              zero_based=False, overwrite=False, cache="auto"):
    """:func:`~distnewton.data.split.split_file` on every rank of the job; the
    manifest on rank 0, None on the others."""
    from .runtime import mpi
    comm = mpi.comm_world()
    mpi.check_world(comm)
    try:
        return _split(comm, path, n_parts, out, partition, seed, alpha, n_features,
                      zero_based, overwrite, cache)
    except UserError:
        raise
    except Exception as exc:                   # noqa: BLE001 - every fault ends the job
        mpi.abort_on_exception(exc)


def _split(comm, path, n_parts, out, partition, seed, alpha, n_features, zero_based,
           overwrite, cache):
    rank, P = comm.Get_rank(), comm.Get_size()
    out = agree_bcast(comm, lambda: prepare_out(out, overwrite))
    opts = {"data": {"zero_based": zero_based, "n_features": n_features, "cache": cache,
                     "format": "libsvm", "label_column": None}}
    blocks = [list(range(r, n_parts, P)) for r in range(P)]
    share = local_rows(comm, opts, path, readers=[r for r, ks in enumerate(blocks) if len(ks)])
    raw_y, d, sha = share.raw_y(), share.d, share.sha
    n, row0, labels = global_rows(comm, raw_y, path)
    y_all = gather_labels(comm, raw_y, n) if partition == "label_skew" else np.zeros(n)
    parts = agree(comm, lambda: make_parts(y_all, n_parts, partition, seed=seed, alpha=alpha))
    owner = np.full(n, -1, np.int32)
    for k, p in enumerate(parts):
        owner[p] = k
    pieces, _ = exchange(comm, blockwise(share, raw_y, None), row0, owner, blocks, d,
                         index_dtype(d))
    nnz = {}
    for k, (Xk, yk, _) in zip(blocks[rank], pieces):
        write_part(out, k, n_parts, Xk, yk, parts[k])
        nnz[k] = Xk.nnz
    every = comm.gather(nnz, root=0)
    if rank != 0:
        return None
    merged = {k: v for d in every for k, v in d.items()}
    return write_manifest(out, n_parts=n_parts, n_features=d,
                          sizes=[len(p) for p in parts], nnz=[merged[k] for k in range(n_parts)],
                          labels=labels, source=path, sha256=sha or file_sha256(path),
                          partition=partition, seed=seed, alpha=alpha, zero_based=zero_based)
