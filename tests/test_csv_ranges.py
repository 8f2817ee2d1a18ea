"""CSV/TSV read by byte ranges (issue 31 item 4, :mod:`distnewton.data.csv_ranges`):
every rank parses the lines that start in its byte range, the header read once.

The reference is the arrays each file is written from (numpy's ``savetxt``), and for
a9a the LIBSVM file read by scikit-learn; under ``mpiexec`` the run on the parallel
path equals the rank-0 path's (``DISTNEWTON_PARALLEL_INGEST=0``, the file parsed
whole by pyarrow): the same shard sizes, label map, rounds, bytes and iterates.
"""

import functools

import numpy as np
import pytest
import scipy.sparse as sp

from distnewton.data import csv_ranges
from distnewton.errors import UserError
from distnewton.shares import canonical, parse_share
from distnewton.data.libsvm import concat_parts
from support import launch
from support.launch import NO_DATA, SHARED

#: (delimiter, header, where the label column is, how data.label_column names it,
#:  line ending, a trailing empty line)
VARIANTS = {
    "csv-header-first": (",", True, 0, None, "\n", False),
    "csv-header-by-name": (",", True, 3, "target", "\n", True),
    "csv-noheader-last": (",", False, 6, -1, "\r\n", True),
    "tsv-header-last-crlf": ("\t", True, 6, 6, "\r\n", False),
    "tsv-noheader-first": ("\t", False, 0, 0, "\n", True),
}


def arrays(n=60, d=6, seed=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).round(4) * (rng.random((n, d)) < 0.5)
    y = np.where(X @ rng.normal(size=d) + 0.3 * rng.normal(size=n) > 0, 1.0, -1.0)
    return X, y


def write(path, X, y, variant):
    """X and y as the variant's text file; returns data.label_column."""
    delim, header, at, label_column, newline, trailing = VARIANTS[variant]
    M = np.insert(X, at, y, axis=1)
    names = [f"f{j}" for j in range(X.shape[1])]
    names.insert(at, "target")
    np.savetxt(path, M, delimiter=delim, fmt="%.17g", newline=newline, comments="",
               header=delim.join(names) if header else "")
    if trailing:
        with open(path, "ab") as fh:
            fh.write(newline.encode())
    return label_column


def by_ranges(path, fmt, label_column, P):
    """The rows of P byte ranges, in rank order, as one CSR matrix and the labels."""
    lay = csv_ranges.layout(str(path), fmt, label_column)
    parts = []
    for r in range(P):
        p, _, bad = parse_share(str(path), r, P, False, None,
                                parse=functools.partial(csv_ranges.parse_block, lay))
        assert bad is None, bad
        parts += p
    return canonical(concat_parts(parts), lay.width)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_any_number_of_byte_ranges_concatenate_to_the_written_rows(tmp_path, variant):
    X, y = arrays()
    fmt = "tsv" if variant.startswith("tsv") else "csv"
    path = tmp_path / f"d.{fmt}"
    label_column = write(path, X, y, variant)
    for P in (1, 2, 3, 7, 100):               # 100: more ranks than lines
        Xp, yp = by_ranges(path, fmt, label_column, P)
        np.testing.assert_array_equal(yp, y, err_msg=f"P={P}")
        np.testing.assert_array_equal(Xp.toarray(), X, err_msg=f"P={P}")
        assert Xp.nnz == np.count_nonzero(X)  # no explicit zeros


BAD = [
    (b"label,a,b\n1,2,3\n-1,x,3\n", "d.csv:3: column 'a': 'x' is not a number"),
    (b"label,a,b\n1,2,3\n-1,,3\n", "d.csv:3: column 'a' is empty"),
    (b"1,2,3\n\n-1,2\n", "d.csv:3: 2 fields, expected 3 (as on the first line)"),
    (b"label,a,b\n1,2,3\n-1,inf,3\n", "d.csv:3: column 'a': 'inf' is not a finite number"),
    ("label,a,b\n1,2,3\n-1,\u0661,3\n".encode(), "d.csv:3: column 'a': '\u0661' is not a number"),
    (b'label,a,b\n1,2,3\n-1,"2\n",3\n', "d.csv:3: a quoted field goes on past the end of the "
     "line (CSV fields with a newline inside quotes are not read)"),
]


@pytest.mark.parametrize("content, message", BAD)
def test_a_bad_line_is_named_by_its_line_number(tmp_path, content, message):
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    lay = csv_ranges.layout(str(path), "csv")
    _, _, bad = parse_share(str(path), 0, 1, False, None, name="d.csv",
                            parse=functools.partial(csv_ranges.parse_block, lay))
    assert f"d.csv:{bad[0]}: {bad[1]}" == message


def test_quoted_numbers_spaces_and_booleans_are_read_and_a_label_name_needs_a_header(
        tmp_path):
    """As the one-process reader (pyarrow's type inference) reads them."""
    path = tmp_path / "d.csv"
    path.write_bytes(b'"label","a","b"\n"1","2.5",true\n-1, 0 ,False\n')
    Xp, yp = by_ranges(path, "csv", "label", 2)
    np.testing.assert_array_equal(yp, [1, -1])
    np.testing.assert_array_equal(Xp.toarray(), [[2.5, 1], [0, 0]])
    path.write_bytes(b"1,2\n-1,0\n")
    with pytest.raises(UserError, match="the file has no header: give a column number"):
        csv_ranges.layout(str(path), "csv", "label")


