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
from distnewton.problem import add_intercept

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
    from distnewton.driver import file_sha256
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


def _features(cfg, m, key):
    d = cfg["data"]["n_features"]
    if d is None:
        return m["n_features"]
    if d < m["n_features"]:
        raise UserError(f"data.n_features: {d} is smaller than the split's {m['n_features']} "
                        f"features ({key})")
    return d


def _label_map(cfg, m, key):
    from distnewton.data import map_labels
    labels = np.asarray(m["labels"], dtype=np.float64)
    _, mapping = map_labels(labels, cfg["model"]["loss"], cfg["data"]["positive_labels"],
                            source=key)
    return mapping


def _finish_rows(cfg, X, y, d, mapping, key):
    """Pad to d features, map labels, append the intercept column."""
    from distnewton.data import map_labels
    if X.shape[1] < d:
        X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], d))
    if cfg["model"]["loss"] == "logistic":
        y, _ = map_labels(y, "logistic", source=key, reference=mapping)
    if cfg["model"]["fit_intercept"]:
        X = add_intercept(X)
    return X, y


def worker_shard(cfg, k):
    """MPI worker k (rank k + 1): its own part only, mapped and shaped like the master's."""
    folder = cfg["data"]["shards"]
    m = read_manifest(folder)
    X, y = load_part(folder, k, m)
    return _finish_rows(cfg, X, y, _features(cfg, m, "data.shards"), _label_map(cfg, m,
                        "data.shards"), "data.shards")


def prepare_shards(cfg, n_workers, load_rows):
    """The master's :class:`~distnewton.driver.Setup` for ``data.shards``.

    ``load_rows`` False (MPI master): only the manifest is read; ``X``, ``y``
    and ``parts`` are None and each worker loads its own part.  True (sim):
    every part is read and stacked, ``parts`` are the contiguous row ranges.
    """
    from distnewton.data import map_labels, read_libsvm
    from distnewton.data.registry import resolve_path
    from distnewton.problem import Problem, Setup, free_intercept, lambda_value
    key = "data.shards"
    dc, mc = cfg["data"], cfg["model"]
    folder = dc["shards"]
    m = read_manifest(folder)
    if m["n_parts"] != n_workers:
        raise UserError(f"{key}: {folder} has {m['n_parts']} parts but the job has "
                        f"{n_workers} workers (split again with --parts {n_workers}, or "
                        f"run with {m['n_parts']} workers: mpiexec -n {m['n_parts'] + 1})")
    missing = [f for f in m["files"] if not (Path(folder) / f).is_file()]
    if missing:
        raise UserError(f"{key}: {folder}: missing {', '.join(missing[:3])}")
    d = _features(cfg, m, key)
    mapping = _label_map(cfg, m, key)
    X = y = parts = None
    if load_rows:
        pieces = [_finish_rows(cfg, *load_part(folder, k, m), d, mapping, key)
                  for k in range(n_workers)]
        X = sp.vstack([p[0] for p in pieces], format="csr")
        y = np.concatenate([p[1] for p in pieces])
        bounds = np.cumsum([0] + m["sizes"])
        parts = [np.arange(a, b, dtype=np.int64) for a, b in zip(bounds[:-1], bounds[1:])]
    d_total = d + (1 if mc["fit_intercept"] else 0)
    test = None
    if dc["test"]:
        tpath = resolve_path(dc["test"], "data.test")
        ts = read_libsvm(tpath, n_features=d, zero_based=dc["zero_based"])
        yt, _ = map_labels(ts.y, mc["loss"], dc["positive_labels"], source=tpath,
                           reference=mapping)
        test = (add_intercept(ts.X) if mc["fit_intercept"] else ts.X, yt)
    n = m["n_samples"]
    extra = 1 if mc["fit_intercept"] else 0            # the intercept column's entries
    problem = Problem(n=n, d=d_total, lam=lambda_value(cfg, n), loss=mc["loss"],
                      sizes=tuple(m["sizes"]), free_intercept=free_intercept(cfg),
                      nnz=tuple(z + extra * s for z, s in zip(m["nnz_per_part"], m["sizes"])))
    return Setup(X, y, parts, problem, test, str(folder), m["source_sha256"], mapping)
