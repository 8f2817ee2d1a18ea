"""``distnewton data split``: pre-split a data set into one file per worker.

Layout of the output folder ``DIR``:

* ``manifest.json``: ``format`` ("distnewton-shards"), ``version`` (1),
  ``n_parts``, ``n_samples``, ``n_features``, ``nnz``, ``sizes`` (rows per
  part), ``nnz_per_part``, ``labels`` (the distinct raw labels, so the master
  derives the label mapping without reading any rows), ``files``,
  ``source`` and ``source_sha256`` (the file that was split, as stored),
  ``partition``, ``seed``, ``alpha``, ``zero_based``;
* ``part-00000.h5`` ... one per worker (HDF5 CSR: datasets ``indptr``,
  ``indices``, ``data``, ``y`` (raw labels) and ``rows`` (the rows' indices in
  the source file), attributes ``part``, ``n_parts``, ``n_features``).

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

from distnewton.errors import UserError

FORMAT, VERSION = "distnewton-shards", 1
MANIFEST = "manifest.json"


def part_name(k):
    return f"part-{k:05d}.h5"


def split_file(path, n_parts, out, partition="iid", seed=0, alpha=0.5, n_features=None,
               zero_based=False, overwrite=False):
    """Split LIBSVM file ``path`` into ``n_parts`` HDF5 CSR parts in ``out``; the manifest."""
    import h5py

    from distnewton.data import partition as make_parts
    from distnewton.data import read_libsvm
    from distnewton.data.registry import file_sha256
    out = Path(out)
    if (out / MANIFEST).exists() and not overwrite:
        raise UserError(f"--out {out}: already holds a split (use --overwrite to replace it)")
    ds = read_libsvm(str(path), n_features=n_features, zero_based=zero_based)
    parts = make_parts(ds.y, n_parts, partition, seed=seed, alpha=alpha)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create ({exc.strerror})") from None
    for old in out.glob("part-*.h5"):
        old.unlink()
    files, nnz = [], []
    for k, rows in enumerate(parts):
        X = ds.X[rows]
        name = part_name(k)
        tmp = out / f".{name}.tmp"
        with h5py.File(tmp, "w") as f:
            f.attrs.update(part=k, n_parts=n_parts, n_features=ds.n_features,
                           format=FORMAT, version=VERSION)
            f["indptr"] = X.indptr.astype(np.int64)
            f["indices"] = X.indices
            f["data"] = X.data
            f["y"] = ds.y[rows]
            f["rows"] = rows
        os.replace(tmp, out / name)
        files.append(name)
        nnz.append(int(X.nnz))
    manifest = {
        "format": FORMAT, "version": VERSION, "n_parts": n_parts,
        "n_samples": ds.n_samples, "n_features": ds.n_features, "nnz": ds.nnz,
        "sizes": [len(p) for p in parts], "nnz_per_part": nnz,
        "labels": [float(v) for v in np.unique(ds.y)], "files": files,
        "source": os.path.abspath(path), "source_sha256": file_sha256(path),
        "partition": partition, "seed": seed, "alpha": alpha, "zero_based": zero_based,
    }
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, out / MANIFEST)
    return manifest


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
    import h5py
    m = manifest or read_manifest(folder, key)
    path = Path(folder) / m["files"][k]
    try:
        with h5py.File(path, "r") as f:
            indptr, indices = f["indptr"][()], f["indices"][()]
            data, y = f["data"][()], f["y"][()]
    except (OSError, KeyError) as exc:
        raise UserError(f"{key}: {path}: cannot read part {k} ({exc})") from None
    n = len(indptr) - 1
    if n != m["sizes"][k] or len(y) != n or len(data) != m["nnz_per_part"][k]:
        raise UserError(f"{key}: {path}: does not match {MANIFEST} ({n} rows, expected "
                        f"{m['sizes'][k]}): the folder mixes two splits")
    return sp.csr_matrix((data, indices, indptr), shape=(n, m["n_features"])), y
