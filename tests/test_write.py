"""The LIBSVM writer (distnewton/data/libsvm_write.py): exact round trip of every
number, the same parsed arrays as the pure-Python writer, chunking and threads
that do not change a byte (the reader and write_libsvm's basics: test_data.py)."""

import bz2
import gzip
import lzma

import numpy as np
import pytest
import scipy.sparse as sp

from support.launch import ROOT

from distnewton.data import libsvm_write, make_synthetic, read_libsvm, write_libsvm

LEGACY = ROOT / "tests" / "data" / "legacy-0.3.0.dev0"


def _tricky(seed=0, n=20000):
    """Finite non-zero doubles that are hard to print: random bit patterns over
    the whole range, normals at many scales, subnormals and the extremes."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(1, 0x7FF0000000000000, size=n, dtype=np.int64).view(np.float64)
    tiny = np.arange(1, 200) * 5e-324                             # subnormals
    edges = np.array([5e-324, 2.2250738585072014e-308, 2.225073858507201e-308,
                      1.7976931348623157e308, 1.7976931348623155e308, 0.1, 0.2, 0.3,
                      1 / 3, 2 / 3, 1e21, 1e22, 1e23, 1e-7, 1e-5, 1e-4, 123456789.0,
                      2.0 ** 53, 2.0 ** 53 + 2, 9007199254740993.0, 2.0 ** 63, 2.0 ** 64,
                      1e300, 1e-300, 4.35, 0.1 + 0.2, np.pi, np.e, 1.0, 100.0, 1e16])
    normals = rng.standard_normal(n) * 10.0 ** rng.integers(-30, 30, n)
    pos = np.concatenate([bits, tiny, edges, np.abs(normals)])
    return np.concatenate([pos, -pos])


def _tokens(path):
    """Every (label, [(index, value text)]) of a written file, by Python's split."""
    out = []
    for line in path.read_text().splitlines():
        label, *feats = line.split(" ")
        out.append((label, [tuple(t.split(":")) for t in feats]))
    return out


def _same_bits(a, b):
    return np.array_equal(np.asarray(a, np.float64).view(np.int64),
                          np.asarray(b, np.float64).view(np.int64))


def test_every_value_reads_back_to_the_same_double(tmp_path):
    values = _tricky()
    d = 7
    values = values[: len(values) // d * d]
    X = sp.csr_matrix(values.reshape(-1, d))
    y = np.random.default_rng(1).choice([-1.0, 1.0], size=X.shape[0])
    path = tmp_path / "tricky.svm"
    write_libsvm(path, X, y)
    parsed = [float(v) for _, feats in _tokens(path) for _, v in feats]
    assert _same_bits(parsed, X.data)                              # Python's float
    ds = read_libsvm(path, n_features=d)                           # the reader (Arrow)
    assert _same_bits(ds.X.data, X.data) and np.array_equal(ds.X.indices, X.indices)
    assert np.array_equal(ds.X.indptr, X.indptr) and _same_bits(ds.y, y)


def test_values_are_the_shortest_round_trip_form(tmp_path):
    values = np.array([0.1, -1.5, 1e-7, 1e22, 5e-324, 1 / 3, 100.0, 2.0 ** 63])
    write_libsvm(tmp_path / "s.svm", values[None, :], [1])
    texts = [v for _, v in _tokens(tmp_path / "s.svm")[0][1]]
    assert [float(t) for t in texts] == values.tolist()
    assert all(len(t) <= len(repr(v)) for t, v in zip(texts, values.tolist()))
    assert texts[:4] == ["0.1", "-1.5", "1e-7", "1e+22"]


def test_labels_integral_as_ints_others_round_trip(tmp_path):
    y = np.array([1.0, -1.0, 0.0, -0.0, 7.0, 2.0 ** 62, -(2.0 ** 62), 2.0 ** 63, 1e300,
                  0.5, -2.5, 0.1, 1 / 3, 5e-324, -1.7976931348623157e308, 1e-300])
    path = tmp_path / "labels.svm"
    write_libsvm(path, sp.csr_matrix(np.ones((len(y), 1))), y)
    labels = [lab for lab, _ in _tokens(path)]
    assert labels[:7] == ["1", "-1", "0", "0", "7", str(2 ** 62), str(-(2 ** 62))]
    assert np.array_equal([float(v) for v in labels], y)           # -0.0 reads as 0.0
    assert _same_bits([float(v) for v in labels[7:]], y[7:])
    assert _same_bits(read_libsvm(path).y[7:], y[7:])


def test_empty_rows_zeros_and_non_canonical_input(tmp_path):
    # duplicates (summed), explicit zeros and unsorted indices; the caller's matrix
    # is left as it was
    X = sp.csr_matrix((np.array([2.0, 0.0, 1.0, 3.0, -3.0, 0.5]), np.array([2, 0, 0, 1, 1, 4]),
                       np.array([0, 3, 3, 5, 6])), shape=(4, 5))
    before = (X.data.copy(), X.indices.copy())
    write_libsvm(tmp_path / "e.svm", X, [1, 2, 3, 4.5])
    assert (tmp_path / "e.svm").read_text() == "1 1:1 3:2\n2\n3\n4.5 5:0.5\n"
    assert np.array_equal(X.data, before[0]) and np.array_equal(X.indices, before[1])
    write_libsvm(tmp_path / "none.svm", sp.csr_matrix((0, 3)), [])
    assert (tmp_path / "none.svm").read_bytes() == b""


def _python_writer(monkeypatch):
    monkeypatch.setattr(libsvm_write, "ARROW", False)


@pytest.mark.parametrize("name", ["w.svm", "w.svm.gz", "w.svm.bz2", "w.svm.xz"])
def test_same_arrays_as_the_python_writer(tmp_path, monkeypatch, name):
    X, y, _ = make_synthetic(3000, 60, density=0.05, seed=4, loss="ridge")
    X = X.tolil()
    X[[5, 17, 2999], :] = 0                                         # rows without features
    X = X.tocsr()
    y[::3] = np.round(y[::3]) + 0.0                                # some integral labels
    write_libsvm(tmp_path / name, X, y)
    with monkeypatch.context() as m:
        _python_writer(m)
        write_libsvm(tmp_path / ("old-" + name), X, y)
    new, old = read_libsvm(tmp_path / name, 60), read_libsvm(tmp_path / ("old-" + name), 60)
    for a, b in ((new.X.data, old.X.data), (new.y, old.y), (new.y, y), (new.X.data, X.data)):
        assert _same_bits(a, b)
    assert np.array_equal(new.X.indices, old.X.indices) and np.array_equal(new.X.indptr, old.X.indptr)
    opener = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open}.get(name.rsplit(".", 1)[-1], open)
    with opener(tmp_path / name, "rb") as f:
        assert f.read().count(b"\n") == 3000


