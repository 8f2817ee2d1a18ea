"""From a resolved config to the master's :class:`~distnewton.problem.Setup`:
reading, label mapping, row weights, the intercept column, the partition.

This is where a run's data enters: a LIBSVM file (``data.train``, generated
first with ``data.synth``), arrays in memory (``distnewton.solve(data=...)``) or
a folder written by ``distnewton data split`` (``data.shards``, from which each
MPI worker reads its own part: :func:`worker_shard`).  Every input error is a
one-line :class:`~distnewton.errors.UserError` naming the file, line or key.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from . import checks
from .data import cache, formats, make_synthetic, map_labels, partition, runsets, write_libsvm
from .data.libsvm import check_counts
from .data.registry import resolve_path
from .data.split import load_part, read_manifest
from .errors import UserError
from .inputs import check_run_inputs
from .io.read import load as load_result
from .io.validate import check_weights
from .multiclass import ovr_labels
from .multinomial import MultinomialProblem, multinomial_labels
from .objectives import is_classification
from .problem import (IN_MEMORY, Problem, Setup, add_intercept, array_data, free_intercept,
                      keep_rows, lambda_value, l1_value)
from .validation import is_fraction
from .validation import split_rows as held_out
from .weights import row_weights


def prepare(cfg, n_workers, arrays=None) -> Setup:
    """Master: read, map and partition the data; every input error is a UserError.

    ``arrays``: (X, y) given in memory (the Python API's ``data=``) instead of
    ``data.train``; ``data.n_features`` pads X with empty columns."""
    dc, mc = cfg["data"], cfg["model"]
    if arrays is not None:
        return prepare_arrays(cfg, n_workers, *arrays)
    check_run_inputs(cfg)                      # no FIFO, device or folder is read
    runsets.fetch_for_run(cfg)                 # data.fetch: auto: missing registered sets
    if dc["shards"]:
        return prepare_shards(cfg, n_workers, load_rows=cfg["run"]["backend"] == "sim")
    train = dc["train"]
    if dc["synth"] is None:
        train = resolve_path(train, "data.train")
    if dc["synth"] is not None and not os.path.exists(train):
        try:
            X, y, _ = make_synthetic(**{"loss": mc["loss"], **dc["synth"]})
        except TypeError as exc:
            raise UserError(f"data.synth: {exc}") from None
        os.makedirs(os.path.dirname(os.path.abspath(train)), exist_ok=True)
        write_libsvm(train, X, y)
    ds, sha, note = read_cached(cfg, train, dc["n_features"])
    y, label_map = labels(cfg, ds.y, train)
    weights = row_weights(cfg, ds.y, y, label_map)
    X = ds.X
    setup = finish_setup(cfg, n_workers, X, y, read_test(cfg, X.shape[1], label_map), train,
                         sha, label_map, weights)
    setup.cache = note
    return setup


def read_cached(cfg, path, n_features, key="data.train"):
    """``(Dataset, sha256, note)``: :func:`distnewton.data.cache.read_text` with the
    config's ``data.format`` (detected), ``data.label_column``, ``data.zero_based``
    and ``data.cache``."""
    dc = cfg["data"]
    fmt = formats.detect(path, dc["format"], key)
    return cache.read_text(path, n_features, dc["zero_based"], dc["cache"], fmt,
                           dc["label_column"])


def read_test(cfg, d, label_map, key="data.test"):
    """``data.test`` (X with ``d`` columns, no intercept yet; its targets through the
    training label map), or None without one; ``key``: another such file
    (``data.validation``, when it names a file)."""
    path = cfg["data"][key.split(".", 1)[1]]
    if not path or is_fraction(path):
        return None
    ts, _, _ = read_cached(cfg, resolve_path(path, key), d, key)
    yt, _ = labels(cfg, ts.y, path, reference=label_map)
    return ts.X, yt


def read_validation(cfg, d, label_map):
    """``data.validation`` when it names a file (as :func:`read_test`), else None."""
    return read_test(cfg, d, label_map, "data.validation")


def with_intercept(cfg, test):
    """The test set with ``model.fit_intercept``'s column (None stays None)."""
    if test is None or not cfg["model"]["fit_intercept"]:
        return test
    return add_intercept(test[0]), test[1]


def labels(cfg, y, source, reference=None):
    """(targets, label map): :func:`~distnewton.data.libsvm.map_labels`, or the raw
    labels and the class table under ``model.multiclass: ovr``."""
    if cfg["model"].get("multiclass") == "ovr":
        return ovr_labels(y, source, reference, loss=cfg["model"]["loss"])
    if cfg["model"].get("multiclass") == "multinomial":
        return multinomial_labels(y, source, reference)
    return map_labels(y, cfg["model"]["loss"], cfg["data"]["positive_labels"], source=source,
                      reference=reference)


def prepare_arrays(cfg, n_workers, X, y, sample_weight=None):
    """:func:`prepare` for arrays in memory: the dataset is named ``<in-memory>``
    and its sha256 is that of X's CSR buffers and y (and the sample weights)."""
    X, raw = array_data(X, y)
    d = cfg["data"]["n_features"]
    if d is not None:
        if d < X.shape[1]:
            raise UserError(f"data.n_features: {d}, but X has {X.shape[1]} columns")
        X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], d))
    y, label_map = labels(cfg, raw, "data (y)")
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64).ravel()
        if sample_weight.shape != y.shape or not np.all(np.isfinite(sample_weight)) \
                or np.any(sample_weight < 0):
            raise UserError(f"data: sample weights must be {y.size} finite numbers >= 0")
    weights = row_weights(cfg, raw, y, label_map, sample=sample_weight)
    h = hashlib.sha256()
    for a in (X.indptr, X.indices, X.data, y) + (() if weights is None else (weights,)):
        h.update(np.ascontiguousarray(a).tobytes())
    return finish_setup(cfg, n_workers, X, y, None, IN_MEMORY, h.hexdigest(), label_map,
                        weights)


