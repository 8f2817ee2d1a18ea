"""Tests for distnewton.data: LIBSVM reader/writer and labels (partitions and
synthetic data: test_partition_synth.py)."""

import bz2
import csv
import gzip
import io
import json

import numpy as np
import pytest
import scipy.sparse as sp

from distnewton.data import (
    Dataset,
    dataset_info,
    make_synthetic,
    map_labels,
    read_libsvm,
    write_libsvm,
)
from distnewton.data import libsvm
from distnewton.errors import UserError



def _write(tmp_path, name, content: bytes):
    path = tmp_path / name
    if name.lower().endswith(".gz"):
        content = gzip.compress(content)
    elif name.lower().endswith(".bz2"):
        content = bz2.compress(content)
    path.write_bytes(content)
    return path


def _dense(ds):
    return ds.X.toarray().tolist()


# --------------------------------------------------------------- reading


SAMPLE = b"1 1:0.5 3:2\n-1 2:1\n"


@pytest.mark.parametrize("name", ["s.txt", "s.libsvm", "s.gz", "s.bz2", "s.txt.BZ2"])
def test_formats_by_extension(tmp_path, name):
    ds = read_libsvm(_write(tmp_path, name, SAMPLE))
    assert isinstance(ds, Dataset)
    assert _dense(ds) == [[0.5, 0, 2], [0, 1, 0]]
    assert ds.y.tolist() == [1, -1] and ds.y.dtype == np.float64
    assert (ds.n_samples, ds.n_features, ds.nnz) == (2, 3, 3)
    assert ds.path == str(tmp_path / name)


def test_crlf_comments_qid_blank_lines_no_final_newline(tmp_path):
    text = (b"# header comment\r\n\r\n2 qid:7 1:1.5 4:-2 # trailing\r\n"
            b"   \r\n# another\r\n0 qid:8 2:3e-1\r\n1 3:+4")
    ds = read_libsvm(_write(tmp_path, "c.txt", text))
    assert ds.y.tolist() == [2, 0, 1]
    assert _dense(ds) == [[1.5, 0, 0, -2], [0, 0.3, 0, 0], [0, 0, 4, 0]]


def test_explicit_zeros_dropped_but_count_for_n_features(tmp_path):
    ds = read_libsvm(_write(tmp_path, "z.txt", b"1 1:0.000000 2:1.000000 5:0.000000\n-1 1:2\n"))
    assert ds.X.shape == (2, 5) and ds.nnz == 2
    assert ds.X.has_canonical_format and ds.X.dtype == np.float64
    assert ds.X.data.tolist() == [1.0, 2.0]


def test_unsorted_indices_accepted_and_sorted(tmp_path):
    ds = read_libsvm(_write(tmp_path, "u.txt", b"1 3:1 1:2\n-1 2:5\n"))
    assert _dense(ds) == [[2, 0, 1], [0, 5, 0]]
    assert ds.X.has_sorted_indices


def test_n_features_and_zero_based(tmp_path):
    p = _write(tmp_path, "n.txt", b"1 1:1\n-1 2:1\n")
    assert read_libsvm(p, n_features=10).X.shape == (2, 10)
    ds = read_libsvm(_write(tmp_path, "zb.txt", b"1 0:1\n-1 2:1\n"), zero_based=True)
    assert _dense(ds) == [[1, 0, 0], [0, 0, 1]]


def test_rows_without_features(tmp_path):
    ds = read_libsvm(_write(tmp_path, "e.txt", b"1\n-1 2:1\n1 # nothing\n"))
    assert ds.X.shape == (3, 2) and ds.X[0].nnz == 0 and ds.X[2].nnz == 0


def test_non_ascii_and_qid_in_comments_are_fine(tmp_path):
    text = "1 1:1 # café qid\n-1 2:2 # qid:x\n".encode()
    ds = read_libsvm(_write(tmp_path, "a.txt", text))
    assert _dense(ds) == [[1, 0], [0, 2]]


