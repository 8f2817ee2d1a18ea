"""Adversarial corpus, class *results*: a damaged result file is refused when
read, in one line naming the file and the field, never used quietly
(tests/support/corpus.py runs each case).

Each case copies a real small result (a sim run through the CLI, made once per
session: :func:`base`) into the case's folder and damages it with h5py (or
numpy for the fallback archive and the warm start); the command must exit 2
with the line ``distnewton: error: FILE: FIELD: what``.  The positive cases
check that undamaged files still work (exit 0).
"""

import atexit
import json
import shutil
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from support.corpus import DATA, Case, check, params
from support.launch import ROOT

LEGACY = ROOT / "tests" / "data" / "legacy-0.3.0.dev0"
DATA3 = ("1 1:0.5 2:1\n2 2:0.3 3:1\n3 1:1 4:0.2\n1 2:1 3:0.5\n2 1:0.7 3:0.1\n"
         "3 2:0.9 4:1\n1 1:0.2 2:0.4\n2 3:0.8 4:0.3\n3 1:0.4 4:0.6\n")
_BASES = {}
_FOLDER = []


def base(kind="bin") -> Path:
    """A real result of ``kind`` (bin: logistic with an intercept; ridge; ovr:
    three classes; fallback: the .fallback.npz of that logistic run), made once."""
    if kind in _BASES:
        return _BASES[kind]
    from click.testing import CliRunner

    from distnewton.cli import main
    if not _FOLDER:
        _FOLDER.append(Path(tempfile.mkdtemp(prefix="corpus-results-")))
        atexit.register(shutil.rmtree, _FOLDER[0], True)
    folder = _FOLDER[0] / kind
    folder.mkdir()
    if kind == "fallback":
        from distnewton.io.fallback import save_fallback
        from distnewton.io.read import load
        run = load(base("bin"))
        name = save_fallback(str(folder / "out.h5"), run.attrs, run.history, run.w)
        _BASES[kind] = Path(name)
        return _BASES[kind]
    (folder / "data.svm").write_text(DATA3 if kind == "ovr" else DATA)
    model = {"fit_intercept": True, "loss": "ridge" if kind == "ridge" else "logistic"}
    if kind == "ovr":
        model["multiclass"] = "ovr"
    cfg = {"data": {"train": str(folder / "data.svm"), "cache": "off"}, "model": model,
           "algorithm": {"name": "giant"}, "run": {"max_rounds": 3}}
    (folder / "c.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(main, ["run", str(folder / "c.yaml"), "--backend", "sim",
                                    "--workers", "2", "-o", str(folder / "out.h5"), "-q"])
    assert res.exit_code == 0, res.output
    _BASES[kind] = folder / "out.h5"
    return _BASES[kind]


def result(damage=None, kind="bin", name="out.h5"):
    """A ``prepare``: copy the ``kind`` result to ``{tmp}/name`` and apply ``damage(h5 file)``."""
    def prepare(tmp):
        dst = Path(tmp) / name
        shutil.copy(base(kind), dst)
        if damage is not None:
            with h5py.File(dst, "r+") as f:
                damage(f)
    return prepare