def finish_setup(cfg, n_workers, X, y, test, train, sha, label_map, weights=None):
    """Intercept, partition, the Problem: the part every data source shares."""
    dc, mc = cfg["data"], cfg["model"]
    checks.magnitude(checks.largest(X, y), X.shape[0], mc["loss"], train)
    X, y, weights, validation = held_out(cfg, X, y, weights)
    validation = validation or read_validation(cfg, X.shape[1], label_map)
    if mc["fit_intercept"]:
        X = add_intercept(X)
        if test:
            test = (add_intercept(test[0]), test[1])
        validation = with_intercept(cfg, validation)
    n, d = X.shape
    parts = partition(y, n_workers, dc["partition"], seed=dc["seed"], alpha=dc["partition_alpha"])
    if dc.get("rows_per_worker"):
        parts = keep_rows(parts, int(dc["rows_per_worker"]), dc["seed"])
        n = sum(len(p) for p in parts)
    if label_map.get("rule") == "ovr":      # class sizes over the rows kept
        rows = np.concatenate(parts)
        label_map["counts"] = [int(np.sum(y[rows] == c)) for c in label_map["classes"]]
    C = len(label_map["classes"]) if label_map.get("rule") == "multinomial" else 0
    if C:                                   # class sizes over the rows kept (y: indices)
        rows = np.concatenate(parts)
        label_map["counts"] = [int(np.sum(y[rows] == i)) for i in range(C)]
    counts = np.diff(X.indptr).astype(np.float64)
    problem = Problem(n=n, d=d, lam=lambda_value(cfg, n), l1=l1_value(cfg, n), loss=mc["loss"],
                      sizes=tuple(len(p) for p in parts), free_intercept=free_intercept(cfg),
                      weighted=weights is not None,
                      nnz=tuple(int(counts[p].sum()) for p in parts),
                      row_nnz_sq=tuple(float((counts[p] ** 2).sum()) for p in parts))
    if C:                                   # one vector of d C weights, class-major
        problem = MultinomialProblem(**{**vars(problem), "d": d * C, "classes": C})
    return Setup(X, y, parts, problem, test, train, sha, label_map, weights=weights,
                 validation=validation)


# -- data.shards: a folder written by `distnewton data split` ----------------------
def _features(cfg, m, key):
    d = cfg["data"]["n_features"]
    if d is None:
        return m["n_features"]
    if d < m["n_features"]:
        raise UserError(f"data.n_features: {d} is smaller than the split's {m['n_features']} "
                        f"features ({key})")
    return d