#: what pyarrow (the one-process reader) reads these first lines as, written out:
#: (file, data.label_column, labels, features)
FIRST_LINES = {
    "bom-header-by-name": (b"\xef\xbb\xbflabel,a,b\n1,2,3\n-1,4,5\n", "label",
                           [1, -1], [[2, 3], [4, 5]]),
    "bom-no-header": (b"\xef\xbb\xbf1,2,3\n-1,4,5\n", None, [1, -1], [[2, 3], [4, 5]]),
    "quoted-no-header": (b'"1","2","3"\n"-1","4","5"\n', None, [1, -1], [[2, 3], [4, 5]]),
    "quoted-header": (b'"label","a","b"\n1,2,3\n', "label", [1], [[2, 3]]),
}


@pytest.mark.parametrize("case", list(FIRST_LINES))
def test_a_bom_or_quotes_on_the_first_line_neither_hide_a_header_nor_make_one(tmp_path, case):
    """A UTF-8 byte order mark (Excel's "CSV UTF-8") is not part of the first column's
    name, and a first row of quoted numbers is data: both readers, every rank count
    (the BOM once made the byte ranges refuse label_column by name, and a headerless
    file's first row was taken for a header by both)."""
    from distnewton.data.tables import read_csv
    content, label_column, y, X = FIRST_LINES[case]
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    for P in (1, 2, 5):
        Xp, yp = by_ranges(path, "csv", label_column, P)
        np.testing.assert_array_equal(yp, y, err_msg=f"P={P}")
        np.testing.assert_array_equal(Xp.toarray(), X, err_msg=f"P={P}")
    Xs, ys = read_csv(str(path), label_column)
    np.testing.assert_array_equal(ys, y)
    np.testing.assert_array_equal(Xs.toarray(), X)


def test_a_first_row_with_a_missing_value_is_refused_not_taken_for_a_header(tmp_path):
    """An empty field is no sign of a header: a headerless file whose first row lacks a
    value is refused naming line 1 by both readers (it was silently the column names);
    pandas' index header (``,a,b``) is still a header."""
    from distnewton.data.tables import read_csv
    path = tmp_path / "d.csv"
    path.write_bytes(b"1,,3\n-1,4,5\n")
    lay = csv_ranges.layout(str(path), "csv")
    _, _, bad = parse_share(str(path), 0, 1, False, None, name="d.csv",
                            parse=functools.partial(csv_ranges.parse_block, lay))
    assert not lay.header and bad == (1, "column 'f1' is empty"), (lay, bad)
    with pytest.raises(UserError, match=r"d.csv:1: column 'f1' is empty"):
        read_csv(str(path), None)
    path.write_bytes(b",a,b\n1,2,3\n")
    assert csv_ranges.layout(str(path), "csv").names == ("", "a", "b")


def test_a_cache_entry_parsed_by_the_old_header_rule_is_not_read(tmp_path, monkeypatch):
    """An entry written before quotes stopped making a header (its first row lost) is
    keyed apart from today's: the file is parsed again, both rows."""
    from distnewton.data import cache, formats, tables
    path = tmp_path / "d.csv"
    path.write_bytes(FIRST_LINES["quoted-no-header"][0])
    with monkeypatch.context() as m:               # the code before the fix
        m.setattr(formats, "options", lambda fmt, lc: f"{fmt}:label_column={lc!r}")
        m.setattr(tables, "has_header", lambda path, delimiter: True)
        stale, _, note = cache.read_text(str(path), None, False, str(tmp_path / "c"), "csv")
    assert len(stale.y) == 1 and note.startswith("written ")
    ds, _, note = cache.read_text(str(path), None, False, str(tmp_path / "c"), "csv")
    assert note.startswith("written ") and list(ds.y) == [1, -1]


def test_an_empty_file_is_no_data_rows(tmp_path):
    """Not "FILE:1: the first line is empty" (a file with no line at all)."""
    path = tmp_path / "d.csv"
    for content in (b"", b"\xef\xbb\xbf"):           # nothing, or nothing but a BOM
        path.write_bytes(content)
        with pytest.raises(UserError, match=r"d.csv: no data rows \(an empty file\)$"):
            csv_ranges.layout(str(path), "csv")


def test_a_carriage_return_inside_a_line_is_refused_naming_the_line(tmp_path):
    """Only \\n and \\r\\n end a line here; a lone \\r (old Mac endings, or a stray one)
    was a traceback from the csv module (exit 1, and a crash on one rank only)."""
    path = tmp_path / "d.csv"
    path.write_bytes(b"label,a,b\r1,2,3\r-1,4,5\r")
    with pytest.raises(UserError, match=r"d.csv:1: a carriage return \(\\r\) inside the line"):
        csv_ranges.layout(str(path), "csv")
    path.write_bytes(b"label,a,b\n1,2,3\n-1,2\r,5\n1,2,3\n")
    lay = csv_ranges.layout(str(path), "csv")
    _, _, bad = parse_share(str(path), 0, 1, False, None, name="d.csv",
                            parse=functools.partial(csv_ranges.parse_block, lay))
    assert bad is not None and bad[0] == 3, bad
    assert bad[1].startswith("a carriage return (\\r) inside the line"), bad


