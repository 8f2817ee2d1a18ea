"""The result format's own description (distnewton.io.schema) and what 0.3 adds to
the file: column descriptions, /model/w's intercept index, the label map as JSON."""

from __future__ import annotations

import ast
import json

import h5py
import numpy as np
import distnewton
from distnewton.algorithms import ALGORITHMS
from distnewton.io.schema import (ALGORITHM_COLUMNS, BASE_COLUMNS, RUN_COLUMNS,
                                  TIMING_COLUMNS, column_description)


def arrays(n, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, np.where(X @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n) > 0,
                       1.0, -1.0)


def test_every_built_in_column_is_described():
    described = {**BASE_COLUMNS, **TIMING_COLUMNS, **RUN_COLUMNS, **ALGORITHM_COLUMNS}
    for name in ALGORITHMS:
        if ALGORITHMS.origin(name) != "built-in":
            continue
        for col in ALGORITHMS[name].columns:
            assert col in described, f"{name}: history column {col!r} has no description"
            assert column_description(col) not in ("", col)
    assert column_description("my_plugin_column") == "my_plugin_column"
    assert column_description("loss", {"loss": "f(w), my words"}) == "f(w), my words"


def test_the_file_says_where_the_intercept_is_and_what_columns_hold(tmp_path):
    X, y = arrays(60, 4, seed=3)
    raw = {"data": {"train": "unused"}, "model": {"loss": "logistic", "lambda": 0.1,
                                                   "fit_intercept": True},
           "algorithm": {"name": "newton", "solver": "cg"}, "run": {"max_rounds": 30}}
    path = tmp_path / "r.h5"
    res = distnewton.solve(raw, workers=2, data=(X, np.where(y > 0, 2.0, 1.0)), output=path)
    with h5py.File(path, "r") as f:
        w = f["model/w"]
        assert w.shape == (5,) and w.attrs["intercept_index"] == 4
        assert bool(w.attrs["regularized_intercept"]) is True
        desc = f["history/cg_iterations"].attrs["description"]
        assert "conjugate-gradient" in desc
        assert f["history/loss"].attrs["description"] == BASE_COLUMNS["loss"][1]
        as_json = json.loads(f.attrs["label_map_json"])
        as_repr = ast.literal_eval(f.attrs["label_map"])
    assert as_json == as_repr and as_json["map"] == {"1": -1.0, "2": 1.0}
    assert res.attrs["label_map_json"] == f"{json.dumps(as_json, sort_keys=True)}"


def test_no_intercept_is_index_minus_one(tmp_path):
    X, y = arrays(40, 3, seed=1)
    raw = {"data": {"train": "unused"}, "model": {"loss": "ridge", "lambda": 0.1},
           "algorithm": {"name": "gd"}, "run": {"max_rounds": 3}}
    distnewton.solve(raw, workers=2, data=(X, y), output=tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5", "r") as f:
        assert f["model/w"].attrs["intercept_index"] == -1
