"""Data set registry, `distnewton data fetch` (through mirrors only: no network in
tests), registry names in configs, and `distnewton data split` shards
(sim and real MPI runs on shards equal the run on the unsplit file)."""

import bz2
import csv
import functools
import hashlib
import http.server
import json
import threading

import numpy as np
import pytest

from support.launch import SHARED, cli, own_lines, read_result, write_config, synth as synth_file

from distnewton.data import partition, read_libsvm
from distnewton.data.registry import REGISTRY

PAPER_SETS = ("a9a", "w8a", "ijcnn1", "covtype.binary", "phishing", "mushrooms", "real-sim",
              "rcv1.binary", "news20.binary", "epsilon")


#: the real files, whose bytes must match the registry's sha256
REAL_FILES = pytest.mark.data(reason="the real files, to match the registry's sha256 sums")


def sha_of_bz2(path):
    return hashlib.sha256(bz2.decompress(path.read_bytes())).hexdigest()


def only_line(res, text):
    lines = own_lines(res.stderr)
    assert res.returncode == 2 and len(lines) == 1 and text in lines[0], \
        (res.returncode, res.stderr)


def test_registry_lists_the_papers_sets_with_official_urls_and_manifest_sums():
    for name in PAPER_SETS:
        e = REGISTRY[name]
        assert e.url.startswith("https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary/")
        assert e.file == f"{name}.bz2" and e.n_samples > 0 and e.n_features > 0
    assert REGISTRY["a9a"].test == "a9a.t" and REGISTRY["a9a"].n_features == 123
    if not SHARED.is_dir():
        return
    with open(SHARED / "MANIFEST.tsv") as fh:
        manifest = {r["file"]: r for r in csv.DictReader(fh, delimiter="\t")}
    checked = 0
    for e in REGISTRY.values():
        if e.file in manifest:        # every sum the manifest knows is in the registry
            assert e.sha256 == manifest[e.file]["sha256_of_decompressed"], e.name
            assert e.bytes == int(manifest[e.file]["bytes_decompressed"]), e.name
            assert e.n_samples == int(manifest[e.file]["n_samples"]), e.name
            checked += 1
        elif e.sha256 is None:
            assert "not known" in e.notes
    assert checked >= 7


#: the sets issue 29 added for the shipped configs: (n, d) as the LIBSVM page lists them
ADDED = {"german.numer": (1000, 24), "german.numer_scale": (1000, 24),
         "australian": (690, 14), "heart_scale": (270, 13)}


def test_the_added_sets_are_registered_with_their_sums_and_sizes():
    for name, (n, d) in ADDED.items():
        e = REGISTRY[name]
        assert e.url == f"https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary/{name}"
        assert (e.n_samples, e.n_features, e.file) == (n, d, f"{name}.bz2")
        assert e.sha256 is not None and len(e.sha256) == 64 and e.bytes > 0
    assert REGISTRY["phishing"].mirror_names == ("phishing.crlf.bz2",)
    assert REGISTRY["phishing"].sha256 is None          # the CRLF copy is not the official file


@REAL_FILES
def test_the_added_sets_match_the_manifest_and_the_files(tmp_path):
    """The sums are MANIFEST.tsv's, and the decompressed files have them, with the
    rows and largest feature index the registry states."""
    with open(SHARED / "MANIFEST.tsv") as fh:
        manifest = {r["file"]: r for r in csv.DictReader(fh, delimiter="\t")}
    for name, (n, d) in ADDED.items():
        e, row = REGISTRY[name], manifest[f"{name}.bz2"]
        assert e.sha256 == row["sha256_of_decompressed"]
        assert e.bytes == int(row["bytes_decompressed"])
        assert sha_of_bz2(SHARED / e.file) == e.sha256
        ds = read_libsvm(str(SHARED / e.file))
        assert ds.X.shape == (n, d), name


