"""Adversarial corpus, class *resume*: ``--resume`` checks what it resumes
(distnewton/io/resume.py; tests/support/corpus.py runs each case).

Each case's ``prepare`` makes a real checkpointed run first (giant on the
corpus's 8 rows, ``run.checkpoint_every: 1``, 3 rounds on the sim backend with
2 workers: the file ends with status max_rounds and a /checkpoint), then
tampers with the file (h5py), the data or the plugin, and the case resumes it:
in process, as a process, or under ``mpiexec -n 3`` (2 worker ranks: the
checkpoint's K) in both ingestion paths (every rank reads its share: the
default for a plain text file; rank 0 reads and sends:
``DISTNEWTON_PARALLEL_INGEST=0``).  Sub-kinds: damaged checkpoint, frozen
overrides, changed data, changed algorithm class, legacy and version, and the
legitimate resumes that must still continue.
"""

import hashlib
import io
import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from support.corpus import DATA, Case, check, params
from support.launch import ROOT, env

OUT = "{tmp}/out.h5"
RESUME = ["run", "--resume", OUT, "-q"]
#: the same 8 rows with other values (same shape, same labels)
OTHER = DATA.replace("0.5", "0.6")
LEGACY = ROOT / "tests" / "data" / "legacy-0.3.0.dev0"


