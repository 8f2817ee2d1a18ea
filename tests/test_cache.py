"""The binary cache of parsed text files (``data.cache``, distnewton/data/cache.py).

References: ``read_libsvm`` on the file as it is now (a cached read must give
its arrays exactly), and the run with no cache (``data.cache: off``, rank 0
reading everything), whose iterates every cached run must reproduce.
"""

from __future__ import annotations

import bz2
import json
import os

import numpy as np
import pytest

from distnewton.config import resolve
from distnewton.data import cache, read_libsvm
from distnewton.errors import UserError
from distnewton.ingest import read_cached
from support.launch import cli, own_lines, read_result, write_config


def text_file(path, n=400, d=30, seed=0):
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        cols = np.sort(rng.choice(d, int(rng.integers(1, 8)), replace=False))
        vals = rng.standard_normal(len(cols))
        lines.append(f"{int(rng.choice([-1, 1]))} " + " ".join(
            f"{c + 1}:{float(v)!r}" for c, v in zip(cols, vals)))
    path.write_text("\n".join(lines) + "\n")
    return path


def config(path, where, **data):
    return resolve({"data": {"train": str(path), "cache": str(where), **data},
                    "algorithm": {"name": "gd"}})


def same(ds, ref):
    assert ds.X.shape == ref.X.shape
    for a in ("data", "indices", "indptr"):
        np.testing.assert_array_equal(getattr(ds.X, a), getattr(ref.X, a))
    np.testing.assert_array_equal(ds.y, ref.y)


def test_a_second_read_comes_from_the_cache_and_equals_the_parse(tmp_path, monkeypatch):
    path = text_file(tmp_path / "t.svm")
    cfg = config(path, tmp_path / "c")
    first, sha, note = read_cached(cfg, str(path), None)
    assert note.startswith("written ") and os.path.isdir(note.split(" ", 1)[1])
    import distnewton.data.libsvm as libsvm
    monkeypatch.setattr(libsvm, "read_libsvm", lambda *a, **k: pytest.fail("parsed again"))
    second, sha2, note2 = read_cached(cfg, str(path), None)
    assert note2 == "read " + note.split(" ", 1)[1] and sha2 == sha
    same(second, read_libsvm(path))
    same(first, second)


@pytest.mark.parametrize("change", ["edit", "touch", "append"])
def test_a_changed_source_is_parsed_again(tmp_path, change):
    path = text_file(tmp_path / "t.svm")
    cfg = config(path, tmp_path / "c")
    read_cached(cfg, str(path), None)
    st = os.stat(path)
    if change == "edit":                   # same size, same mtime: the fingerprint
        text = path.read_bytes()
        at = text.index(b":") + 1          # the first value's first digit or sign
        path.write_bytes(text[:at] + (b"7" if text[at:at + 1] != b"7" else b"8")
                         + text[at + 1:])
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif change == "touch":
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    else:
        with open(path, "a") as fh:
            fh.write("1 3:0.5\n")
    assert cache.lookup(tmp_path / "c", path, False, None) is None
    ds, sha, note = read_cached(cfg, str(path), None)
    assert note.startswith("written ")     # parsed, and the entry replaced
    same(ds, read_libsvm(path))
    assert cache.lookup(tmp_path / "c", path, False, None) is not None


def test_other_parse_options_never_meet_the_entry(tmp_path):
    path = text_file(tmp_path / "t.svm")
    read_cached(config(path, tmp_path / "c"), str(path), None)
    assert cache.lookup(tmp_path / "c", path, False, None) is not None
    assert cache.lookup(tmp_path / "c", path, False, 40) is None
    assert cache.lookup(tmp_path / "c", path, True, None) is None
    ds, _, note = read_cached(config(path, tmp_path / "c", zero_based=True), str(path), None)
    assert note.startswith("written ")
    same(ds, read_libsvm(path, zero_based=True))
    assert ds.X.shape[1] == read_libsvm(path).X.shape[1] + 1
    ds, _, note = read_cached(config(path, tmp_path / "c"), str(path), 45)
    assert note.startswith("written ") and ds.X.shape[1] == 45


def test_an_unfinished_entry_is_never_read(tmp_path):
    """A run killed while writing leaves only a .tmp- folder; a source changed
    during the parse is not cached at all."""
    path = text_file(tmp_path / "t.svm")
    ds = read_libsvm(path)
    sig = cache.signature(path)
    tmp = cache.begin(tmp_path / "c", path, False, None)
    cache.write_piece(tmp, 0, 0, [(ds.X, ds.y)])
    assert cache.lookup(tmp_path / "c", path, False, None) is None      # killed here
    assert [e["folder"].name.startswith(".tmp-") and cache.status(e) == "incomplete"
            for e in cache.entries(tmp_path / "c")] == [True]
    with open(path, "a") as fh:
        fh.write("1 2:1\n")
    assert not cache.commit(tmp, tmp_path / "c", path, False, None, sig,
                            [{"file": cache.piece_name(0), "row0": 0, "rows": ds.n_samples,
                              "nnz": ds.nnz}], ds.n_features, "x")
    assert cache.lookup(tmp_path / "c", path, False, None) is None
    assert not tmp.exists()