@REAL_FILES
def test_fetch_from_the_shared_mirror_verifies_and_caches(tmp_path):
    folder = tmp_path / "data"
    res = cli("data", "fetch", "a9a", "mushrooms", "--mirror", SHARED, "--dir", folder)
    assert res.returncode == 0, res.stderr
    assert "a9a.bz2" in res.stdout and "sha256 verified" in res.stdout
    for name in ("a9a", "mushrooms"):
        path = folder / f"{name}.bz2"
        assert sha_of_bz2(path) == REGISTRY[name].sha256
        assert (folder / f"{name}.bz2.sha256").read_text().split()[0] == REGISTRY[name].sha256
    assert path.read_bytes() == (SHARED / "mushrooms.bz2").read_bytes()   # bz2 kept as is
    res = cli("data", "fetch", "a9a", "--mirror", tmp_path / "empty-but-unused", "--dir",
              folder)
    assert res.returncode == 0 and "already cached" in res.stdout, res.stderr


@pytest.mark.slow
def test_fetch_refuses_a_checksum_mismatch_and_leaves_no_file(tmp_path):
    mirror, folder = tmp_path / "mirror", tmp_path / "data"
    mirror.mkdir()
    bad = b"-1 3:1 11:1\n+1 5:1\n"                   # not a9a: its sum cannot match
    (mirror / "a9a.bz2").write_bytes(bz2.compress(bad))
    res = cli("data", "fetch", "a9a", "--mirror", mirror, "--dir", folder)
    only_line(res, "sha256 mismatch")
    assert REGISTRY["a9a"].sha256 in res.stderr
    assert not folder.exists() or list(folder.iterdir()) == []


@pytest.mark.slow
def test_fetch_without_a_registered_sum_warns_and_plain_files_are_compressed(tmp_path):
    mirror, folder = tmp_path / "mirror", tmp_path / "data"
    mirror.mkdir()
    text = b"1 1:0.5 3:1\n0 2:0.25\n"
    (mirror / "phishing").write_bytes(text)      # the official (plain) name
    assert REGISTRY["phishing"].sha256 is None
    res = cli("data", "fetch", "phishing", "--mirror", mirror, "--dir", folder)
    assert res.returncode == 0, res.stderr
    assert "cannot verify" in res.stderr and hashlib.sha256(text).hexdigest() in res.stderr
    assert "NOT verified" in res.stdout
    assert bz2.decompress((folder / "phishing.bz2").read_bytes()) == text
    only_line(cli("data", "fetch", "covtype.binary", "--mirror", mirror, "--dir", folder),
              "not in mirror")
    only_line(cli("data", "fetch", "a9", "--dir", folder), "did you mean 'a9a'")


@pytest.mark.slow
def test_fetch_from_an_http_mirror(tmp_path):
    """The download code path (urllib, Content-Length, streaming) against a local
    server: a made-up file under a set's name without a registered sum (phishing:
    fetched, not verified, byte for byte), and a set the mirror lacks."""
    served = tmp_path / "served"
    served.mkdir()
    text = b"".join(b"%d 1:0.5 %d:1\n" % (i % 2, 2 + i % 60) for i in range(20000))
    (served / "phishing.bz2").write_bytes(bz2.compress(text))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        res = cli("data", "fetch", "phishing", "--mirror", url, "--dir", tmp_path)
        assert res.returncode == 0, res.stderr
        assert hashlib.sha256(text).hexdigest() in res.stderr     # "cannot verify": the sum
        assert bz2.decompress((tmp_path / "phishing.bz2").read_bytes()) == text
        only_line(cli("data", "fetch", "real-sim", "--mirror", url, "--dir", tmp_path),
                  "not found at mirror")
    finally:
        server.shutdown()