def mpi_run(tmp_path, data, n, par, name):
    cfg = launch.write_config(tmp_path / f"{name}.yaml", data=data,
                              model={"lambda": 1e-2}, algorithm={"name": "newton"},
                              run={"grad_norm": 1e-12, "max_rounds": 30, "backend": "mpi"})
    res = launch.cli("run", cfg, "-q", "-o", f"{name}.h5", n=n, cwd=tmp_path,
                     extra_env={"DISTNEWTON_PARALLEL_INGEST": par})
    assert res.returncode == 0, res.stderr
    return launch.read_result(tmp_path / f"{name}.h5")


def assert_same_run(a, b):
    """The same shards give the same problem, rounds, bytes and iterates."""
    (pa, ha, wa), (pb, hb, wb) = a, b
    np.testing.assert_array_equal(pa["shard_sizes"], pb["shard_sizes"])
    for key in ("n_samples", "n_features", "label_map"):
        assert pa[key] == pb[key], key
    for col in ("comm_rounds", "bytes_up", "bytes_down"):
        np.testing.assert_array_equal(ha[col], hb[col], err_msg=col)
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-12)
    np.testing.assert_allclose(wa, wb, rtol=0, atol=1e-12 * np.abs(wb).max())


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.parametrize("variant, n, cached", [("csv-header-by-name", 2, False),
                                                ("csv-noheader-last", 3, True),
                                                ("tsv-header-last-crlf", 4, False)])
def test_under_mpiexec_the_byte_ranges_give_the_rank0_paths_run(tmp_path, variant, n, cached):
    X, y = arrays(n=90)
    fmt = "tsv" if variant.startswith("tsv") else "csv"
    path = tmp_path / f"d.{fmt}"
    data = {"train": str(path), "label_column": write(path, X, y, variant),
            "cache": str(tmp_path / "cache") if cached else "off"}
    par, serial = (mpi_run(tmp_path, data, n, p, f"r{p}") for p in ("1", "0"))
    assert "setup_seconds_json" in par[0] and "setup_seconds_json" not in serial[0]
    assert par[0]["dataset_cache"].startswith("written ") if cached else \
        par[0]["dataset_cache"] == ""
    assert par[0]["n_features"] == X.shape[1] and par[0]["n_samples"] == len(y)
    assert_same_run(par, serial)


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.parametrize("content, line, message", [
    (b"-1,2,%s\n", 81, "column 'f2': 'x' is not a number"),
    (b'-1,"2\n,%s\n', 81, "a quoted field goes on past the end of the line (CSV fields "
     "with a newline inside quotes are not read)"),

    (b"-1,2\r,%s\n", 81, "a carriage return (\\r) inside the line: lines end with \\n or "
     "\\r\\n"),
])
def test_a_bad_line_on_the_last_reader_is_one_line_for_the_job(tmp_path, content, line, message):
    rows = b"".join(b"1,0.5,%d\n" % i for i in range(100))
    lines = rows.splitlines(keepends=True)
    lines[line - 1] = content % b"x"          # past 2/3 of the bytes: the last of 3 readers'
    path = tmp_path / "d.csv"
    path.write_bytes(b"".join(lines))
    cfg = launch.write_config(tmp_path / "c.yaml", data={"train": str(path), "cache": "off"},
                              algorithm={"name": "newton"}, run={"backend": "mpi"})
    res = launch.cli("run", cfg, "-o", "out.h5", n=4, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert launch.own_lines(res.stderr) == [f"distnewton: error: {path}:{line}: {message}"]
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.skipif(not (SHARED / "a9a.bz2").exists(), reason=NO_DATA)
def test_a9a_as_dense_csv_gives_the_libsvm_files_rows_and_run(tmp_path):
    """a9a written as a dense CSV (123 feature columns, the label first): its byte
    ranges are scikit-learn's rows of the LIBSVM file, and the run under mpiexec
    is the LIBSVM file's."""
    from sklearn.datasets import load_svmlight_file
    X, y = load_svmlight_file(str(SHARED / "a9a.bz2"), n_features=123)
    path = tmp_path / "a9a.csv"
    np.savetxt(path, np.column_stack([y, X.toarray()]), delimiter=",", fmt="%g")
    Xp, yp = by_ranges(path, "csv", None, 3)
    assert (Xp != X).nnz == 0 and Xp.shape == X.shape
    np.testing.assert_array_equal(yp, y)
    svm = tmp_path / "a9a.svm"
    from distnewton.data import write_libsvm
    write_libsvm(svm, sp.csr_matrix(X), y)
    runs = [mpi_run(tmp_path, {"train": str(p), "cache": "off"}, 3, "1", p.stem + p.suffix[1:])
            for p in (path, svm)]
    assert_same_run(*runs)
