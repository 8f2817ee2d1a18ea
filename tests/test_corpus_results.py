"""Adversarial corpus, class *results*: a damaged result file is refused when
read, in one line naming the file and the field, never used quietly
(tests/support/corpus.py runs each case).

Each case copies a real small result (a sim run through the CLI, made once per
session: tests/support/result_files.py's ``base``) into the case's folder and
damages it with h5py; the command (``predict``, ``evaluate``, ``export``,
``report``, ``plot``) must exit 2 with the line ``distnewton: error: FILE: FIELD:
what``.  The positive cases check that undamaged files still work (exit 0).  The
fallback archives and the warm starts (``model.w0``), read by the same commands
and ``recover`` and ``run``, are this class's cases in tests/test_corpus_fallbacks.py.
"""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from support.corpus import Case, check, params
from support.launch import ROOT
from support.result_files import (DATA3, F, NAN, SVM, both, has, replace, result,
                                  set_attr, set_w, truncate)

LEGACY = ROOT / "tests" / "data" / "legacy-0.3.0.dev0"


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


def pop_fit_intercept(cfg):
    cfg["model"].pop("fit_intercept")


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


def rejects_nothing(tmp, out):
    """The diverged model is used, with the warning line."""
    assert "distnewton: warning: " in out and "status diverged" in out, out
    assert "accuracy" in out, out


PREDICT = ["predict", F, SVM]
EVALUATE = ["evaluate", F, SVM]
EXPORT = ["export", F, "-o", "{tmp}/m.txt"]
REPORT = ["report", F, "--no-compute"]
PLOT = ["plot", F, "-o", "{tmp}/p.png", "--no-compute"]

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
    Case("diverged model predicts with a warning", EVALUATE,
         prepare=result(set_attr("status", "diverged")), code=0, lines=None,
         check=rejects_nothing),
    Case("legacy file predicts", ["predict", str(LEGACY / "newton.h5"),
                                  str(LEGACY / "train.svm")], code=0, lines=None),
    Case("legacy ovr file evaluates", ["evaluate", str(LEGACY / "ovr.h5"),
                                       str(LEGACY / "train3.svm")], code=0, lines=None,
         check=has("accuracy")),
]


@pytest.mark.parametrize("case", params(CASES, "results"))
def test_results(case, tmp_path):
    check(case, tmp_path)
