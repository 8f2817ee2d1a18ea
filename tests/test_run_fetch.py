"""Runs on registered data sets (issue 29): a set that is not downloaded is one line
naming the key and the one ``distnewton data fetch`` that gets every missing set of
the run; a path that looks like a registered set says which name was meant;
``run --fetch [--mirror DIR|URL]`` fetches before the run, verified, exactly one
process downloading under ``mpiexec``, nothing left behind when it fails.

No network: the mirrors are folders or ``file://`` URLs of synthetic files (a set
without a registered sha256, phishing, can be fetched from one), and ../shared/data
when it exists.  The corpus harness (tests/support/corpus.py) checks the exit code,
the one line, the files left in the case's folder and that no run hangs; the data
folder is the case's ``DISTNEWTON_CACHE/data`` beside it (DISTNEWTON_DATA unset),
checked by ``check``.
"""

import bz2
import hashlib
from pathlib import Path

import pytest

from support.corpus import Case, check, params
from support.launch import SHARED, cli, own_lines, read_result, write_config

from distnewton.data.registry import REGISTRY

A9A = {"data": {"train": "a9a", "test": "a9a.t", "n_features": 123}}
NO_DATA_DIR = {"DISTNEWTON_DATA": ""}          # the case's DISTNEWTON_CACHE/data
MISSING = ("data.train: 'a9a' is a registered data set that is not downloaded (looked for "
           "{tmp}-cache/data/a9a.bz2): run `distnewton data fetch a9a a9a.t`, or run with "
           "--fetch")
NOT_A9A = bz2.compress(b"-1 3:1 11:1\n+1 5:1\n")      # its sha256 cannot be a9a's


def data_dir(tmp):
    return Path(f"{tmp}-cache") / "data"


def nothing_fetched(tmp, out):
    """No file in the data folder (a failed fetch removes its partial file)."""
    folder = data_dir(tmp)
    assert not folder.exists() or list(folder.iterdir()) == [], sorted(folder.iterdir())


def run_args(*extra):
    return ["run", "{tmp}/c.yaml", "--backend", "sim", "--workers", "2", "-o",
            "{tmp}/out.h5", "-q", *extra]


def mpi_args(*extra):
    return ["run", "{tmp}/c.yaml", "-o", "{tmp}/out.h5", "-q", *extra]


CASES = [
    Case("registered sets not downloaded", args=run_args(), config=A9A, message=MISSING,
         env=NO_DATA_DIR, check=nothing_fetched),
    Case("registered sets not downloaded, mpiexec -n 3", args=mpi_args(), config=A9A,
         message=MISSING, env=NO_DATA_DIR, launch="mpi", n=3, timeout=120,
         check=nothing_fetched),
    Case("only the test set not downloaded", args=run_args(),
         config={"data": {"test": "w8a.t"}}, env=NO_DATA_DIR,
         message="data.test: 'w8a.t' is a registered data set that is not downloaded "
                 "(looked for {tmp}-cache/data/w8a.t.bz2): run `distnewton data fetch w8a.t`, "
                 "or run with --fetch"),
    Case("the mirror is named in the fetch command", args=run_args("--mirror", "{tmp}/m"),
         config=A9A, env=NO_DATA_DIR, files={"m/README": "a mirror"},
         message="run `distnewton data fetch a9a a9a.t --mirror {tmp}/m`, or run with --fetch"),
    Case("a checkout's path to a registered set", args=run_args(),
         config={"data": {"train": "{tmp}/shared/data/a9a.bz2"}}, env=NO_DATA_DIR,
         message="data.train: {tmp}/shared/data/a9a.bz2: no such file; did you mean "
                 "data.train: a9a ? (a registered data set, fetched by `distnewton data "
                 "fetch a9a` or by a run with --fetch)"),
    Case("a mirror's other name of a registered set", args=run_args(),
         config={"data": {"train": "{tmp}/phishing.crlf.bz2"}}, env=NO_DATA_DIR,
         message="no such file; did you mean data.train: phishing ?"),
    Case("a misspelt registered test set", args=run_args(),
         config={"data": {"test": "w8a.tt"}}, env=NO_DATA_DIR,
         message="data.test: w8a.tt: no such file; did you mean data.test: w8a.t ?"),
    Case("a missing file like no registered set keeps its message", args=run_args(),
         config={"data": {"train": "{tmp}/nope.svm"}}, env=NO_DATA_DIR,
         message="{tmp}/nope.svm: no such file"),
    Case("--fetch from a mirror that is not a folder",
         args=run_args("--fetch", "--mirror", "{tmp}/nowhere"), config=A9A, env=NO_DATA_DIR,
         message="data.mirror: {tmp}/nowhere: not a folder or a URL", check=nothing_fetched),
    Case("--fetch from a mirror without the set",
         args=run_args("--fetch", "--mirror", "{tmp}/m"), config=A9A, env=NO_DATA_DIR,
         files={"m/w8a.bz2": NOT_A9A}, check=nothing_fetched,
         message="data.train: a9a: not in mirror {tmp}/m (looked for a9a.bz2, a9a)"),
    Case("--fetch: a checksum mismatch", args=run_args("--fetch", "--mirror", "{tmp}/m"),
         config=A9A, env=NO_DATA_DIR, files={"m/a9a.bz2": NOT_A9A}, check=nothing_fetched,
         message="data.train: a9a: sha256 mismatch for {tmp}/m/a9a.bz2: expected "
                 f"{REGISTRY['a9a'].sha256}"),
    Case("--fetch: a checksum mismatch at a file:// mirror, data.fetch: auto",
         args=run_args("--set", "data.mirror=file://{tmp}/m"),
         config={**A9A, "data": {**A9A["data"], "fetch": "auto"}}, env=NO_DATA_DIR,
         files={"m/a9a.bz2": NOT_A9A}, check=nothing_fetched,
         message="data.train: a9a: sha256 mismatch for file://{tmp}/m/a9a.bz2"),
    Case("--fetch: a checksum mismatch, mpiexec -n 3",
         args=mpi_args("--fetch", "--mirror", "{tmp}/m"), config=A9A, env=NO_DATA_DIR,
         files={"m/a9a.bz2": NOT_A9A}, check=nothing_fetched, launch="mpi", n=3,
         timeout=120, message="data.train: a9a: sha256 mismatch for {tmp}/m/a9a.bz2"),
]


