"""Real small result files, made once per session, and the damages the result
corpus applies to copies of them (tests/test_corpus_results.py: HDF5 results;
tests/test_corpus_fallbacks.py: fallback archives and warm starts).

A ``prepare`` (tests/support/corpus.py's ``Case``) gets the case's folder; a
*damage* gets the copied result open in h5py (``r+``); a *change* gets the fallback
archive's arrays as a dict, before they are saved back.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import h5py
import numpy as np
import yaml

from support.corpus import DATA

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


def has(text):
    """A ``check``: ``text`` was printed."""
    def check_(tmp, out):
        assert text in out, out
    return check_


#: where a case's copy of the result, its fallback archive and its data are
F = "{tmp}/out.h5"
NPZ = "{tmp}/out.h5.fallback.npz"
SVM = "{tmp}/data.svm"
#: every other weight not a number
NAN = set_w(lambda w: np.where(np.arange(len(w)) % 2 == 0, np.nan, w))