ERRORS = [
    ("value", b"1 1:1\n-1 3:abc\n", 2, "not a number"),
    ("index-float", b"1 1:1\n\n1 1.5:2\n", 3, "not an integer"),
    ("index-word", b"1 x:2\n", 1, "not an integer"),
    ("index-negative", b"1 1:1\n1 -2:1\n", 2, "negative"),
    ("index-zero", b"# c\n1 0:1\n", 2, "zero_based"),
    ("missing-label", b"1 1:1\n1:0.5 2:1\n", 2, "missing label"),
    ("label", b"1 1:1\n# c\nabc 1:1\n", 3, "label 'abc' is not a number"),
    ("nan-value", b"1 1:1\n1 2:nan\n", 2, "not finite"),
    ("inf-value", b"1 1:1\n1 2:inf\n", 2, "not finite"),
    ("overflow-value", b"1 2:1e400\n", 1, "not finite"),
    ("nan-label", b"1 1:1\n-1 1:1\nnan 2:1\n", 3, "label 'nan' is not finite"),
    ("inf-label", b"-inf 2:1\n", 1, "not finite"),
    ("no-colon", b"1 1:1 2\n", 1, "not of the form index:value"),
    ("duplicate", b"1 1:1\n1 2:1 2:3\n", 2, "more than once"),
    ("duplicate-unsorted", b"1 1:1\n1 3:1 2:1 3:3\n", 2, "more than once"),
    ("underscore", b"1 1:1\n1 1:1_0\n", 2, "not a number"),
    ("non-ascii", "1 1:1\n-1 2:é\n".encode(), 2, "not a number"),
    ("bad-qid", b"1 qid:3 1:1\n-1 qid:x 2:2\n", 2, "qid"),
    ("late-qid", b"1 1:1 qid:3\n", 1, "qid"),
    ("huge-index", b"1 1:1\n1 99999999999:1\n", 2, "too large"),
    ("crlf", b"1 1:1\r\n1 2:x\r\n", 2, "not a number"),
]


@pytest.mark.parametrize("case,text,line,what", ERRORS, ids=[e[0] for e in ERRORS])
@pytest.mark.parametrize("ext", [".txt", ".bz2"])
def test_errors_name_file_and_line(tmp_path, case, text, line, what, ext):
    path = _write(tmp_path, f"bad-{case}{ext}", text)
    with pytest.raises(UserError) as exc:
        read_libsvm(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}:{line}: "), msg
    assert what in msg


def test_first_bad_line_is_reported(tmp_path):
    # line 2 is only wrong for us (NaN), line 4 is rejected by sklearn too
    path = _write(tmp_path, "two.txt", b"1 1:1\n1 1:nan\n1 1:1\n1 0:1\n")
    with pytest.raises(UserError, match=r"two.txt:2: "):
        read_libsvm(path)


def test_n_features_exceeded(tmp_path):
    path = _write(tmp_path, "nf.txt", b"1 1:1\n-1 2:1 3:1\n")
    with pytest.raises(UserError) as exc:
        read_libsvm(path, n_features=2)
    assert str(exc.value) == f"{path}:2: feature index 3 exceeds n_features=2"
    with pytest.raises(UserError, match=r"nf.txt:2: feature index 2 exceeds n_features=2 \(zero-based\)"):
        read_libsvm(path, n_features=2, zero_based=True)
    with pytest.raises(UserError, match="n_features must be a positive integer"):
        read_libsvm(path, n_features=0)


@pytest.mark.parametrize("text", [b"", b"# only a comment\n\n \r\n"])
def test_no_data_rows(tmp_path, text):
    path = _write(tmp_path, "empty.txt", text)
    with pytest.raises(UserError) as exc:
        read_libsvm(path)
    assert str(exc.value) == f"{path}: no data rows"


def test_missing_file_and_bad_compression(tmp_path):
    missing = tmp_path / "nope.bz2"
    with pytest.raises(UserError) as exc:
        read_libsvm(missing)
    assert str(exc.value) == f"{missing}: no such file"
    broken = tmp_path / "broken.bz2"
    broken.write_bytes(b"this is not bzip2")
    with pytest.raises(UserError, match="broken.bz2: cannot read or decompress"):
        read_libsvm(broken)
    with pytest.raises(UserError, match="is a directory"):
        read_libsvm(tmp_path)