@pytest.mark.parametrize("case", params(CASES, "fetch"))
def test_fetch_case(case, tmp_path):
    check(case, tmp_path)


def phishing_mirror(folder):
    """A synthetic file under phishing's name (no registered sha256: fetched with a
    warning), 300 rows with labels 0/1 and 68 features."""
    folder.mkdir(parents=True, exist_ok=True)
    text = b"".join(b"%d %d:0.5 %d:1\n" % (i % 2, 1 + i % 30, 31 + (7 * i) % 38)
                    for i in range(300))
    (folder / "phishing.bz2").write_bytes(bz2.compress(text))
    return hashlib.sha256(text).hexdigest()


def phishing_config(tmp_path, **data):
    return write_config(tmp_path / "c.yaml", data={"train": "phishing", "n_features": 68,
                                                   **data},
                        algorithm={"name": "giant"}, run={"max_rounds": 4})


@pytest.mark.mpi
def test_fetch_under_mpiexec_downloads_one_copy(tmp_path):
    """Three ranks, one download: one "fetched" line and one "cannot verify" warning,
    the one file and its .sha256 in the data folder; the run then reads it, and the
    next run (no --fetch needed) reads it again without fetching."""
    digest = phishing_mirror(tmp_path / "mirror")
    env = {"DISTNEWTON_DATA": str(tmp_path / "data")}
    cfg = phishing_config(tmp_path)
    res = cli("run", cfg, "-o", tmp_path / "a.h5", "-q", "--fetch", "--mirror",
              tmp_path / "mirror", n=3, extra_env=env)
    assert res.returncode == 0, res.stderr
    lines = own_lines(res.stderr)
    assert sum("data.train: fetched phishing from" in l for l in lines) == 1, res.stderr
    assert sum("cannot verify" in l for l in lines) == 1, res.stderr
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        "phishing.bz2", "phishing.bz2.sha256"]
    assert hashlib.sha256(bz2.decompress((tmp_path / "data" / "phishing.bz2").read_bytes())
                          ).hexdigest() == digest
    attrs, hist, _ = read_result(tmp_path / "a.h5")
    assert attrs["dataset"] == str(tmp_path / "data" / "phishing.bz2")
    assert attrs["n_samples"] == 300
    res = cli("run", cfg, "-o", tmp_path / "b.h5", "-q", n=3, extra_env=env)
    assert res.returncode == 0 and "fetched" not in res.stderr, res.stderr
    _, again, _ = read_result(tmp_path / "b.h5")
    assert list(again["loss"]) == list(hist["loss"])


