"""Input formats besides LIBSVM text (issue 31): CSV/TSV, NumPy .npy/.npz (scipy.sparse
save_npz included), Parquet (dense columns, a list column, Spark ML's vector struct) and
HDF5 CSR. Each file is written here from known arrays by numpy, scipy, pyarrow or h5py,
so the reference is the arrays themselves; a training run on it lands on
scikit-learn's optimum of those arrays; a file none of these is refused naming the
formats; under mpiexec a Parquet file goes through the cache and every rank reads
its row range."""

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from distnewton import solve
from distnewton.data import formats
from distnewton.errors import UserError
from support import launch
from support.launch import SHARED
from support.references import logistic_objective

LAM = 1e-2


@pytest.fixture(scope="module")
def arrays():
    """40 rows, 6 features (about half zero), labels -1/+1 from a planted model."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 6)).round(3) * (rng.random((40, 6)) < 0.5)
    y = np.where(X @ rng.normal(size=6) + 0.3 * rng.normal(size=40) > 0, 1.0, -1.0)
    return X, y


def write(fmt, path, X, y):
    """``path`` in ``fmt`` holding rows X with labels y (the label column first)."""
    M = np.column_stack([y, X])
    if fmt == "csv":
        np.savetxt(path, M, delimiter=",", fmt="%.17g",
                   header=",".join(["label"] + [f"f{j}" for j in range(X.shape[1])]),
                   comments="")
    elif fmt == "tsv":
        np.savetxt(path, M, delimiter="\t", fmt="%.17g")
    elif fmt == "npy":
        np.save(path, M)
    elif fmt == "npz":
        np.savez(path, X=X, y=y)
    elif fmt == "npz-sparse":
        sp.save_npz(path, sp.csr_matrix(M))
    elif fmt == "parquet":
        pq.write_table(pa.table({"label": y, **{f"f{j}": X[:, j] for j in range(X.shape[1])}}),
                       path, row_group_size=7)      # several row groups: read by range
    elif fmt == "parquet-list":
        pq.write_table(pa.table({"features": [list(r) for r in X], "label": y}), path)
    elif fmt == "parquet-spark":
        S = sp.csr_matrix(X)
        vectors = [{"type": 0, "size": X.shape[1],
                    "indices": S.indices[S.indptr[i]:S.indptr[i + 1]].tolist(),
                    "values": S.data[S.indptr[i]:S.indptr[i + 1]].tolist()}
                   for i in range(X.shape[0])]
        vectors[1] = {"type": 1, "size": None, "indices": None, "values": list(X[1])}
        pq.write_table(pa.table({"label": y, "features": vectors}), path, row_group_size=9)
    elif fmt == "hdf5":
        S = sp.csr_matrix(X)
        with h5py.File(path, "w") as f:
            f["indptr"], f["indices"], f["data"], f["y"] = S.indptr, S.indices, S.data, y
    return path


SUFFIX = {"csv": ".csv", "tsv": ".tsv", "npy": ".npy", "npz": ".npz", "npz-sparse": ".npz",
          "parquet": ".parquet", "parquet-list": ".parquet", "parquet-spark": ".parquet",
          "hdf5": ".h5"}
KINDS = list(SUFFIX)


@pytest.mark.parametrize("kind", KINDS)
def test_each_format_reads_back_the_arrays_it_was_written_from(tmp_path, arrays, kind):
    X, y = arrays
    path = write(kind, tmp_path / f"d{SUFFIX[kind]}", X, y)
    fmt = formats.detect(path)
    assert fmt == kind.split("-")[0]
    ds = formats.read(str(path), fmt)
    np.testing.assert_array_equal(ds.y, y)
    np.testing.assert_array_equal(ds.X.toarray(), X)       # %.17g round-trips exactly
    assert ds.X.has_canonical_format and not np.any(ds.X.data == 0)


@pytest.mark.parametrize("kind", ["csv", "npz-sparse", "parquet-spark", "hdf5"])
def test_a_run_on_each_format_lands_on_sklearns_optimum(tmp_path, arrays, kind):
    from sklearn.linear_model import LogisticRegression
    X, y = arrays
    path = write(kind, tmp_path / f"d{SUFFIX[kind]}", X, y)
    res = solve({"data": {"train": str(path)}, "model": {"lambda": LAM},
                 "algorithm": {"name": "newton"}, "run": {"grad_norm": 1e-12}}, workers=3)
    ref = LogisticRegression(C=1 / (LAM * len(y)), fit_intercept=False, tol=1e-12,
                             solver="newton-cholesky").fit(X, y).coef_.ravel()
    np.testing.assert_allclose(res.w, ref, rtol=0, atol=1e-9)
    f_ref = logistic_objective(X, y, ref, LAM)
    assert abs(res.loss - f_ref) <= 1e-14 * f_ref


def test_content_wins_over_the_extension(tmp_path, arrays):
    X, y = arrays
    path = write("parquet", tmp_path / "looks.csv", X, y)
    assert formats.detect(path) == "parquet"
    text = tmp_path / "rows.txt"
    text.write_text("a,b,c\n1,0.5,2\n-1,1,0\n")
    assert formats.detect(text) == "csv"
    (tmp_path / "l.txt").write_text("+1 1:0.5 3:1\n-1 2:1\n")
    assert formats.detect(tmp_path / "l.txt") == "libsvm"
    (tmp_path / "h.csv").write_text("label,x:y\n1,2\n")     # a ':' in a CSV header
    assert formats.detect(tmp_path / "h.csv") == "csv"


def test_label_column_by_name_by_index_and_from_the_end(tmp_path, arrays):
    X, y = arrays
    path = write("csv", tmp_path / "d.csv", X, y)
    by_name = formats.read(str(path), "csv", label_column="label")
    last = formats.read(str(path), "csv", label_column=-1)
    np.testing.assert_array_equal(by_name.y, y)
    np.testing.assert_array_equal(last.y, X[:, -1])
    np.testing.assert_array_equal(last.X.toarray(), np.column_stack([y, X[:, :-1]]))


def test_an_empty_first_line_makes_no_header_and_a_header_alone_has_no_rows(tmp_path):
    """The one-process reader: the header rule reads the first non-empty line (an empty
    first line was taken for a header, and the first row after it with it); a file of
    only a header is "no data rows" (it was "FILE:2: column 'label': '' is not a number")."""
    path = tmp_path / "d.csv"
    path.write_bytes(b"\n1,2,3\n-1,4,5\n")
    ds = formats.read(str(path), "csv")
    np.testing.assert_array_equal(ds.y, [1, -1])
    np.testing.assert_array_equal(ds.X.toarray(), [[2, 3], [4, 5]])
    path.write_bytes(b"\nlabel,a,b\n1,2,3\n")
    np.testing.assert_array_equal(formats.read(str(path), "csv", label_column="label").y, [1])
    path.write_bytes(b"label,a,b\n")
    with pytest.raises(UserError, match=r"^\S*d.csv: no data rows$"):
        formats.read(str(path), "csv")


@pytest.mark.parametrize("content, label_column, needle", [
    (b"PK\x03\x04garbage that is no zip", None, "not readable as npz"),
    (b"\x00\x01\x02\x03binary", None, "not a data format distnewton reads (LIBSVM text, "
     "CSV/TSV text, NumPy .npy/.npz (scipy.sparse save_npz included), Parquet or HDF5 CSR)"),
    (b"label,a\n1,2\n-1,\n", None, "d.csv:3: column 'a' is empty"),
    (b"label,a\n1,2\n-1,x\n", None, "d.csv:3: column 'a': 'x' is not a number"),
    (b"label,a\n1,2\n", "lbl", "data.label_column: no column 'lbl'"),
    (b"1,2\n-1,3\n", 5, "data.label_column: column 5 is out of range"),
])
def test_bad_files_are_one_line_errors_naming_the_file_or_key(tmp_path, content, label_column,
                                                             needle):
    path = tmp_path / "d.csv"
    if content.startswith(b"PK"):
        path = tmp_path / "d.npz"
    elif content.startswith(b"\x00"):
        path = tmp_path / "d.bin"
    path.write_bytes(content)
    with pytest.raises(UserError) as e:
        formats.read(str(path), formats.detect(path), label_column=label_column)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_the_cli_refuses_an_unknown_binary_with_exit_2_and_no_file(tmp_path):
    (tmp_path / "d.bin").write_bytes(bytes(range(256)) * 4)
    out = tmp_path / "out.h5"
    cfg = launch.write_config(tmp_path / "c.yaml", data={"train": str(tmp_path / "d.bin")},
                              algorithm={"name": "newton"})
    res = launch.cli("run", cfg, "-o", out, cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"distnewton: error: data.train: {tmp_path / 'd.bin'}: not a data format distnewton "
        f"reads ({formats.NAMES}); data.format names one"]
    assert not out.exists()


@pytest.mark.parametrize("kind", ["npy", "parquet", "parquet-spark", "hdf5"])
def test_a_share_by_range_concatenates_to_the_whole_file(tmp_path, arrays, kind):
    from distnewton.data.tables import read_share
    X, y = arrays
    path = str(write(kind, tmp_path / f"d{SUFFIX[kind]}", X, y))
    fmt = formats.detect(path)
    shares = [read_share(path, fmt, i, 3) for i in range(3)]
    assert sum(len(s[1]) for s in shares) == len(y) and all(len(s[1]) for s in shares)
    np.testing.assert_array_equal(np.concatenate([s[1] for s in shares]), y)
    whole = sp.vstack([sp.csr_matrix(s[0], shape=(len(s[1]), X.shape[1])) for s in shares])
    np.testing.assert_array_equal(whole.toarray(), X)


def sklearn_optimum(X, y):
    from sklearn.linear_model import LogisticRegression
    return LogisticRegression(C=1 / (LAM * len(y)), fit_intercept=False, tol=1e-12,
                              solver="newton-cholesky").fit(X, y).coef_.ravel()


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.parametrize("kind, cached", [("parquet", False), ("parquet-spark", True),
                                          ("hdf5", True), ("npy", False), ("csv", True)])
def test_under_mpiexec_every_rank_reads_its_rows_and_the_run_equals_sim(tmp_path, arrays,
                                                                        kind, cached):
    """Parquet row groups, HDF5 and .npy row ranges, CSV byte ranges are read by
    every rank (with or without a cache).
    The shards are the rank-0 path's (``DISTNEWTON_PARALLEL_INGEST=0``): the same
    sizes, rounds, bytes and iterates."""
    X, y = arrays
    path = write(kind, tmp_path / f"d{SUFFIX[kind]}", X, y)
    data = {"train": str(path), "cache": str(tmp_path / "cache") if cached else "off"}
    cfg = launch.write_config(tmp_path / "c.yaml", data=data, model={"lambda": LAM},
                              algorithm={"name": "newton"},
                              run={"grad_norm": 1e-12, "max_rounds": 40, "backend": "mpi"})
    out = {}
    for par in ("1", "0"):
        res = launch.cli("run", cfg, "-q", "-o", f"r{par}.h5", n=4, cwd=tmp_path,
                         extra_env={"DISTNEWTON_PARALLEL_INGEST": par})
        assert res.returncode == 0, res.stderr
        out[par] = launch.read_result(tmp_path / f"r{par}.h5")
    (pa, ha, wa), (pb, hb, wb) = out["1"], out["0"]
    assert "setup_seconds_json" in pa and "setup_seconds_json" not in pb   # the parallel path
    np.testing.assert_array_equal(pa["shard_sizes"], pb["shard_sizes"])
    for key in ("n_samples", "n_features", "dataset_sha256", "label_map"):
        assert pa[key] == pb[key], key
    for col in ("comm_rounds", "bytes_up", "bytes_down"):
        np.testing.assert_array_equal(ha[col], hb[col], err_msg=col)
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-12)
    np.testing.assert_allclose(wa, wb, rtol=0, atol=1e-12 * np.abs(wb).max())
    np.testing.assert_allclose(wa, sklearn_optimum(X, y), rtol=0, atol=1e-9)
    # every rank parses (CSV: its byte range) and writes its piece of the entry
    assert pa["dataset_cache"].startswith("written ") if cached else pa["dataset_cache"] == ""
    if cached:
        assert len(list((tmp_path / "cache").iterdir())) == 1


@pytest.mark.slow
@pytest.mark.mpi
def test_a_bad_row_in_one_ranks_row_group_is_one_line_for_the_job(tmp_path, arrays):
    X, y = arrays
    y = y.copy()
    y[30] = np.nan                               # the 5th row group of 7 rows: rank 3's
    path = write("parquet", tmp_path / "d.parquet", X, y)
    cfg = launch.write_config(tmp_path / "c.yaml", data={"train": str(path), "cache": "off"},
                              algorithm={"name": "newton"}, run={"backend": "mpi"})
    res = launch.cli("run", cfg, "-o", "out.h5", n=4, cwd=tmp_path)
    assert res.returncode == 2
    assert launch.own_lines(res.stderr) == [
        f"distnewton: error: {path}: row 31: label nan is not a finite number"]
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "a9a.bz2").exists(), reason="needs ../shared/data")
@pytest.mark.parametrize("kind", ["parquet-spark", "npz-sparse"])
def test_a9a_as_parquet_and_sparse_npz_reaches_sklearns_optimum(tmp_path, kind):
    from sklearn.datasets import load_svmlight_file
    from sklearn.linear_model import LogisticRegression
    X, y = load_svmlight_file(str(SHARED / "a9a.bz2"), n_features=123)
    lam = 1 / X.shape[0]
    path = tmp_path / f"a9a{SUFFIX[kind]}"
    if kind == "npz-sparse":
        sp.save_npz(path, sp.hstack([sp.csr_matrix(y[:, None]), X]).tocsr())
    else:
        write(kind, path, X.toarray(), y)
    res = solve({"data": {"train": str(path)}, "algorithm": {"name": "newton"},
                 "run": {"grad_norm": 1e-10}}, workers=4)
    ref = LogisticRegression(C=1.0, fit_intercept=False, tol=1e-12,
                             solver="newton-cholesky").fit(X, y).coef_.ravel()
    f_ref = logistic_objective(X, y, ref, lam)
    assert (res.loss - f_ref) / f_ref <= 1e-12


@pytest.mark.slow
def test_predict_reads_the_format_and_label_column_it_was_trained_with(tmp_path, arrays):
    from sklearn.linear_model import LogisticRegression
    X, y = arrays
    M = np.column_stack([X, y])                       # the label last
    np.save(tmp_path / "d.npy", M)
    cfg = launch.write_config(tmp_path / "c.yaml", data={"train": "d.npy", "label_column": -1},
                              model={"lambda": LAM}, algorithm={"name": "newton"},
                              run={"grad_norm": 1e-12})
    assert launch.cli("run", cfg, "-o", "out.h5", "-q", cwd=tmp_path).returncode == 0
    res = launch.cli("predict", "out.h5", "d.npy", "--decision", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    ref = LogisticRegression(C=1 / (LAM * len(y)), fit_intercept=False, tol=1e-12,
                             solver="newton-cholesky").fit(X, y)
    np.testing.assert_allclose(np.loadtxt(res.stdout.splitlines()), ref.decision_function(X),
                               rtol=0, atol=1e-9)
    assert "accuracy" in res.stderr