def checkpointed(algorithm="giant", *, extra=(), cfg="", plugin=None):
    """``prepare``: a finished run of ``algorithm`` with its /checkpoint in out.h5
    (as a process: a plugin module must not stay imported in pytest's)."""
    def prepare(tmp):
        text = (f"data: {{train: {tmp}/data.svm}}\nalgorithm: {{name: {algorithm}}}\n"
                f"run: {{max_rounds: 3, checkpoint_every: 1}}\n{cfg}")
        (tmp / "c.yaml").write_text(text)
        e = env()
        e["DISTNEWTON_CACHE"] = str(tmp.parent / f"{tmp.name}-cache")
        cmd = [sys.executable, "-m", "distnewton", "run", str(tmp / "c.yaml"), "--backend",
               "sim", "--workers", "2", "-o", str(tmp / "out.h5"), "-q", *extra]
        if plugin:
            cmd += ["--plugin", plugin]
        res = subprocess.run(cmd, cwd=tmp, env=e, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        with h5py.File(tmp / "out.h5", "r") as f:
            assert "checkpoint" in f
    return prepare


def then(*steps, algorithm="giant", **kw):
    """``prepare``: :func:`checkpointed`, then each ``step(tmp)``."""
    first = checkpointed(algorithm, **kw)

    def prepare(tmp):
        first(tmp)
        for step in steps:
            step(tmp)
    return prepare


def edit(fn):
    """A step: ``fn(f)`` on the open out.h5 (the file's /checkpoint is ``f["checkpoint"]``)."""
    def step(tmp):
        with h5py.File(tmp / "out.h5", "r+") as f:
            fn(f)
    return step


def setattr_(path, key, value):
    return edit(lambda f: f[path].attrs.__setitem__(key, value))


def replace_data(text):
    return lambda tmp: (tmp / "data.svm").write_text(text)


def image(f, k):
    return bytes(f["checkpoint/workers"][str(k)][()])


def put_image(f, k, raw, fix_sum=True):
    """Replace worker k's image; ``fix_sum``: record its new sha256 too (so the
    check that follows the checksum is the one tested)."""
    ws = f["checkpoint/workers"]
    del ws[str(k)]
    ws.create_dataset(str(k), data=np.frombuffer(raw, dtype=np.uint8))
    if fix_sum:
        sums = json.loads(f["checkpoint"].attrs["workers_sha256"])
        sums[k] = hashlib.sha256(raw).hexdigest()
        f["checkpoint"].attrs["workers_sha256"] = json.dumps(sums)


def bad_rng_image(f):
    """Worker 1's image with a bit_generator state that is not a valid one."""
    with h5py.File(io.BytesIO(image(f, 1)), "r") as src:
        state = {k: src.attrs[k] for k in src.attrs}
    buf = io.BytesIO()
    with h5py.File(buf, "w") as img:
        for k, v in state.items():
            img.attrs[k] = v
        img.attrs["rng"] = json.dumps({"__type__": "rng", "v": {
            "bit_generator": "PCG64", "state": {"state": "tampered", "inc": 1}}})
    put_image(f, 1, buf.getvalue())


def drop_from_state(key):
    """Remove ``key`` from the algorithm's state and from the recorded layout (as a
    checkpoint of an older class that lacked the attribute would be)."""
    def fn(f):
        ck = f["checkpoint"]
        alg = ck["algorithm"]
        if key in alg.attrs:
            del alg.attrs[key]
        else:
            del alg[key]
        layout = json.loads(ck.attrs["state_layout"])
        del layout[key]
        ck.attrs["state_layout"] = json.dumps(layout)
    return edit(fn)


def resize_w(f):
    alg = f["checkpoint/algorithm"]
    w = alg["w"][()]
    del alg["w"]
    alg["w"] = np.append(w, 0.0)


def truncate(tmp):
    raw = (tmp / "out.h5").read_bytes()
    (tmp / "out.h5").write_bytes(raw[: len(raw) // 2])


def legacy(tmp):
    for name in ("giant-stopped.h5", "giant.yaml", "train.svm"):
        shutil.copy(LEGACY / name, tmp / name)


def continued(rounds):
    """``check``: the resumed file's history goes on to ``rounds`` rounds (a line
    search may add one) from the checkpoint's 3, one row per iteration."""
    def check_(tmp, out):
        with h5py.File(tmp / "out.h5", "r") as f:
            assert f.attrs["status"] in ("max_rounds", "converged"), out
            rounds_done = f["history/comm_rounds"][()]
            assert rounds_done[-1] >= rounds and rounds_done[1] == 3     # 3 before the stop
            assert np.all(np.diff(f["history/iteration"][()]) == 1)
            assert f["checkpoint"].attrs["dataset_sha256"] == f.attrs["dataset_sha256"]
    return check_


def sha_unchanged(tmp, out):
    """The refused resume left the file's fingerprint as it was."""
    data_sha = hashlib.sha256(DATA.encode()).hexdigest()
    with h5py.File(tmp / "out.h5", "r") as f:
        assert f.attrs["dataset_sha256"] == data_sha == f["checkpoint"].attrs["dataset_sha256"]


def plugin_source(extra_init=""):
    return f'''
import numpy as np
from distnewton.algorithms import Algorithm, register_algorithm
from distnewton.algorithms import primitives as P


@register_algorithm
class ProbeGD(Algorithm):
    """Gradient descent with a fixed step (tests/test_corpus_resume.py)."""
    name = "probe_gd"
    params = {{}}
    columns = {{}}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.t = 0{extra_init}

    def step(self):
        _, g = P.loss_grad(self.rt, self.prob, self.w)
        self.w = self.w - 0.5 * g
        self.t += 1
        return {{}}
'''


def changed_plugin(tmp):
    (tmp / "probe_plugin.py").write_text(plugin_source("\n        self.momentum = 0.0"))


MISMATCH = "checkpoint attribute dataset_sha256: taken on data with sha256"

CASES = [
    # -- damaged checkpoint ------------------------------------------------------------
    Case("config attribute not YAML", args=RESUME, message="{tmp}/out.h5: checkpoint config "
         "(root attribute): not YAML", prepare=then(setattr_("/", "config", "a: [1,\n  b: {"))),
    Case("config attribute not a mapping", args=RESUME, message="not a config with "
         "algorithm.name", prepare=then(setattr_("/", "config", "- just\n- a list\n"))),
    Case("config names another algorithm", args=RESUME,
         message="{tmp}/out.h5: checkpoint /checkpoint/algorithm: holds giant's state, but "
         "the stored config names newton",
         prepare=then(edit(lambda f: f.attrs.__setitem__(
             "config", f.attrs["config"].replace("name: giant", "name: newton"))))),
    Case("worker image missing", args=RESUME,
         message="{tmp}/out.h5: checkpoint /checkpoint/workers/1: missing",
         prepare=then(edit(lambda f: f["checkpoint/workers"].__delitem__("1")))),
    Case("worker image changed", args=RESUME,
         message="checkpoint /checkpoint/workers/0: its sha256 differs",
         prepare=then(edit(lambda f: put_image(f, 0, image(f, 0)[:-1] + b"\x01",
                                               fix_sum=False)))),
    Case("worker rng state tampered", args=RESUME,
         message="checkpoint /checkpoint/workers/1: unreadable worker state",
         prepare=then(edit(bad_rng_image))),
    Case("worker image not hdf5", args=RESUME,
         message="checkpoint /checkpoint/workers/0: unreadable worker state",
         prepare=then(edit(lambda f: put_image(f, 0, b"not an HDF5 image" * 8)))),
    Case("worker image of the wrong type", args=RESUME,
         message="checkpoint /checkpoint/workers/0: not a byte image",
         prepare=then(edit(lambda f: (f["checkpoint/workers"].__delitem__("0"),
                                      f["checkpoint/workers"].create_dataset("0", data=[1.5]))))),
    Case("master rng state tampered", args=RESUME,
         message="checkpoint /checkpoint/algorithm/rng: unreadable",
         prepare=then(setattr_("checkpoint/algorithm", "rng", json.dumps(
             {"__type__": "rng", "v": {"bit_generator": "MT19937", "state": 7}})))),
    Case("model of another feature count", args=RESUME,
         message="checkpoint /checkpoint/algorithm/w: shape (5,), but the data has 4 features",
         prepare=then(edit(resize_w))),
    Case("feature count attribute changed", args=RESUME,
         message="checkpoint attribute n_features: taken on data with features 5",
         prepare=then(setattr_("checkpoint", "n_features", 5))),
    Case("iteration of the wrong type", args=RESUME,
         message="checkpoint /checkpoint attribute iteration: expected an integer >= 0, "
         "got 'three'", prepare=then(setattr_("checkpoint", "iteration", "three"))),
    Case("no workers", args=RESUME, message="checkpoint /checkpoint attribute n_workers",
         prepare=then(setattr_("checkpoint", "n_workers", 0))),
    Case("g0 not a number", args=RESUME,
         message="checkpoint /checkpoint attribute g0: expected a number",
         prepare=then(setattr_("checkpoint", "g0", np.array([1.0, 2.0])))),
    Case("counter missing", args=RESUME,
         message="checkpoint /checkpoint attribute comm_rounds: missing",
         prepare=then(edit(lambda f: f["checkpoint"].attrs.__delitem__("comm_rounds")))),
    Case("iteration does not match the history", args=RESUME,
         message="checkpoint /checkpoint attribute iteration: 7 does not match /history",
         prepare=then(setattr_("checkpoint", "iteration", 7))),
    Case("state entry removed", args=RESUME,
         message="checkpoint /checkpoint/algorithm/w: recorded as array, found absent",
         prepare=then(edit(lambda f: f["checkpoint/algorithm"].__delitem__("w")))),
    Case("state entry of another kind", args=RESUME,
         message="checkpoint /checkpoint/algorithm/stalled: recorded as str, found int",
         prepare=then(setattr_("checkpoint/algorithm", "stalled",
                               json.dumps({"__type__": "int", "v": 3})))),
    Case("state layout not json", args=RESUME,
         message="checkpoint /checkpoint attribute state_layout: not a JSON mapping",
         prepare=then(setattr_("checkpoint", "state_layout", "{layout"))),
    Case("algorithm state missing", args=RESUME,
         message="checkpoint /checkpoint/algorithm: missing or not an algorithm's state",
         prepare=then(edit(lambda f: f["checkpoint"].__delitem__("algorithm")))),
    Case("written by another class", args=RESUME,
         message="checkpoint /checkpoint/algorithm: written by the class "
         "myplugins.OtherGIANT, but giant is now distnewton.algorithms.giant.GIANT",
         prepare=then(setattr_("checkpoint", "algorithm_class", "myplugins.OtherGIANT"))),
    Case("worker checksums not json", args=RESUME,
         message="checkpoint /checkpoint attribute workers_sha256: not a JSON list",
         prepare=then(setattr_("checkpoint", "workers_sha256", "[1, 2"))),
    Case("data fingerprint attribute changed", args=RESUME,
         message="checkpoint attribute dataset_sha256: taken on data with sha256 0000000000",
         prepare=then(setattr_("checkpoint", "dataset_sha256", "0" * 64))),
    Case("truncated file", args=RESUME, message="{tmp}/out.h5: not a readable HDF5 file",
         prepare=then(truncate)),
    # -- overrides of what the state depends on -------------------------------------------
    Case("set algorithm.name", args=RESUME + ["--set", "algorithm.name=newton"],
         message="--set algorithm.name=newton: the checkpoint in {tmp}/out.h5 depends on "
         "algorithm.name ('giant')", prepare=checkpointed()),
    Case("set model.lambda", args=RESUME + ["--set", "model.lambda=0.5"],
         message="--set model.lambda=0.5: the checkpoint in {tmp}/out.h5 depends on "
         "model.lambda", prepare=checkpointed()),
    Case("set data.partition", args=RESUME + ["--set", "data.partition=label_skew"],
         message="depends on data.partition ('iid')", prepare=checkpointed()),
    Case("set run.seed", args=RESUME + ["--set", "run.seed=7"],
         message="--set run.seed=7: the checkpoint in {tmp}/out.h5 depends on run.seed (0)",
         prepare=checkpointed()),
    Case("set an algorithm parameter", args=RESUME + ["--set", "algorithm.cg_maxiter=5"],
         message="depends on algorithm.cg_maxiter (500)", prepare=checkpointed()),
    Case("data.train set to other content",
         args=RESUME + ["--set", "data.train={tmp}/other.svm"], files={"other.svm": OTHER},
         message=MISMATCH, prepare=checkpointed(), check=sha_unchanged),
    # -- the data changed between stop and resume -------------------------------------------
    Case("data replaced, same shape", args=RESUME, message="{tmp}/out.h5: " + MISMATCH,
         prepare=then(replace_data(OTHER)), check=sha_unchanged),
    Case("data with rows added", args=RESUME, message=MISMATCH,
         prepare=then(replace_data(DATA + "1 1:0.3\n"))),
    Case("data replaced, cache on", args=RESUME, message=MISMATCH,
         prepare=then(replace_data(OTHER), cfg="", extra=["--set", "data.cache=true"]),
         check=sha_unchanged),
    Case("worker count change with worker state", args=RESUME + ["--workers", "3"],
         message="{tmp}/out.h5: localsgd keeps per-worker state: resume with 2 workers, not 3",
         prepare=checkpointed("localsgd")),
    # -- a changed algorithm class ------------------------------------------------------------
    Case("plugin class gained an attribute", args=RESUME, launch="proc",
         files={"probe_plugin.py": plugin_source()},
         message="checkpoint /checkpoint/algorithm: has no 'momentum', an attribute of "
         "today's probe_gd", prepare=then(changed_plugin, algorithm="probe_gd",
                                          plugin="probe_plugin"), new=("__pycache__*",)),
    Case("attribute missing from an older checkpoint", args=RESUME,
         message="checkpoint /checkpoint/algorithm: has no 'stalled', an attribute of "
         "today's giant", prepare=then(drop_from_state("stalled"))),
    # -- legacy and version ---------------------------------------------------------------------
    Case("legacy checkpoint resumes with a warning", code=0, lines=None, data=None,
         args=["run", "--resume", "{tmp}/giant-stopped.h5", "-q"], prepare=legacy,
         check=lambda tmp, out: (
             "distnewton: warning:" in out and "cannot be verified" in out
             and h5py.File(tmp / "giant-stopped.h5", "r").attrs["status"] == "converged")
         or pytest.fail(out)),
    Case("another version with the same layout", code=0, lines=None,
         args=RESUME + ["--set", "run.max_rounds=6"],
         prepare=then(setattr_("checkpoint", "distnewton_version", "0.2.9")),
         check=lambda tmp, out: ("written by distnewton 0.2.9" in out
                                 and "layout matches" in out) or pytest.fail(out)),
    # -- legitimate resumes still continue ------------------------------------------------------
    Case("resume with more rounds", code=0, lines=None,
         args=RESUME + ["--set", "run.max_rounds=6"], prepare=checkpointed(),
         check=continued(6)),
    Case("data.train moved, same content", code=0, lines=None,
         args=RESUME + ["--set", "data.train={tmp}/copy.svm", "--set", "run.max_rounds=6"],
         files={"copy.svm": DATA}, prepare=checkpointed(), check=continued(6)),
    Case("stateless algorithm on more workers", code=0, lines=None,
         args=RESUME + ["--workers", "3", "--set", "run.max_rounds=6"],
         prepare=checkpointed(), check=continued(6)),
    # -- under mpiexec: every rank ends, with one line ----------------------------------------
    Case("mpi data replaced, parallel ingestion", args=RESUME, launch="mpi",
         message="{tmp}/out.h5: " + MISMATCH, prepare=then(replace_data(OTHER)),
         check=sha_unchanged, timeout=120),
    Case("mpi data replaced, rank 0 reads", args=RESUME, launch="mpi",
         env={"DISTNEWTON_PARALLEL_INGEST": "0"}, message="{tmp}/out.h5: " + MISMATCH,
         prepare=then(replace_data(OTHER)), check=sha_unchanged, timeout=120),
    Case("mpi data replaced, parallel from the cache", args=RESUME, launch="mpi",
         message=MISMATCH, prepare=then(replace_data(OTHER), extra=["--set", "data.cache=true"]),
         check=sha_unchanged, timeout=120),
    Case("mpi worker image missing", args=RESUME, launch="mpi",
         message="{tmp}/out.h5: checkpoint /checkpoint/workers/1: missing",
         prepare=then(edit(lambda f: f["checkpoint/workers"].__delitem__("1"))), timeout=120),
    Case("mpi set algorithm.name", args=RESUME + ["--set", "algorithm.name=newton"],
         launch="mpi", message="depends on algorithm.name", prepare=checkpointed(),
         timeout=120),
    Case("mpi plugin class gained an attribute", args=RESUME, launch="mpi",
         files={"probe_plugin.py": plugin_source()},
         message="has no 'momentum', an attribute of today's probe_gd",
         prepare=then(changed_plugin, algorithm="probe_gd", plugin="probe_plugin"),
         new=("__pycache__*",), timeout=120),
    Case("mpi resume continues", code=0, lines=None, launch="mpi",
         args=RESUME + ["--set", "run.max_rounds=6"], prepare=checkpointed(),
         check=continued(6), timeout=120),
]


@pytest.mark.parametrize("case", params(CASES, "resume"))
def test_resume(case, tmp_path):
    check(case, tmp_path)