def _label_map(cfg, m, key):
    labels = np.asarray(m["labels"], dtype=np.float64)
    if cfg["model"]["loss"] == "poisson":      # the split's distinct labels, not rows
        check_counts(labels, key, first_row=None)
    _, mapping = map_labels(labels, cfg["model"]["loss"], cfg["data"]["positive_labels"],
                            source=key)
    return mapping


def _finish_rows(cfg, X, y, d, mapping, key, n):
    """Pad to d features, map labels, append the intercept column; values that
    overflow over the split's ``n`` rows are refused (:func:`checks.magnitude`)."""
    checks.magnitude(checks.largest(X, y), n, cfg["model"]["loss"], key)
    if X.shape[1] < d:
        X = sp.csr_matrix((X.data, X.indices, X.indptr), shape=(X.shape[0], d))
    if is_classification(cfg["model"]["loss"]):
        y, _ = map_labels(y, cfg["model"]["loss"], source=key, reference=mapping)
    if cfg["model"]["fit_intercept"]:
        X = add_intercept(X)
    return X, y


def worker_shard(cfg, k):
    """MPI worker k (rank k + 1): its own part only, mapped and shaped like the master's."""
    folder = cfg["data"]["shards"]
    m = read_manifest(folder)
    X, y = load_part(folder, k, m)
    return _finish_rows(cfg, X, y, _features(cfg, m, "data.shards"), _label_map(cfg, m,
                        "data.shards"), "data.shards", m["n_samples"])


def prepare_shards(cfg, n_workers, load_rows):
    """The master's :class:`~distnewton.problem.Setup` for ``data.shards``.

    ``load_rows`` False (MPI master): only the manifest is read; ``X``, ``y``
    and ``parts`` are None and each worker loads its own part.  True (sim):
    every part is read and stacked, ``parts`` are the contiguous row ranges.
    """
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
        pieces = [_finish_rows(cfg, *load_part(folder, k, m), d, mapping, key, m["n_samples"])
                  for k in range(n_workers)]
        X = sp.vstack([p[0] for p in pieces], format="csr")
        y = np.concatenate([p[1] for p in pieces])
        bounds = np.cumsum([0] + m["sizes"])
        parts = [np.arange(a, b, dtype=np.int64) for a, b in zip(bounds[:-1], bounds[1:])]
    d_total = d + (1 if mc["fit_intercept"] else 0)
    test = with_intercept(cfg, read_test(cfg, d, mapping))
    validation = with_intercept(cfg, read_validation(cfg, d, mapping))
    n = m["n_samples"]
    extra = 1 if mc["fit_intercept"] else 0            # the intercept column's entries
    problem = Problem(n=n, d=d_total, lam=lambda_value(cfg, n), l1=l1_value(cfg, n), loss=mc["loss"],
                      sizes=tuple(m["sizes"]), free_intercept=free_intercept(cfg),
                      nnz=tuple(z + extra * s for z, s in zip(m["nnz_per_part"], m["sizes"])))
    return Setup(X, y, parts, problem, test, str(folder), m["source_sha256"], mapping,
                 validation=validation)


def load_w0(path, d, key="model.w0") -> np.ndarray:
    """The warm start of ``model.w0``: a result file's /model/w (HDF5 or
    fallback) or a ``.npy`` vector; it must hold ``d`` finite weights (d
    counts the intercept column).  Every problem is a UserError naming ``key``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UserError(f"{key}: {path}: no such file")
    if path.lower().endswith(".npy"):
        try:
            w = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise UserError(f"{key}: {path}: not a readable .npy file ({exc})") from None
    else:
        try:
            w = load_result(path).w
            if w is None:
                raise UserError(f"{path}: no /model/w in the result file")
        except UserError as exc:
            raise UserError(f"{key}: {exc} (expected a distnewton result file or a .npy "
                            "vector)") from None
        if w.ndim == 2:
            raise UserError(f"{key}: {path} holds a one-vs-rest model ({w.shape[0]} "
                            "classes): warm starts take one binary model")
    return check_weights(path, w, d, key)
