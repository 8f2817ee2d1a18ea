"""``distnewton data split``: pre-split a data set into one file per worker.

Layout of the output folder ``DIR``:

* ``manifest.json``: ``format`` ("distnewton-shards"), ``version`` (1),
  ``n_parts``, ``n_samples``, ``n_features``, ``nnz``, ``sizes`` (rows per
  part), ``nnz_per_part``, ``labels`` (the distinct raw labels, so the master
  derives the label mapping without reading any rows), ``files``,
  ``source`` and ``source_sha256`` (the file that was split, as stored),
  ``partition``, ``seed``, ``alpha``, ``zero_based``;
* ``part-00000.h5`` ... one per worker: the cache's row blocks (:mod:`.csrfile`:
  datasets ``indptr``, ``indices``, ``data``, ``y`` (raw labels) and ``rows``
  (the rows' indices in the source file), attributes ``part``, ``n_parts``,
  ``n_features``).

``distnewton data split`` reads the file through the binary cache
(:mod:`.cache`); under ``mpiexec -n P`` every rank reads its share and the rows
move to the rank writing their part (``Alltoallv``, part k on rank k mod P):
no rank holds more than its share and its parts (:mod:`distnewton.split_parallel`).

The rows of part k are ``partition(y, K, scheme, seed, alpha)[k]`` in file
order (``y`` the raw labels): for ``iid`` and ``contiguous`` (and
``label_skew`` on labels that are already two classes) exactly the shard
worker k gets when the unsplit file is run with the same ``data.partition``,
``data.seed`` and ``data.partition_alpha``, so the two runs compute the same
iterates.

A config uses the folder with ``data.shards: DIR`` (``data.train`` may then be
omitted; the partition keys are ignored).  Under MPI, worker rank r reads only
``part-(r-1)``, the master only ``manifest.json``; the sim backend reads every
part.  The number of workers must equal ``n_parts``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from distnewton.data import csrfile
from distnewton.errors import UserError

FORMAT, VERSION = "distnewton-shards", 1
MANIFEST = "manifest.json"


def part_name(k):
    return f"part-{k:05d}.h5"


def prepare_out(out, overwrite):
    """Check and make the output folder; old parts removed (with ``overwrite``)."""
    out = Path(out)
    if (out / MANIFEST).exists() and not overwrite:
        raise UserError(f"--out {out}: already holds a split (use --overwrite to replace it)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create ({exc.strerror})") from None
    for old in list(out.glob("part-*.h5")) + [out / MANIFEST]:
        if old.exists():
            old.unlink()
    return out


def write_part(out, k, n_parts, X, y, rows):
    """Part ``k`` (a :mod:`.csrfile` block with its source rows), atomically."""
    name = part_name(k)
    tmp = Path(out) / f".{name}.tmp"
    csrfile.write_rows(tmp, X.data, X.indices, X.indptr, y,
                       {"part": k, "n_parts": n_parts, "n_features": X.shape[1],
                        "format": FORMAT, "version": VERSION}, rows=rows)
    os.replace(tmp, Path(out) / name)
    return name


def write_manifest(out, *, n_parts, n_features, sizes, nnz, labels, source, sha256,
                   partition, seed, alpha, zero_based):
    manifest = {
        "format": FORMAT, "version": VERSION, "n_parts": n_parts,
        "n_samples": int(sum(sizes)), "n_features": int(n_features), "nnz": int(sum(nnz)),
        "sizes": [int(v) for v in sizes], "nnz_per_part": [int(v) for v in nnz],
        "labels": [float(v) for v in labels], "files": [part_name(k) for k in range(n_parts)],
        "source": os.path.abspath(source), "source_sha256": sha256,
        "partition": partition, "seed": seed, "alpha": alpha, "zero_based": zero_based,
    }
    tmp = Path(out) / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, Path(out) / MANIFEST)
    return manifest


def split_file(path, n_parts, out, partition="iid", seed=0, alpha=0.5, n_features=None,
               zero_based=False, overwrite=False, cache="auto"):
    """Split LIBSVM file ``path`` into ``n_parts`` parts in ``out`` (one process; the
    file read through the binary cache, ``cache`` as ``data.cache``); the manifest."""
    from distnewton.data import partition as make_parts
    from distnewton.data.cache import read_text
    out = prepare_out(out, overwrite)
    ds, sha, _ = read_text(os.fspath(path), n_features, zero_based, cache)
    parts = make_parts(ds.y, n_parts, partition, seed=seed, alpha=alpha)
    nnz = []
    for k, rows in enumerate(parts):
        X = ds.X[rows]
        write_part(out, k, n_parts, X, ds.y[rows], rows)
        nnz.append(X.nnz)
    return write_manifest(out, n_parts=n_parts, n_features=ds.n_features,
                          sizes=[len(p) for p in parts], nnz=nnz, labels=np.unique(ds.y),
                          source=path, sha256=sha, partition=partition, seed=seed,
                          alpha=alpha, zero_based=zero_based)


def read_manifest(folder, key="data.shards"):
    path = Path(folder) / MANIFEST
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{key}: {path}: no such file (make the folder with "
                        "`distnewton data split FILE --parts K --out DIR`)") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{key}: {path}: not a readable manifest ({exc})") from None
    if m.get("format") != FORMAT:
        raise UserError(f"{key}: {path}: not a distnewton split manifest")
    if int(m.get("version", 0)) > VERSION:
        raise UserError(f"{key}: {path}: split format version {m['version']} is newer than "
                        f"this distnewton reads ({VERSION})")
    return m


def load_part(folder, k, manifest=None, key="data.shards"):
    """(X CSR, raw labels) of part ``k``, checked against the manifest."""
    m = manifest or read_manifest(folder, key)
    path = Path(folder) / m["files"][k]
    try:
        data, indices, indptr, y = csrfile.read_rows(path)
    except (OSError, KeyError) as exc:
        raise UserError(f"{key}: {path}: cannot read part {k} ({exc})") from None
    n = len(indptr) - 1
    if n != m["sizes"][k] or len(y) != n or len(data) != m["nnz_per_part"][k]:
        raise UserError(f"{key}: {path}: does not match {MANIFEST} ({n} rows, expected "
                        f"{m['sizes'][k]}): the folder mixes two splits")
    return sp.csr_matrix((data, indices, indptr), shape=(n, m["n_features"])), y