def test_a_cache_that_cannot_be_written_costs_a_warning(tmp_path, capsys):
    path = text_file(tmp_path / "t.svm")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    ds, _, note = read_cached(config(path, blocker / "c"), str(path), None)
    assert note == "" and "data cache" in capsys.readouterr().err
    same(ds, read_libsvm(path))


def test_a_damaged_entry_is_parsed_again_and_replaced(tmp_path, capsys):
    path = text_file(tmp_path / "t.svm")
    cfg = config(path, tmp_path / "c")
    _, _, note = read_cached(cfg, str(path), None)
    folder = note.split(" ", 1)[1]
    piece = os.path.join(folder, cache.piece_name(0))
    with open(piece, "r+b") as fh:
        fh.truncate(100)
    ds, _, note = read_cached(cfg, str(path), None)
    assert "damaged" in capsys.readouterr().err and note == f"written {folder}"
    same(ds, read_libsvm(path))


def test_auto_caches_only_large_files(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTNEWTON_CACHE", str(tmp_path / "home"))
    small = text_file(tmp_path / "t.svm")
    assert cache.root_for("auto", small) is None
    assert cache.root_for(False, small) is None and cache.root_for("off", small) is None
    assert cache.root_for(True, small) is None
    monkeypatch.setattr(cache, "MIN_BYTES", 10)
    assert cache.root_for("auto", small) == tmp_path / "home" / "parsed"


def test_cache_list_and_clear(tmp_path):
    path = text_file(tmp_path / "t.svm")
    cfg = config(path, tmp_path / "c")
    read_cached(cfg, str(path), None)
    read_cached(cfg, str(path), 50)
    os.utime(path, ns=(0, 10**9))                     # the first two go stale
    read_cached(cfg, str(path), 60)
    (tmp_path / "c" / ".tmp-dead").mkdir()
    res = cli("data", "cache", "list", "--dir", tmp_path / "c")
    assert res.returncode == 0, res.stderr
    states = sorted(line.split()[0] for line in res.stdout.splitlines()[:-1])
    assert states == ["incomplete", "ok", "stale", "stale"], res.stdout
    res = cli("data", "cache", "clear", "--unused", "--dir", tmp_path / "c")
    assert res.returncode == 0 and "removed 3 entries" in res.stdout, res.stdout
    assert [cache.status(e) for e in cache.entries(tmp_path / "c")] == ["ok"]
    res = cli("data", "cache", "clear", "--dir", tmp_path / "c")
    assert "removed 1 entries" in res.stdout and not cache.entries(tmp_path / "c")


# -- under MPI: every rank writes its piece, any number of ranks reads ---------------
def run(tmp_path, name, data, n=None, backend=None, env=None, extra=()):
    cfg = write_config(tmp_path / f"{name}.yaml", data=data,
                       model={"loss": "logistic", "lambda": "1/n"},
                       algorithm={"name": "giant"}, run={"max_rounds": 10, "grad_rtol": 1e-12})
    out = tmp_path / f"{name}.h5"
    args = ["run", cfg, "-q", "-o", out, "--workers", "2", *extra]
    if backend:
        args += ["--backend", backend]
    res = cli(*args, n=n, extra_env=env)
    assert res.returncode == 0, res.stderr
    return read_result(out)


@pytest.mark.mpi
def test_cold_and_warm_runs_on_other_rank_counts_give_the_uncached_run(tmp_path):
    path = text_file(tmp_path / "t.svm", n=900, d=40, seed=2)
    where = tmp_path / "c"
    ref = run(tmp_path, "ref", {"train": str(path), "cache": "off"}, n=3,
              env={"DISTNEWTON_PARALLEL_INGEST": "0"})
    cold = run(tmp_path, "cold", {"train": str(path), "cache": str(where)}, n=3)
    [entry] = os.listdir(where)
    meta = json.loads((where / entry / "meta.json").read_text())
    assert len(meta["pieces"]) == 2                 # one per worker rank: the master reads
    assert sum(p["rows"] for p in meta["pieces"]) == 900     # nothing
    assert meta["pieces"][0]["rows"] != 450         # cut by bytes, read back by rows
    warm_mpi = run(tmp_path, "warm", {"train": str(path), "cache": str(where)}, n=2,
                   extra=("--set", "run.master_shard=true"))
    warm_sim = run(tmp_path, "sim", {"train": str(path), "cache": str(where)}, backend="sim")
    assert cold[0]["dataset_cache"] == f"written {where / entry}"
    for got in (warm_mpi, warm_sim):
        assert got[0]["dataset_cache"] == f"read {where / entry}"
    assert ref[0]["dataset_cache"] == ""
    cold_t, warm_t = (json.loads(r[0]["setup_seconds_json"]) for r in (cold, warm_mpi))
    assert cold_t["parse"] > 0 and cold_t["cache_write"] > 0 and cold_t["cache_read"] == 0
    assert warm_t["parse"] == 0 and warm_t["cache_write"] == 0 and warm_t["cache_read"] > 0
    for got in (cold, warm_mpi, warm_sim):
        assert got[0]["dataset_sha256"] == ref[0]["dataset_sha256"]
        np.testing.assert_array_equal(got[0]["shard_sizes"], ref[0]["shard_sizes"])
        np.testing.assert_allclose(got[1]["loss"], ref[1]["loss"], rtol=1e-12)
        np.testing.assert_allclose(got[2], ref[2], rtol=0, atol=1e-12 * np.abs(ref[2]).max())


@pytest.mark.mpi
def test_a_compressed_file_is_decompressed_once_into_the_cache(tmp_path):
    path = text_file(tmp_path / "t.svm", n=700, seed=5)
    packed = tmp_path / "t.svm.bz2"
    packed.write_bytes(bz2.compress(path.read_bytes()))
    where = tmp_path / "c"
    ref = run(tmp_path, "ref", {"train": str(path), "cache": "off"}, n=3)
    cold = run(tmp_path, "cold", {"train": str(packed), "cache": str(where)}, n=3)
    [entry] = os.listdir(where)
    assert sorted(os.listdir(where / entry)) == ["meta.json"] + [
        cache.piece_name(i) for i in (1, 2)]                   # no text left behind
    warm = run(tmp_path, "warm", {"train": str(packed), "cache": str(where)}, n=3)
    assert warm[0]["dataset_cache"].startswith("read ")
    for got in (cold, warm):
        np.testing.assert_allclose(got[2], ref[2], rtol=0, atol=1e-12 * np.abs(ref[2]).max())
    # a bad line in a compressed file: its line, the .bz2 named, no entry, no result
    lines = path.read_text().splitlines()
    lines[650] = "1 4:x"
    packed.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    cfg = write_config(tmp_path / "bad.yaml", data={"train": str(packed), "cache": str(where)},
                       algorithm={"name": "gd"})
    res = cli("run", cfg, "-q", "-o", tmp_path / "bad.h5", n=3)
    assert res.returncode == 2
    assert own_lines(res.stderr) == [f"distnewton: error: {packed}:651: value 'x' of "
                                     "feature 4 is not a number"]
    assert not (tmp_path / "bad.h5").exists()
    assert [cache.status(e) for e in cache.entries(where)] == ["stale"]


def test_a_bad_cache_setting_is_one_line(tmp_path):
    with pytest.raises(UserError, match="data.cache: expected a string or true/false"):
        resolve({"data": {"train": "x", "cache": 3}, "algorithm": {"name": "gd"}})


def test_pieces_written_and_read_a_block_at_a_time(tmp_path):
    """Two pieces written from blocks of 1-40 rows, read back in blocks of ~5
    non-zeros over every row range: the rows of read_libsvm, in order."""
    from distnewton.data.libsvm import concat_parts
    path = text_file(tmp_path / "t.svm", n=300)
    ds = read_libsvm(path)
    sig = cache.signature(path)
    tmp = cache.begin(tmp_path / "c", path, False, None)
    rng = np.random.default_rng(1)
    pieces = []
    for i, (a, b) in enumerate([(0, 170), (170, 300)]):
        cuts = [a] + sorted(rng.integers(a, b, 6).tolist()) + [b]
        blocks = [(ds.X[u:v], ds.y[u:v]) for u, v in zip(cuts[:-1], cuts[1:])]
        pieces.append(cache.write_piece(tmp, i, a, blocks))
    assert cache.commit(tmp, tmp_path / "c", path, False, None, sig, pieces, ds.n_features, "h")
    entry = cache.lookup(tmp_path / "c", path, False, None)
    for a, b in [(0, 300), (0, 1), (169, 171), (5, 250), (299, 300)]:
        parts = list(entry.blocks(a, b, nnz_per_block=5))
        assert len(parts) > 1 or b - a <= 2
        data, indices, indptr, y = concat_parts(parts)
        ref = ds.X[a:b]
        np.testing.assert_array_equal(indptr, ref.indptr)
        np.testing.assert_array_equal(indices, ref.indices)
        np.testing.assert_array_equal(data, ref.data)
        np.testing.assert_array_equal(y, ds.y[a:b])