def test_small_blocks_keep_line_numbers(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    X = sp.random(200, 30, density=0.2, format="csr", random_state=4)
    y = rng.choice([-1.0, 1.0], size=200)
    path = tmp_path / "blocks.txt"
    write_libsvm(path, X, y)
    whole = read_libsvm(path, n_features=30)
    monkeypatch.setattr(libsvm, "BLOCK_BYTES", 37)  # shorter than many lines
    parts = read_libsvm(path, n_features=30)
    assert (whole.X != parts.X).nnz == 0 and np.array_equal(whole.y, parts.y)
    lines = path.read_bytes().split(b"\n")
    lines[150] = lines[150] + b" 31:nan"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(UserError, match=r"blocks.txt:151: "):
        read_libsvm(path)


def test_scanner_agrees_with_fast_path(tmp_path):
    X, y, _ = make_synthetic(300, 40, density=0.3, seed=5)
    path = tmp_path / "agree.txt"
    write_libsvm(path, X, y)
    block = path.read_bytes()
    fast = libsvm._fast_block(block, False, None)
    slow = libsvm._scan_block(block, str(path), 0, False, None)
    for a, b in zip(fast, slow):
        assert a.dtype == b.dtype and np.array_equal(a, b)


NUMBERS = ["1", "-0", "+2.5", ".5", "5.", "1e5", "1E-5", "-3.25e+2", "0e999", "1e22", "1e23",
           "0.1", "123456789012345e-22", "9007199254740993", "3.14159265358979323846",
           "2.2250738585072014e-308", "4.9e-324", "1.7976931348623157e308", "0.000000001"]


def test_fast_path_numbers_are_exactly_pythons_float():
    rng = np.random.default_rng(7)
    nums = NUMBERS + ["%.17g" % v for v in rng.standard_normal(500) * 10.0 ** rng.integers(-30, 30, 500)]
    block = "".join(f"{v} 1:{v} 3:{v}\n" for v in nums).encode()
    data, indices, indptr, y = libsvm._fast_block(block, False, None)
    ref = np.array([float(v) for v in nums])
    assert np.array_equal(y.view(np.int64), ref.view(np.int64))           # -0.0 too
    assert np.array_equal(data.view(np.int64), np.repeat(ref, 2).view(np.int64))
    assert indices.tolist() == [0, 2] * len(nums) and indptr.tolist() == list(range(0, 2 * len(nums) + 1, 2))


@pytest.mark.parametrize("text", [b"1 2:1 1:1\n", b"1 1:1 1:2\n", b"1 +1:1\n", b"1 1:nan\n",
                                  b"1 1:1e400\n", b"1 1:1 qid:2\n", b"1:1 2:1\n", b"1 1:\n",
                                  b"1 :1\n", b"1 1:1:1\n", b"1 1:1-2 2:.\n", b"1 1:1 7\n"])
def test_fast_path_declines_what_only_the_scanner_may_judge(text):
    assert libsvm._fast_block(text, False, None) is None


# --------------------------------------------------------------- writing


@pytest.mark.parametrize("name", ["rt.txt", "rt.gz", "rt.bz2"])
def test_round_trip(tmp_path, name):
    X, _, _ = make_synthetic(50, 20, density=0.2, seed=1, loss="ridge")
    X = X.tolil()
    X[3, :] = 0                      # a row without features
    y = np.linspace(-2, 2, 50)
    y[:10] = 1.0                     # integral labels written as ints
    path = tmp_path / name
    write_libsvm(path, X.tocsr(), y)
    ds = read_libsvm(path, n_features=20)
    assert (ds.X != X.tocsr()).nnz == 0
    assert np.array_equal(ds.y, y)   # %.17g round-trips exactly
    opener = {"rt.gz": gzip.open, "rt.bz2": bz2.open}.get(name, open)
    with opener(path, "rb") as f:
        first = f.readline()
    assert first.split()[0] == b"1"


def test_write_dense_and_rejects_bad_input(tmp_path):
    path = tmp_path / "d.txt"
    write_libsvm(path, np.array([[0.0, 1.5], [2.0, 0.0]]), [0, 1])
    assert path.read_text() == "0 2:1.5\n1 1:2\n"
    with pytest.raises(ValueError):
        write_libsvm(path, np.ones((2, 2)), [1.0])
    with pytest.raises(ValueError):
        write_libsvm(path, np.array([[np.nan]]), [1.0])


def test_dataset_info(tmp_path):
    path = _write(tmp_path, "i.txt", b"2 1:1 3:0\n1 2:1\n2 1:1\n")
    info = dataset_info(path)
    assert info["n_samples"] == 3 and info["n_features"] == 3 and info["nnz"] == 3
    assert info["density"] == pytest.approx(3 / 9)
    assert info["labels"] == {1: 1, 2: 2}
    assert info["file_bytes"] == path.stat().st_size


# --------------------------------------------------------------- labels


@pytest.mark.parametrize("raw,expected", [
    ([-1, 1, 1], [-1, 1, 1]),
    ([0, 1, 0], [-1, 1, -1]),
    ([1, 2, 2], [-1, 1, 1]),
    ([5, -3, 5], [1, -1, 1]),
])
def test_map_labels_logistic_rules(raw, expected):
    out, mapping = map_labels(np.array(raw, float), "logistic")
    assert out.tolist() == expected and out.dtype == np.float64
    json.dumps(mapping)              # provenance must be serialisable


@pytest.mark.parametrize("raw", [[1, 1, 1], [-1.0], [0, 0]])
def test_map_labels_one_class_refused(raw):
    """A training set of one class has no decision boundary (issue 28): refused
    naming the source, whether the class is +-1 or another label."""
    with pytest.raises(UserError, match=r"^train\.svm: every label is .*two classes"):
        map_labels(np.array(raw, float), "logistic", source="train.svm")


def test_map_labels_positive_labels_and_ridge():
    y = np.array([1, 2, 3, 11, 20], float)
    out, mapping = map_labels(y, "logistic", positive_labels=[11, 20])
    assert out.tolist() == [-1, -1, -1, 1, 1]
    assert mapping["rule"] == "positive_labels" and mapping["positive_labels"] == [11, 20]
    out, mapping = map_labels(np.array([0.5, 2.0]), "ridge")
    assert out.tolist() == [0.5, 2.0] and mapping["rule"] == "identity"


def test_map_labels_errors():
    with pytest.raises(UserError) as exc:
        map_labels(np.array([1, 2, 3.0]), "logistic", source="news20.bz2")
    msg = str(exc.value)
    assert "news20.bz2" in msg and "3 distinct labels" in msg and "data.positive_labels" in msg
    with pytest.raises(UserError, match="match no label"):
        map_labels(np.array([1, 2, 3.0]), "logistic", positive_labels=[7])
    with pytest.raises(UserError, match="unknown loss"):
        map_labels(np.array([1.0]), "hinge")


def test_map_labels_reference():
    _, ref = map_labels(np.array([1, 2, 2.0]), "logistic", source="train")
    ref = json.loads(json.dumps(ref))  # survives a JSON round trip
    out, same = map_labels(np.array([2, 2.0]), "logistic", reference=ref, source="test")
    assert out.tolist() == [1, 1] and same["map"] == ref["map"]
    with pytest.raises(UserError, match=r"mushrooms\.t.*\[3\]"):
        map_labels(np.array([1, 3.0]), "logistic", reference=ref, source="mushrooms.t")
    _, ref = map_labels(np.array([1, 5, 9.0]), "logistic", positive_labels=[9])
    out, _ = map_labels(np.array([9, 1.0]), "logistic", reference=ref)
    assert out.tolist() == [1, -1]


# --------------------------------------------------------------- real data


def _manifest(shared_data):
    with open(shared_data / "MANIFEST.tsv", newline="") as f:
        return {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}


REAL = ["a9a.bz2", "a9a.t.bz2", "w8a.bz2", "ijcnn1.bz2", "mushrooms.bz2",
        "phishing.crlf.bz2", "german.numer.bz2", "australian.bz2", "news20.bz2"]


@pytest.mark.data(reason="the real files, read against scikit-learn and MANIFEST.tsv")
@pytest.mark.parametrize("name", REAL)
def test_real_data_matches_sklearn_and_manifest(shared_data, name):
    from sklearn.datasets import load_svmlight_file

    row = _manifest(shared_data)[name]
    path = shared_data / name
    ds = read_libsvm(path)
    raw = bz2.decompress(path.read_bytes())
    Xs, ys = load_svmlight_file(io.BytesIO(raw), zero_based=False, dtype=np.float64)
    Xs = sp.csr_matrix(Xs)
    assert Xs.nnz == int(row["nnz"])               # MANIFEST counts explicit zeros
    assert ds.X.shape == (int(row["n_samples"]), int(row["n_features(max index)"]))
    assert ds.nnz == np.count_nonzero(Xs.data)
    assert np.array_equal(ds.y, ys) and ds.X.has_canonical_format
    Xs.eliminate_zeros()
    assert np.array_equal(ds.X.indptr, Xs.indptr)
    assert np.array_equal(ds.X.indices, Xs.indices)
    assert np.array_equal(ds.X.data, Xs.data)


@pytest.mark.data(reason="the real sets' label sets (mushrooms, phishing, news20, a9a)")
def test_real_labels(shared_data):
    _manifest(shared_data)
    y, m = map_labels(read_libsvm(shared_data / "mushrooms.bz2").y, "logistic")
    assert m["map"] == {"1": -1.0, "2": 1.0} and np.sum(y > 0) == 4208
    y, _ = map_labels(read_libsvm(shared_data / "phishing.crlf.bz2").y, "logistic")
    assert np.sum(y > 0) == 6157
    news = read_libsvm(shared_data / "news20.bz2")
    with pytest.raises(UserError, match="20 distinct labels"):
        map_labels(news.y, "logistic", source=news.path)
    y, _ = map_labels(news.y, "logistic", positive_labels=range(11, 21))
    assert set(np.unique(y)) == {-1.0, 1.0}
    train = read_libsvm(shared_data / "a9a.bz2")
    test = read_libsvm(shared_data / "a9a.t.bz2", n_features=train.n_features)
    assert test.n_features == 123
    _, ref = map_labels(train.y, "logistic")
    map_labels(test.y, "logistic", reference=ref, source=test.path)