def npz(change=None, name="out.h5.fallback.npz"):
    """A ``prepare``: the fallback archive's arrays, ``change(arrays)``d, saved to
    ``{tmp}/name`` (pickled objects allowed, as a tampered file may hold)."""
    def prepare(tmp):
        with np.load(base("fallback"), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if change is not None:
            change(arrays)
        with open(Path(tmp) / name, "wb") as fh:
            np.savez(fh, **arrays)
    return prepare


def replace(path, value, **attrs):
    """A damage: dataset ``path`` replaced by ``value`` (with ``attrs``)."""
    def damage(f):
        del f[path]
        f.create_dataset(path, data=value)
        f[path].attrs.update(attrs)
    return damage


def set_w(fn):
    """A damage: /model/w replaced by ``fn(w)``, its attributes kept."""
    def damage(f):
        w, attrs = f["model/w"][()], dict(f["model/w"].attrs)
        replace("model/w", fn(w), **attrs)(f)
    return damage


def set_attr(name, value):
    def damage(f):
        f.attrs[name] = value
    return damage


def edit_config(fn):
    """A damage: the config attribute's YAML, changed by ``fn(cfg dict)``."""
    def damage(f):
        cfg = yaml.safe_load(f.attrs["config"])
        fn(cfg)
        f.attrs["config"] = yaml.safe_dump(cfg)
    return damage


def edit_label_map(fn):
    """A damage: label_map (and label_map_json) changed by ``fn(dict)``."""
    def damage(f):
        import ast
        lm = ast.literal_eval(f.attrs["label_map"])
        fn(lm)
        f.attrs["label_map"] = repr(lm)
        f.attrs["label_map_json"] = json.dumps(lm)
    return damage


def truncate(name, keep=0.5):
    def prepare(tmp):
        p = Path(tmp) / name
        p.write_bytes(p.read_bytes()[:int(p.stat().st_size * keep)])
    return prepare


def both(*steps):
    def prepare(tmp):
        for step in steps:
            step(tmp)
    return prepare


def drop(key):
    def change(a):
        del a[key]
    return change


def pop_fit_intercept(cfg):
    cfg["model"].pop("fit_intercept")


def nan_w0(tmp):
    np.save(Path(tmp) / "w0.npy", np.array([0.1, np.inf, 0.0, 0.2, 0.0]))


def complex_w0(tmp):
    np.save(Path(tmp) / "w0.npy", np.zeros(5, dtype=complex))


def object_w0(tmp):
    np.save(Path(tmp) / "w0.npy", np.array([0.1, "x", None, 0.2, 0.0], dtype=object),
            allow_pickle=True)


def scribble(tmp):
    """0xff over 600 bytes of the file's metadata (its first attributes' messages)."""
    p = Path(tmp) / "out.h5"
    b = bytearray(p.read_bytes())
    b[2000:2600] = b"\xff" * 600
    p.write_bytes(bytes(b))


def damaged(tmp, out):
    """The file's damage is reported as such, whatever part of it h5py trips on."""
    assert ("not a readable HDF5 file" in out or "damaged or truncated result file" in out
            or "expected" in out), out


def has(text):
    """A ``check``: ``text`` was printed."""
    def check_(tmp, out):
        assert text in out, out
    return check_


def rejects_nothing(tmp, out):
    """The diverged model is used, with the warning line."""
    assert "distnewton: warning: " in out and "status diverged" in out, out
    assert "accuracy" in out, out


F = "{tmp}/out.h5"
NPZ = "{tmp}/out.h5.fallback.npz"
SVM = "{tmp}/data.svm"
PREDICT = ["predict", F, SVM]
EVALUATE = ["evaluate", F, SVM]
EXPORT = ["export", F, "-o", "{tmp}/m.txt"]
REPORT = ["report", F, "--no-compute"]
PLOT = ["plot", F, "-o", "{tmp}/p.png", "--no-compute"]
RUN_W0 = ["run", "{tmp}/c.yaml", "--backend", "sim", "--workers", "2", "-o", "{tmp}/o2.h5",
          "-q"]
W0 = {"model": {"fit_intercept": True, "w0": "{tmp}/out.h5"}, "data": {"cache": "off"}}
W0_NPY = {"model": {"fit_intercept": True, "w0": "{tmp}/w0.npy"}, "data": {"cache": "off"}}
NAN = set_w(lambda w: np.where(np.arange(len(w)) % 2 == 0, np.nan, w))

CASES = [
    # -- the model: weights ---------------------------------------------------
    Case("predict nan weights", PREDICT, prepare=result(NAN),
         message=F + ": /model/w: 3 of 5 weights are not finite"),
    Case("evaluate inf weight", EVALUATE, prepare=result(set_w(lambda w: w * [1, 1, np.inf, 1, 1])),
         message=F + ": /model/w: 1 of 5 weights are not finite"),
    Case("export nan weights", EXPORT, prepare=result(NAN),
         message=F + ": /model/w: 3 of 5 weights are not finite"),
    Case("w as 2-D without ovr", PREDICT, prepare=result(set_w(lambda w: w[None, :])),
         message=F + ": /model/w: an array of shape (1, 5) without the root attribute "
                     "multiclass: ovr"),
    Case("w as strings", PREDICT, prepare=result(set_w(lambda w: np.array([b"a"] * 5))),
         message=F + ": /model/w: expected floating-point weights, got |S1"),
    Case("w as integers", EXPORT, prepare=result(set_w(lambda w: np.arange(5))),
         message=F + ": /model/w: expected floating-point weights, got int64"),
    Case("w too short for n_features", EVALUATE, prepare=result(set_w(lambda w: w[:4])),
         message=F + ": /model/w: 4 weights per model, attribute n_features is 5"),
    Case("w empty", PREDICT, prepare=result(set_w(lambda w: w[:0])),
         message=F + ": /model/w: expected a vector (or classes x features), got an array "
                     "of shape (0,)"),
    Case("no /model/w", EXPORT, prepare=result(lambda f: f.__delitem__("model/w")),
         message=F + ": /model/w: missing: the result file holds no model"),
    Case("/model/w a group", PREDICT,
         prepare=result(lambda f: (f.__delitem__("model/w"), f.create_group("model/w"))),
         message=F + ": /model/w: expected an array, got a group"),
    Case("ovr rows against classes", PREDICT, data=DATA3,
         prepare=result(set_w(lambda w: w[:2]), kind="ovr"),
         message=F + ": attribute label_map: 3 classes, /model/w has 2 rows"),
    # -- the model: attributes ------------------------------------------------
    Case("unknown loss", PREDICT, prepare=result(set_attr("loss", "hinge")),
         message=F + ": attribute loss: unknown loss 'hinge' "
                     "(logistic, ridge, squared_hinge, poisson)"),
    Case("loss as an array", EVALUATE,
         prepare=result(set_attr("loss", np.array([b"logistic", b"ridge"]))),
         message=F + ": attribute loss: expected a single value, got an array of shape (2,)"),
    Case("config not YAML", PREDICT,
         prepare=result(set_attr("config", "data:\n  train: x\nmodel: [unclosed\n  a: b\n")),
         message=F + ": attribute config: not valid YAML (line 4)"),
    Case("config a list", EXPORT, prepare=result(set_attr("config", "- a\n- b\n")),
         message=F + ": attribute config: expected a YAML mapping, got list"),
    Case("fit_intercept not a bool", PREDICT,
         prepare=result(edit_config(lambda c: c["model"].update(fit_intercept="yes please"))),
         message=F + ": attribute config: model.fit_intercept: expected true or false"),
    Case("fit_intercept unknown", EVALUATE,
         prepare=result(lambda f: (edit_config(pop_fit_intercept)(f),
                                   f["model/w"].attrs.__delitem__("intercept_index"))),
         message=F + ": model.fit_intercept: unknown"),
    Case("intercept_index contradicts config", PREDICT,
         prepare=result(lambda f: f["model/w"].attrs.__setitem__("intercept_index", -1)),
         message=F + ": /model/w attribute intercept_index: -1 contradicts "
                     "model.fit_intercept: true"),
    Case("intercept_index out of range", EXPORT,
         prepare=result(lambda f: f["model/w"].attrs.__setitem__("intercept_index", 2)),
         message=F + ": /model/w attribute intercept_index: 2: expected -1 or 4"),
    Case("label_map unreadable", PREDICT, prepare=result(set_attr("label_map", "{'loss': ")),
         message=F + ": attribute label_map: unreadable"),
    Case("label_map without map", EVALUATE,
         prepare=result(edit_label_map(lambda m: m.pop("map"))),
         message=F + ": attribute label_map: 'map' must map the training labels"),
    Case("label_map one-sided", PREDICT,
         prepare=result(edit_label_map(lambda m: m.update(map={"-1": 1.0, "1": 1.0}))),
         message=F + ": attribute label_map: 'map' must send the labels to both -1 and +1"),
    Case("label_map of another loss", EXPORT,
         prepare=result(edit_label_map(lambda m: m.update(loss="ridge"))),
         message=F + ": attribute label_map: is for loss 'ridge', the model's is 'logistic'"),
    Case("lambda nan", EXPORT, prepare=result(set_attr("lambda", np.nan)),
         message=F + ": attribute lambda: expected a finite number >= 0, got nan"),
    Case("n_features as text", PREDICT, prepare=result(set_attr("n_features", "five")),
         message=F + ": attribute n_features: expected an integer, got str 'five'"),
    Case("ridge label map missing is fine, lambda as text is not", EVALUATE,
         prepare=result(lambda f: (f.attrs.__delitem__("label_map"),
                                   f.attrs.__setitem__("lambda", "0.1")), kind="ridge"),
         message=F + ": attribute lambda: expected a number, got str '0.1'"),
    # -- the history (report, plot) ---------------------------------------------
    Case("history unequal columns", REPORT,
         prepare=result(replace("history/loss", np.array([1.0, 0.5, 0.4]))),
         message=F + ": history: columns of unequal length: loss has 3 rows, iteration 2"),
    Case("history loss as strings", PLOT,
         prepare=result(replace("history/loss", np.array([b"a", b"b"]))),
         message=F + ": history/loss: expected numbers, got |S1"),
    Case("history column 2-D", REPORT,
         prepare=result(replace("history/grad_norm", np.ones((2, 2)))),
         message=F + ": history/grad_norm: expected a 1-D column, got an array of shape (2, 2)"),
    Case("history without loss", PLOT,
         prepare=result(lambda f: f.__delitem__("history/loss")),
         message=F + ": history lacks loss"),
    Case("history a dataset", REPORT,
         prepare=result(replace("history", np.arange(3))),
         message=F + ": /history: expected a group of columns, got a dataset"),
    Case("schema_version as text", REPORT, prepare=result(set_attr("schema_version", "1")),
         message=F + ": attribute schema_version: expected an integer, got str '1'"),
    Case("status as an array", REPORT,
         prepare=result(set_attr("status", np.array([1, 2]))),
         message=F + ": attribute status: expected a single value"),
    # -- f* ----------------------------------------------------------------------
    Case("report f_star attribute nan", REPORT, prepare=result(set_attr("f_star", np.nan)),
         message=F + ": attribute f_star: nan: f* must be a finite nonzero number"),
    Case("plot f_star attribute zero", PLOT, prepare=result(set_attr("f_star", 0.0)),
         message=F + ": attribute f_star: 0.0: f* must be a finite nonzero number"),
    Case("report config run.f_star zero", REPORT,
         prepare=result(edit_config(lambda c: c["run"].update(f_star=0))),
         message=F + ": attribute config: run.f_star: 0.0: f* must be a finite nonzero"),
    Case("report --f-star nan", [*REPORT, "--f-star", "nan"], prepare=result(),
         message="--f-star: nan: f* must be a finite nonzero number"),
    Case("plot --f-star 0", [*PLOT, "--f-star", "0"], prepare=result(),
         message="--f-star: 0.0: f* must be a finite nonzero number"),
    # -- plot's axis options (issue 29) -----------------------------------------
    Case("plot --xlim not numbers", [*PLOT, "--xlim", "a:b"], prepare=result(),
         message="--xlim: 'a:b': expected LO:HI (numbers; either end may be left out"),
    Case("plot --xlim three parts", [*PLOT, "--xlim", "1:2:3"], prepare=result(),
         message="--xlim: '1:2:3': expected LO:HI"),
    Case("plot --xlim reversed", [*PLOT, "--xlim", "5,1"], prepare=result(),
         message="--xlim: '5,1': LO must be below HI"),
    Case("plot --xlim nan", [*PLOT, "--xlim", "nan:4"], prepare=result(),
         message="--xlim: 'nan:4': limits must be finite numbers"),
    Case("plot --xlim no end", [*PLOT, "--xlim", ":"], prepare=result(),
         message="--xlim: ':': give LO, HI or both"),
    Case("plot --ylim zero on the log axis", [*PLOT, "--ylim", "0:1"], prepare=result(),
         message="--ylim: '0:1': the axis is logarithmic: limits must be > 0"),
    Case("plot --xlim outside every run", [*PLOT, "--f-star", "0.3", "--xlim", "1000:"],
         prepare=result(),
         message="--xlim 1000: holds no point of any run (the figure would be empty)"),
    Case("plot --logx with bars", [*PLOT, "--kind", "bars", "--target", "rel:1e-3",
                                   "--logx"], prepare=result(),
         message="--logx, --xlim, --ylim: only for --kind curves"),
    # -- files that are not results ---------------------------------------------
    Case("truncated HDF5", REPORT, prepare=both(result(), truncate("out.h5")),
         message=F + ": not a readable HDF5 file (Unable to synchronously open file "
                     "(truncated file"),
    Case("HDF5 bytes overwritten", PREDICT, prepare=both(result(), scribble),
         message=F + ": ", check=damaged),
    Case("zero-length file", PREDICT, files={"out.h5": b""},
         message=F + ": not a readable HDF5 file"),
    Case("text file", EVALUATE, files={"out.h5": "not a result\n"},
         message=F + ": not a readable HDF5 file"),
    Case("a directory", PREDICT, files={"out.h5/x": "x"},
         message=F + ": not a regular file (a directory)"),
    Case("HDF5 of something else", EXPORT,
         prepare=lambda tmp: h5py.File(Path(tmp) / "out.h5", "w").close(),
         message=F + ": not a distnewton result file"),
    # -- the fallback archive ------------------------------------------------------
    Case("fallback truncated", ["recover", NPZ, "-o", "{tmp}/r.h5"],
         prepare=both(npz(), truncate("out.h5.fallback.npz")),
         message=NPZ + ": damaged or not a fallback file (BadZipFile"),
    Case("fallback pickled objects", ["report", NPZ, "--no-compute"],
         prepare=npz(lambda a: a.update(w=np.array([1.0, "x"], dtype=object))),
         message=NPZ + ": damaged or not a fallback file (ValueError: Object arrays cannot"),
    Case("fallback without w", ["recover", NPZ, "-o", "{tmp}/r.h5"], prepare=npz(drop("w")),
         message=NPZ + ": w: missing (damaged fallback file)"),
    Case("fallback attrs not JSON", ["report", NPZ, "--no-compute"],
         prepare=npz(lambda a: a.update(attrs=np.array("{not json"))),
         message=NPZ + ": attrs: not valid JSON"),
    Case("fallback attrs an array", ["recover", NPZ, "-o", "{tmp}/r.h5"],
         prepare=npz(lambda a: a.update(attrs=np.arange(3))),
         message=NPZ + ": attrs: expected one string, got int64"),
    Case("fallback history unequal", ["recover", NPZ, "-o", "{tmp}/r.h5"],
         prepare=npz(lambda a: a.update({"history/loss": np.ones(7)})),
         message=NPZ + ": history: columns of unequal length: loss has 7 rows"),
    Case("fallback w strings", ["predict", NPZ, SVM],
         prepare=npz(lambda a: a.update(w=np.array(["a", "b"]))),
         message=NPZ + ": /model/w: expected floating-point weights, got <U1"),
    Case("fallback nan w", ["predict", NPZ, SVM],
         prepare=npz(lambda a: a.update(w=a["w"] * np.nan)),
         message=NPZ + ": /model/w: 5 of 5 weights are not finite"),
    Case("fallback format a string", ["report", NPZ, "--no-compute"],
         prepare=npz(lambda a: a.update(distnewton_fallback=np.array("one"))),
         message=NPZ + ": distnewton_fallback: expected the format number"),
    Case("fallback without requested_path", ["recover", NPZ], prepare=npz(drop("requested_path")),
         message=NPZ + ": requested_path: missing (give the result file with -o)"),
    # -- warm starts -------------------------------------------------------------
    Case("w0 result with nan weights", RUN_W0, config=W0, prepare=result(NAN),
         message="model.w0: " + F + ": weights must be finite (3 of 5 are not)"),
    Case("w0 result truncated", RUN_W0, config=W0, prepare=both(result(), truncate("out.h5")),
         message="model.w0: " + F + ": not a readable HDF5 file"),
    Case("w0 result with string weights", RUN_W0, config=W0,
         prepare=result(set_w(lambda w: np.array([b"a"] * 5))),
         message="model.w0: " + F + ": /model/w: expected floating-point weights"),
    Case("w0 npy with inf", RUN_W0, config=W0_NPY, prepare=nan_w0,
         message="model.w0: {tmp}/w0.npy: weights must be finite (1 of 5 are not)"),
    Case("w0 npy complex", RUN_W0, config=W0_NPY, prepare=complex_w0,
         message="model.w0: {tmp}/w0.npy: expected a 1-D numeric vector, got shape (5,) of "
                 "complex128"),
    Case("w0 npy of objects", RUN_W0, config=W0_NPY, prepare=object_w0,
         message="model.w0: {tmp}/w0.npy: not a readable .npy file"),
    Case("w0 npy truncated", RUN_W0, config=W0_NPY,
         prepare=both(nan_w0, truncate("w0.npy", 0.9)),
         message="model.w0: {tmp}/w0.npy: not a readable .npy file"),
    Case("w0 fallback truncated", RUN_W0,
         config={"model": {"fit_intercept": True, "w0": NPZ}, "data": {"cache": "off"}},
         prepare=both(npz(), truncate("out.h5.fallback.npz")),
         message="model.w0: " + NPZ + ": damaged or not a fallback file"),
    Case("w0 nan under mpiexec", ["run", "{tmp}/c.yaml", "-o", "{tmp}/o2.h5", "-q"],
         config=W0, prepare=result(NAN), launch="mpi", timeout=120,
         message="model.w0: " + F + ": weights must be finite"),
    Case("w0 npy of objects under mpiexec", ["run", "{tmp}/c.yaml", "-o", "{tmp}/o2.h5", "-q"],
         config=W0_NPY, prepare=object_w0, launch="mpi", timeout=120,
         message="model.w0: {tmp}/w0.npy: not a readable .npy file"),
    # -- valid files still work ------------------------------------------------------
    Case("valid predict", PREDICT, prepare=result(), code=0, lines=None,
         check=has("accuracy")),
    Case("valid evaluate ovr", EVALUATE, data=DATA3, prepare=result(kind="ovr"), code=0,
         lines=None, check=has("accuracy")),
    Case("valid export ridge", ["export", F, "-o", "{tmp}/m.json", "--format", "json"],
         prepare=result(kind="ridge"), code=0, lines=None, new=("m.json",)),
    Case("valid report with file f_star", REPORT, prepare=result(set_attr("f_star", 0.3)),
         code=0, lines=None, check=has("f* data.svm: 3.0")),
    Case("valid plot with --logx --xlim --ylim",
         [*PLOT, "--f-star", "0.3", "--logx", "--xlim", "0:2", "--ylim", "1e-3:"],
         prepare=result(), code=0, lines=None, new=("p.png",)),
    Case("valid plot", [*PLOT, "--f-star", "0.3"], prepare=result(), code=0, lines=None,
         new=("p.png",)),
    Case("valid recover", ["recover", NPZ, "-o", "{tmp}/r.h5"], prepare=npz(), code=0,
         lines=None, new=("r.h5",)),
    Case("valid fallback predict", ["predict", NPZ, SVM], prepare=npz(), code=0, lines=None),
    Case("diverged model predicts with a warning", EVALUATE,
         prepare=result(set_attr("status", "diverged")), code=0, lines=None,
         check=rejects_nothing),
    Case("valid w0 result", RUN_W0, config=W0, prepare=result(), code=0, lines=None,
         new=("o2.h5",)),
    Case("legacy file predicts", ["predict", str(LEGACY / "newton.h5"),
                                  str(LEGACY / "train.svm")], code=0, lines=None),
    Case("legacy ovr file evaluates", ["evaluate", str(LEGACY / "ovr.h5"),
                                       str(LEGACY / "train3.svm")], code=0, lines=None,
         check=has("accuracy")),
]


@pytest.mark.parametrize("case", params(CASES, "results"))
def test_results(case, tmp_path):
    check(case, tmp_path)