def test_a_file_of_the_old_writer_rewritten_reads_the_same(tmp_path):
    old = read_libsvm(LEGACY / "train.svm")                        # written with %.17g
    write_libsvm(tmp_path / "again.svm", old.X, old.y)
    new = read_libsvm(tmp_path / "again.svm", old.n_features)
    assert _same_bits(new.X.data, old.X.data) and _same_bits(new.y, old.y)
    assert np.array_equal(new.X.indices, old.X.indices)


def test_chunks_and_threads_do_not_change_a_byte(tmp_path, monkeypatch):
    X, y, _ = make_synthetic(2000, 300, density=0.05, seed=9, loss="ridge")
    X = X.tolil()
    X[7, :] = np.arange(1, 301)                                    # a row above CHUNK_NNZ
    X[8, :] = 0
    X = X.tocsr()
    write_libsvm(tmp_path / "one.svm", X, y)
    monkeypatch.setattr(libsvm_write, "CHUNK_NNZ", 100)
    monkeypatch.setattr(libsvm_write, "CHUNK_ROWS", 13)
    bounds = libsvm_write.chunk_bounds(X.indptr)
    assert bounds[0] == 0 and bounds[-1] == 2000 and len(bounds) > 100
    assert max(np.diff(bounds)) <= 13 and 7 in bounds and 8 in bounds
    Xc, yc = libsvm_write.canonical(X, y)
    for threads in (1, 2, 3):
        text = b"".join(libsvm_write.formatted(Xc, yc, threads=threads))
        assert text == (tmp_path / "one.svm").read_bytes()
    part = b"".join(libsvm_write.formatted(Xc, yc, 100, 1000, threads=2))
    assert part == b"".join((tmp_path / "one.svm").read_bytes().splitlines(True)[100:1000])
    monkeypatch.setattr(libsvm_write, "MAX_NAMES", 299)           # indices cast, not looked up
    assert libsvm_write.index_names(300) is None
    assert b"".join(libsvm_write.formatted(Xc, yc)) == (tmp_path / "one.svm").read_bytes()


def test_refuses_nan_infinity_and_a_label_count_mismatch(tmp_path):
    for X, y in ((np.array([[np.inf]]), [1]), (np.ones((1, 1)), [np.nan]),
                 (np.ones((2, 1)), [1.0])):
        with pytest.raises(ValueError):
            write_libsvm(tmp_path / "bad.svm", X, y)