@REAL_FILES
def test_a_config_names_a_registered_data_set(tmp_path):
    env = {"DISTNEWTON_DATA": str(tmp_path / "data")}
    cfg = write_config(tmp_path / "c.yaml", data={"train": "mushrooms"},
                       algorithm={"name": "newton"}, run={"max_rounds": 4})
    only_line(cli("run", cfg, "--backend", "sim", "-o", tmp_path / "r.h5", extra_env=env),
              "run `distnewton data fetch mushrooms`")
    assert not (tmp_path / "r.h5").exists()
    assert cli("data", "fetch", "mushrooms", "--mirror", SHARED, extra_env=env).returncode == 0
    res = cli("run", cfg, "--backend", "sim", "-q", "-o", tmp_path / "r.h5", extra_env=env)
    assert res.returncode == 0, res.stderr
    attrs, _, _ = read_result(tmp_path / "r.h5")
    assert attrs["dataset"] == str(tmp_path / "data" / "mushrooms.bz2")
    assert attrs["n_samples"] == 8124 and attrs["n_features"] == 112


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("split")
    return synth_file(tmp / "s.svm", 900, 10, density=0.4, seed=5)


@pytest.mark.parametrize("scheme", ["iid", "label_skew"])
@pytest.mark.slow
def test_split_writes_the_partition_rows_and_a_manifest(synth, tmp_path, scheme):
    import h5py
    out = tmp_path / "shards"
    res = cli("data", "split", synth, "--parts", 3, "--out", out, "--partition", scheme,
              "--seed", 7)
    assert res.returncode == 0, res.stderr
    m = json.loads((out / "manifest.json").read_text())
    ds = read_libsvm(str(synth))
    parts = partition(ds.y, 3, scheme, seed=7)
    assert m["n_samples"] == 900 and m["n_features"] == ds.n_features == 10
    assert m["sizes"] == [len(p) for p in parts] and m["labels"] == [-1.0, 1.0]
    assert m["source_sha256"] == hashlib.sha256(synth.read_bytes()).hexdigest()
    for k, rows in enumerate(parts):
        with h5py.File(out / m["files"][k], "r") as f:
            np.testing.assert_array_equal(f["rows"][()], rows)
            np.testing.assert_array_equal(f["y"][()], ds.y[rows])
            np.testing.assert_array_equal(f["data"][()], ds.X[rows].data)
    only_line(cli("data", "split", synth, "--parts", 3, "--out", out), "--overwrite")


@pytest.mark.mpi
def test_runs_on_shards_equal_the_run_on_the_file(synth, tmp_path):
    out = tmp_path / "shards"
    assert cli("data", "split", synth, "--parts", 3, "--out", out, "--seed", 2).returncode == 0
    common = {"algorithm": {"name": "giant"}, "run": {"max_rounds": 15},
              "model": {"fit_intercept": True}}
    whole = write_config(tmp_path / "whole.yaml", data={"train": str(synth), "seed": 2},
                         **common)
    shards = write_config(tmp_path / "shards.yaml", data={"shards": str(out)}, **common)
    res = cli("run", whole, "--backend", "sim", "--workers", 3, "-q", "-o", tmp_path / "a.h5")
    assert res.returncode == 0, res.stderr
    res = cli("run", shards, "--backend", "sim", "--workers", 3, "-q", "-o", tmp_path / "b.h5")
    assert res.returncode == 0, res.stderr
    res = cli("run", shards, "-q", "-o", tmp_path / "c.h5", n=4)       # real MPI, 3 workers
    assert res.returncode == 0, res.stderr
    a_attrs, a, wa = read_result(tmp_path / "a.h5")
    for name in ("b.h5", "c.h5"):
        attrs, h, w = read_result(tmp_path / name)
        np.testing.assert_array_equal(h["comm_rounds"], a["comm_rounds"])
        np.testing.assert_allclose(h["loss"], a["loss"], rtol=1e-12)
        np.testing.assert_allclose(w, wa, rtol=1e-9, atol=1e-12)
        assert attrs["n_samples"] == 900 and attrs["n_features"] == 11     # + intercept
        assert list(attrs["shard_sizes"]) == list(a_attrs["shard_sizes"])
        assert attrs["dataset_sha256"] == a_attrs["dataset_sha256"]        # the source file
    assert read_result(tmp_path / "c.h5")[0]["setup_bytes"] == 0          # nothing scattered
    # report computes f* for a run on shards too (newton over the same parts)
    res = cli("report", tmp_path / "c.h5", "--format", "json",
              extra_env={"DISTNEWTON_CACHE": str(tmp_path / "cache")})
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["f_star_source"] == "computed"
    assert row["f_star"] == pytest.approx(a["loss"][-1], rel=1e-12)
    only_line(cli("run", shards, "-q", "-o", tmp_path / "d.h5", n=3),
              "has 3 parts but the job has 2 workers")
    assert not (tmp_path / "d.h5").exists()