@pytest.mark.slow
def test_fetch_on_the_sim_backend_and_resume(tmp_path):
    """sim: the set is fetched in-process (data.fetch: auto in the config, the mirror
    from data.mirror); --resume of that run reads the cached set, or fetches it again
    into an empty data folder (--fetch and --mirror may change on resume), and ends
    where one longer run ends."""
    phishing_mirror(tmp_path / "mirror")
    env = {"DISTNEWTON_DATA": str(tmp_path / "data")}
    cfg = phishing_config(tmp_path, fetch="auto", mirror=str(tmp_path / "mirror"))
    out = tmp_path / "a.h5"
    res = cli("run", cfg, "--backend", "sim", "--workers", 2, "-o", out, "-q",
              "--set", "run.checkpoint_every=3", "--set", "run.max_rounds=3",
              "--set", "run.grad_rtol=1e-14", extra_env=env)
    assert res.returncode == 0 and "fetched phishing" in res.stderr, res.stderr
    res = cli("run", "--resume", out, "--backend", "sim", "--workers", 2, "-q",
              "--set", "run.max_rounds=6", extra_env=env)
    assert res.returncode == 0 and "fetched" not in res.stderr, res.stderr
    # on another machine (an empty data folder), fetched again: --fetch, --mirror are free
    res = cli("run", "--resume", out, "--backend", "sim", "--workers", 2, "-q",
              "--set", "run.max_rounds=9", "--fetch", "--mirror", tmp_path / "mirror",
              extra_env={"DISTNEWTON_DATA": str(tmp_path / "elsewhere")})
    assert res.returncode == 0 and "fetched phishing" in res.stderr, res.stderr
    full = tmp_path / "f.h5"
    res = cli("run", cfg, "--backend", "sim", "--workers", 2, "-o", full, "-q",
              "--set", "run.max_rounds=9", "--set", "run.grad_rtol=1e-14", extra_env=env)
    assert res.returncode == 0, res.stderr
    (_, hr, wr), (_, hf, wf) = read_result(out), read_result(full)
    assert list(hr["comm_rounds"]) == list(hf["comm_rounds"])
    assert max(abs(wr - wf)) <= 1e-12 * max(abs(wf))


@pytest.mark.data(reason="the registry's real entries and sums, fetched from the mirror")
def test_run_fetch_from_the_shared_mirror(tmp_path):
    """The real sets through the registry: a9a and a9a.t verified against their sums;
    phishing found, in the project's mirror, under its other name (phishing.crlf.bz2)
    and kept as is, not verified (no sum is registered for it)."""
    env = {"DISTNEWTON_DATA": str(tmp_path / "data")}
    cfg = write_config(tmp_path / "c.yaml", data=dict(A9A["data"]),
                       algorithm={"name": "giant"}, run={"max_rounds": 3})
    res = cli("run", cfg, "--backend", "sim", "-o", tmp_path / "a.h5", "-q", "--fetch",
              "--mirror", SHARED, extra_env=env)
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("(sha256 verified)") == 2, res.stderr
    for name in ("a9a", "a9a.t"):
        got = (tmp_path / "data" / f"{name}.bz2").read_bytes()
        assert hashlib.sha256(bz2.decompress(got)).hexdigest() == REGISTRY[name].sha256
    cfg = phishing_config(tmp_path)
    res = cli("run", cfg, "--backend", "sim", "-o", tmp_path / "p.h5", "-q", "--fetch",
              "--mirror", SHARED, extra_env=env)
    assert res.returncode == 0, res.stderr
    held = [SHARED / n for n in ("phishing.bz2", "phishing.crlf.bz2") if (SHARED / n).exists()]
    assert str(held[0]) in res.stderr and "cannot verify" in res.stderr, res.stderr
    assert (tmp_path / "data" / "phishing.bz2").read_bytes() == held[0].read_bytes()
    assert read_result(tmp_path / "p.h5")[0]["n_samples"] == 11055


@pytest.mark.slow
def test_data_fetch_finds_a_set_under_the_mirrors_other_name(tmp_path):
    """A mirror holding phishing only as phishing.crlf.bz2 (as ../shared/data does):
    `data fetch phishing --mirror DIR` finds it, keeps its bytes, warns it cannot verify."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    text = b"1 1:0.5 3:1\r\n0 2:0.25\r\n"
    (mirror / "phishing.crlf.bz2").write_bytes(bz2.compress(text))
    res = cli("data", "fetch", "phishing", "--mirror", mirror, "--dir", tmp_path / "data")
    assert res.returncode == 0, res.stderr
    assert f"from {mirror / 'phishing.crlf.bz2'}" in res.stdout and "cannot verify" in res.stderr
    assert bz2.decompress((tmp_path / "data" / "phishing.bz2").read_bytes()) == text