@pytest.mark.mpi
@pytest.mark.parametrize("scheme,parts", [("label_skew", 4), ("iid", 2)])
def test_a_split_under_mpiexec_writes_the_one_process_split(synth, tmp_path, scheme, parts):
    """Every rank reads its share (3 ranks, 4 or 2 parts): the parts and the
    manifest are the one-process split's, array for array and dtype for dtype."""
    import h5py
    args = (synth, "--parts", parts, "--partition", scheme, "--seed", 3, "--cache", "off")
    assert cli("data", "split", *args, "--out", tmp_path / "one").returncode == 0
    res = cli("data", "split", *args, "--out", tmp_path / "mpi", n=3)
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.splitlines()) == 1                    # rank 0 speaks
    a, b = (json.loads((tmp_path / f / "manifest.json").read_text()) for f in ("one", "mpi"))
    assert a == b
    for name in a["files"]:
        with h5py.File(tmp_path / "one" / name) as f, h5py.File(tmp_path / "mpi" / name) as g:
            assert dict(f.attrs) == dict(g.attrs) and set(f) == set(g)
            for key in f:
                assert f[key].dtype == g[key].dtype, key
                np.testing.assert_array_equal(f[key][()], g[key][()], err_msg=key)


@pytest.mark.mpi
def test_a_compressed_split_under_mpiexec_needs_the_cache(synth, tmp_path):
    """Without a cache folder the ranks cannot share its text: one line, exit 2; with
    one, the parts are the one-process split's."""
    import gzip
    packed = tmp_path / "s.svm.gz"
    packed.write_bytes(gzip.compress(synth.read_bytes()))
    res = cli("data", "split", packed, "--parts", 2, "--out", tmp_path / "a", "--cache", "off",
              n=2)
    assert res.returncode == 2 and "read in parallel only through" in res.stderr, res.stderr
    assert not (tmp_path / "a" / "manifest.json").exists()
    res = cli("data", "split", packed, "--parts", 2, "--out", tmp_path / "b", "--cache",
              tmp_path / "cache", n=2)
    assert res.returncode == 0, res.stderr
    assert cli("data", "split", synth, "--parts", 2, "--out", tmp_path / "c").returncode == 0
    a, b = (json.loads((tmp_path / f / "manifest.json").read_text()) for f in ("b", "c"))
    for key in ("sizes", "nnz_per_part", "labels", "n_features"):
        assert a[key] == b[key], key


def test_mpi_master_reads_only_the_manifest(synth, tmp_path):
    from distnewton.config import resolve
    from distnewton.ingest import prepare_shards
    out = tmp_path / "shards"
    assert cli("data", "split", synth, "--parts", 2, "--out", out).returncode == 0
    cfg = resolve({"data": {"shards": str(out)}, "algorithm": {"name": "giant"},
                   "run": {"backend": "mpi"}})
    (out / "part-00001.h5").write_bytes(b"not read by the master")
    setup = prepare_shards(cfg, 2, load_rows=False)
    assert setup.X is None and setup.problem.n == 900 and setup.problem.sizes == (450, 450)
