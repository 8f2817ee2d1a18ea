"""Adversarial corpus, class *params*: every parameter is checked by type and
range before anything is allocated, wrong acceptances are refused, and a
plugin that fails or exits on import is named (tests/support/corpus.py runs
each case; issue 28).

The CLI cases are :data:`CASES` (by sub-kind: the run's sections, each
algorithm's keys, memory sizes, the data, plugins); the Python API's and the
scikit-learn estimators' keyword checks are plain tests below.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from distnewton.checks import VECTORS, ram_bytes
from support import launch
from support.corpus import DATA, RUN, Case, check, params

BIG = 2 ** 70                    # beyond int64: HDF5 attributes could not store it
ONE_CLASS = "1 1:0.5 2:1\n1 2:0.3 3:1\n1 1:1 4:0.2\n1 2:1 3:0.5\n1 1:0.7 3:0.1\n1 2:0.9 4:1\n"
ZERO_CLASS = ONE_CLASS.replace("1 ", "0 ", 1).replace("\n1 ", "\n0 ")
OVERFLOW = DATA.replace("1 1:0.5 2:1", "1 1:1e308 2:1")          # x^2 overflows float64
RIDGE_OVERFLOW = DATA.replace("1 1:0.5 2:1", "1e200 1:0.5 2:1", 1)
HUGE_INDEX = DATA + "1 2000000000:1\n"                       # d = 2e9 from the file


def bad(name, section, key, value, message, **kw):
    """A config whose ``section.key`` is ``value``; the error names the key."""
    return Case(name, config={section: {key: value}}, message=f"{section}.{key}: {message}",
                **kw)


def alg(algorithm, key, value, message):
    return Case(f"{algorithm}.{key} {value!r}", config={"algorithm": {"name": algorithm,
                                                                        key: value}},
                message=f"algorithm.{key}: {message}")


SECTIONS = [
    bad("n_features a word", "data", "n_features", "many", "expected an integer"),
    bad("n_features beyond int64", "data", "n_features", BIG, "must be an integer of at most 2**63 - 1"),
    bad("data.seed negative", "data", "seed", -1, "must be >= 0, got -1"),
    bad("data.seed beyond int64", "data", "seed", BIG, "must be an integer of at most 2**63 - 1"),
    bad("partition_alpha inf", "data", "partition_alpha", float("inf"), "must be finite"),
    bad("partition_alpha nan", "data", "partition_alpha", float("nan"), "must be a number"),
    bad("positive_labels nested list", "data", "positive_labels", [[1]],
        "expected a non-empty list of finite numbers"),
    bad("positive_labels mapping item", "data", "positive_labels", [{"a": 1}],
        "expected a non-empty list of finite numbers"),
    bad("positive_labels empty", "data", "positive_labels", [],
        "expected a non-empty list of finite numbers"),
    Case("synth seed negative", config={"data": {"train": "{tmp}/gen.svm",
                                                 "synth": {"n_samples": 20, "n_features": 3,
                                                           "seed": -1}}},
         message="data.synth.seed: must be an integer in [0, 2**63 - 1], got -1"),
    Case("synth of 1e14 non-zeros", config={"data": {"train": "{tmp}/gen.svm", "synth": {
        "n_samples": 10 ** 9, "n_features": 10 ** 6}}},
         message="data.synth: n_samples x n_features x density = 1e+14 non-zeros need"),
    bad("rows_per_worker a word", "data", "rows_per_worker", "all", "expected an integer"),
    bad("lambda inf", "model", "lambda", float("inf"), "must be finite, got inf"),
    bad("lambda nan", "model", "lambda", float("nan"), "must be a number, got nan"),
    bad("lambda 'inf' as text", "model", "lambda", "inf", "must be finite, got inf"),
    bad("lambda 1e400 (YAML reads a string)", "model", "lambda", "1e400",
        "must be finite, got inf"),
    Case("class_weight inf", config={"model": {"class_weight": {1: float("inf")}}},
         message="model.class_weight.1: must be finite, got inf"),
    Case("class_weight a word", config={"model": {"class_weight": {1: "heavy"}}},
         message="model.class_weight.1: must be a number >= 0, got 'heavy'"),
    bad("run.seed negative", "run", "seed", -1, "must be >= 0, got -1"),
    bad("run.seed 2**70", "run", "seed", BIG, "must be an integer of at most 2**63 - 1"),
    bad("f_star inf", "run", "f_star", float("inf"), "must be finite"),
    bad("f_star nan", "run", "f_star", float("nan"), "must be a number"),
    bad("target_loss nan", "run", "target_loss", float("nan"), "must be a number"),
    Case("f_star 0 with target_subopt", config={"run": {"f_star": 0, "target_subopt": 1e-3}},
         message="run.f_star: 0 with run.target_subopt"),
    bad("max_rounds 2**63", "run", "max_rounds", 2 ** 63, "must be an integer of at most 2**63 - 1"),
    bad("max_rounds a word", "run", "max_rounds", "many", "expected an integer"),
    bad("grad_rtol inf", "run", "grad_rtol", float("inf"), "must be finite"),
    Case("latency per_byte nan", config={"run": {"latency_model": {"per_byte": float("nan")}}},
         message="run.latency_model.per_byte: must be a finite number >= 0, got nan"),
    bad("workers a fraction", "run", "workers", 1.5, "expected an integer",
        args=[a for a in RUN if a not in ("--workers", "2")]),
    Case("--set run.seed=-5", args=[*RUN, "--set", "run.seed=-5"],
         message="run.seed: must be >= 0, got -5"),
    bad("algorithm.name a list", "algorithm", "name", ["newton", "gd"],
        "expected a string"),
    bad("algorithm.name a number", "algorithm", "name", 3, "expected a string"),
    bad("algorithm.name a mapping", "algorithm", "name", {"newton": 1}, "expected a string"),
]

ALGORITHMS = [
    alg("newton", "max_backtracks", 10 ** 9, "must be in [1, 1100]"),
    alg("newton", "ls_steps", 5000, "must be in [1, 1100]"),
    alg("newton", "alpha_max", float("inf"), "must be finite"),
    alg("gd", "step_size", 1e300, "must be <= 1000000000000.0"),
    alg("gd", "growth", "fast", "expected a number"),
    alg("giant", "cg_maxiter", 2 ** 64, "must be an integer of at most 2**63 - 1"),
    alg("giant", "beta", "small", "expected a number"),
    alg("localnewton", "L", "three", "expected an integer"),
    alg("adaptive_localnewton", "delta", float("nan"), "must be a number"),
    alg("lbfgs", "alpha_max", 1e300, "must be <= 1000000000000.0"),
    alg("lbfgs", "m", "ten", "expected an integer"),
    alg("owlqn", "c1", 0.7, "must be in (0, 0.5), got 0.7"),
    alg("localsgd", "lr", 1e300, "must be <= 1000000000000.0"),
    alg("scaled_localsgd", "gamma", float("inf"), "must be finite"),
    alg("ist", "gamma", 1e200, "must be <= 1000000000000.0"),
    alg("ranl", "region_seed", -1, "must be >= 0"),
    alg("ranl", "capacities", "most", "expected a number, a list of numbers or 'uniform"),
    alg("ranl", "capacities", "uniform(0.5, inf)", "uniform(a, b) needs 0 < a <= b <= 1"),
    alg("ranl", "regions", "many", "must be an integer >= 1 or 'random'"),
    alg("ranl", "eta", 1e300, "must be <= 1000000000000.0"),
    alg("fednl", "alpha", "fast", "must be 'largest', 'theory' or a number in (0, 1]"),
    alg("fednl", "option", "best", "must be 1, 2 or auto"),
    alg("fednl", "k_mult", "eight", "expected an integer"),
    alg("disco", "mu", -1.0, "must be >= 0"),
    alg("disco", "solver", "lu", "must be one of"),
    alg("dane", "eta", 0.0, "must be > 0"),
    alg("dane", "local_solver", "lu", "must be one of"),
]

SIZES = [
    Case("n_features 2**62: its vectors exceed any RAM",
         config={"data": {"n_features": 2 ** 62}},
         message=f"data.n_features: d = {2 ** 62} features need at least"),
    Case("fednl on n_features 1e5: dense d x d at config time",
         config={"data": {"n_features": 100000}, "algorithm": {"name": "fednl"}},
         message="algorithm.name: this path forms d x d matrices: d = 100000 needs"),
    Case("lbfgs hessian full on n_features 1e6",
         config={"data": {"n_features": 1000000},
                 "algorithm": {"name": "lbfgs", "hessian": "full"}},
         message="algorithm.hessian: this path forms d x d matrices"),
]


def _ram_below(bytes_):
    """prepare(): skip on a machine whose RAM could hold ``bytes_``."""
    def prepare(tmp):
        if (ram_bytes() or 0) >= bytes_:
            pytest.skip(f"this machine has {ram_bytes()} bytes of RAM")
    return prepare


def _split(parts):
    """prepare(): ``data split`` of data.svm into {tmp}/shards (before the snapshot)."""
    def prepare(tmp):
        subprocess.run([sys.executable, "-m", "distnewton", "data", "split",
                        str(tmp / "data.svm"), "--parts", str(parts), "--out",
                        str(tmp / "shards"), "--cache", "off"],
                       check=True, env=launch.env(), capture_output=True, timeout=120)
    return prepare


MPI_RUN = ["run", "{tmp}/c.yaml", "--backend", "mpi", "-o", "{tmp}/out.h5", "-q"]
RANK0 = {"DISTNEWTON_PARALLEL_INGEST": "0"}
DATA_CASES = [
    Case("one class of +1 labels", data=ONE_CLASS,
         message="{tmp}/data.svm: every label is [1]: logistic loss needs two classes"),
    Case("one class of 0 labels", data=ZERO_CLASS,
         message="{tmp}/data.svm: every label is [0]"),
    Case("ovr on one class", data=ONE_CLASS, config={"model": {"multiclass": "ovr"}},
         message="{tmp}/data.svm: model.multiclass: ovr needs at least 2 classes"),
    Case("feature value 1e308 overflows", data=OVERFLOW,
         message="{tmp}/data.svm: a feature value of magnitude 1e+308 overflows float64"),
    Case("ridge label 1e200 overflows", data=RIDGE_OVERFLOW,
         config={"model": {"loss": "ridge"}},
         message="{tmp}/data.svm: a label of magnitude 1e+200 overflows float64"),
    Case("d = 2e9 from the file exceeds the RAM", data=HUGE_INDEX,
         prepare=_ram_below(VECTORS * 8 * 2_000_000_001),
         message="{tmp}/data.svm: d = 2000000000 features need at least"),
    Case("one class under MPI, parallel ingestion", data=ONE_CLASS, args=MPI_RUN,
         launch="mpi", message="{tmp}/data.svm: every label is [1]", lines=None,
         timeout=120),
    Case("one class under MPI, rank-0 ingestion", data=ONE_CLASS, args=MPI_RUN,
         launch="mpi", env=RANK0, message="{tmp}/data.svm: every label is [1]", lines=None,
         timeout=120),
    Case("one class under MPI, data.shards", data=ONE_CLASS, args=MPI_RUN, launch="mpi",
         prepare=_split(2), config={"data": {"train": None, "shards": "{tmp}/shards"}},
         message="data.shards: every label is [1]", lines=None, timeout=120),
    Case("overflow in data.shards (sim)", data=OVERFLOW, prepare=_split(2),
         config={"data": {"train": None, "shards": "{tmp}/shards"}},
         message="data.shards: a feature value of magnitude 1e+308 overflows float64"),
    Case("overflow in data.shards under MPI (found by the worker ranks)", data=OVERFLOW,
         args=MPI_RUN, launch="mpi", prepare=_split(2),
         config={"data": {"train": None, "shards": "{tmp}/shards"}}, timeout=120,
         message="data.shards: a feature value of magnitude 1e+308"),
    Case("overflow under MPI, parallel ingestion", data=OVERFLOW, args=MPI_RUN,
         launch="mpi", message="{tmp}/data.svm: a feature value of magnitude 1e+308",
         lines=None, timeout=120),
    Case("overflow under MPI, rank-0 ingestion", data=OVERFLOW, args=MPI_RUN,
         launch="mpi", env=RANK0, message="{tmp}/data.svm: a feature value of magnitude",
         lines=None, timeout=120),
]

def _diverged_quietly(tmp, text):
    """check(): the run stopped as diverged, and numpy's warnings never reached the user."""
    assert "diverged: loss or gradient is not finite" in text, text
    assert "RuntimeWarning" not in text and "Traceback" not in text, text


#: lr = 1e12 (the largest step accepted) overflows w in a few rounds: status diverged
DIVERGES = {"algorithm": {"name": "localsgd", "lr": 1e12}, "run": {"max_rounds": 50}}
DIVERGING = [
    Case("diverging run (sim): no numpy warning", config=DIVERGES, code=0, lines=None,
         args=[a for a in RUN if a != "-q"], launch="proc", new=("out.h5",),
         check=_diverged_quietly),
    Case("diverging run under MPI: no numpy warning on any rank", config=DIVERGES, code=0,
         lines=None, args=[a for a in MPI_RUN if a != "-q"], launch="mpi", new=("out.h5",),
         timeout=120, check=_diverged_quietly),
]

#: the case folder first on the path (the plugin module), then this worktree
PLUGIN_ENV = {"PYTHONPATH": os.pathsep.join([".", str(launch.ROOT)])}


def plugin(name, body, message, **kw):
    return Case(name, files={f"{name.replace(' ', '_')}.py": body},
                config={"run": {"plugins": [name.replace(" ", "_")]}},
                message=message, launch=kw.pop("launch", "proc"), env=PLUGIN_ENV,
                new=("__pycache__", "__pycache__/*"), **kw)


PLUGINS = [
    plugin("raises on import", "raise RuntimeError('boom')\n",
           "run.plugins: cannot import 'raises_on_import' (RuntimeError: boom)"),
    plugin("exits 0 on import", "import sys\nsys.exit(0)\n",
           "run.plugins: importing 'exits_0_on_import' called sys.exit(0)"),
    plugin("exits 3 on import", "import sys\nsys.exit(3)\n",
           "run.plugins: importing 'exits_3_on_import' called sys.exit(3)"),
    Case("missing plugin", config={"run": {"plugins": ["no_such_plugin_28"]}},
         launch="proc", env=PLUGIN_ENV,
         message="run.plugins: cannot import 'no_such_plugin_28' (ModuleNotFoundError"),
    plugin("exits 0 on import under MPI", "import sys\nsys.exit(0)\n",
           "run.plugins: importing 'exits_0_on_import_under_MPI' called sys.exit(0)",
           launch="mpi", args=MPI_RUN, lines=None, timeout=120),
]

CASES = SECTIONS + ALGORITHMS + SIZES + DATA_CASES + DIVERGING + PLUGINS


@pytest.mark.parametrize("case", params(CASES, "params"))
def test_params(case, tmp_path):
    check(case, tmp_path)


def test_every_builtin_algorithm_has_a_bad_value_case():
    """The corpus refuses at least one value of every built-in algorithm."""
    from distnewton.algorithms.registry import BUILTINS
    covered = {c.config["algorithm"]["name"] for c in ALGORITHMS}
    assert covered == {cls.name for cls in BUILTINS}


def _numeric_keys():
    """(section, algorithm name or None, key, Param) of every numeric key."""
    from distnewton.algorithms.registry import BUILTINS
    from distnewton.config import SCHEMA
    out = [(sec, None, key, p) for sec, spec in SCHEMA.items() for key, p in spec.items()]
    out += [("algorithm", cls.name, key, p) for cls in BUILTINS for key, p in cls.params.items()]
    return [k for k in out if int in k[3].types or float in k[3].types]


@pytest.mark.parametrize("value", ["word", float("nan"), float("inf"), -float("inf"), [1.0],
                                   {"a": 1}], ids=repr)
def test_every_numeric_key_refuses(value):
    """Every numeric key of the schema and of every built-in algorithm refuses a word,
    NaN, an infinity, a list and a mapping (unless its types take that kind) with one
    UserError naming the key, at resolve: before any file is read."""
    from distnewton.config import override, resolve
    from distnewton.errors import UserError
    checked = 0
    for section, name, key, p in _numeric_keys():
        if not isinstance(value, float) and type(value) in p.types:
            continue                          # (a word for fednl's alpha: checked above)
        sets = [override("algorithm.name", name or "gd"), override(f"{section}.{key}", value)]
        with pytest.raises(UserError) as exc:
            resolve({"data": {"train": "x.svm"}}, sets)
        assert str(exc.value).startswith(f"{section}.{key}"), (section, key, str(exc.value))
        checked += 1
    assert checked > 60


def test_every_integer_key_refuses_beyond_int64():
    from distnewton.config import override, resolve
    from distnewton.errors import UserError
    keys = [k for k in _numeric_keys() if float not in k[3].types]
    for section, name, key, p in keys:
        sets = [override("algorithm.name", name or "gd"), override(f"{section}.{key}", BIG)]
        with pytest.raises(UserError, match=f"^{section}.{key}: must be an integer of at most"):
            resolve({"data": {"train": "x.svm"}}, sets)
    assert len(keys) > 25


# -- the Python API and the scikit-learn estimators (not CLI cases) ------------------
X = np.array([[0.5, 1.0], [0.0, 0.3], [1.0, 0.0], [0.0, 1.0], [0.7, 0.1], [0.2, 0.9]])
Y = np.array([1, -1, 1, -1, 1, -1])


@pytest.mark.parametrize("kwargs,message", [
    ({"seed": -1}, "run.seed: must be >= 0, got -1"),
    ({"seed": BIG}, "run.seed: must be an integer of at most 2**63 - 1"),
    ({"workers": "two"}, "run.workers: expected an integer, got 'two'"),
    ({"set": {"model.lambda": float("nan")}}, "model.lambda: must be a number, got nan"),
    ({"set": {"algorithm.max_backtracks": 10 ** 9}}, "algorithm.max_backtracks: must be in"),
    ({"set": {"algorithm.name": ["gd"]}}, "algorithm.name: expected a string"),
])
def test_solve_refuses(kwargs, message):
    from distnewton import solve
    from distnewton.errors import UserError
    with pytest.raises(UserError) as exc:
        solve({"algorithm": {"name": "newton"}}, data=(X, Y), **kwargs)
    assert message in str(exc.value)


def test_solve_refuses_one_class():
    from distnewton import solve
    from distnewton.errors import UserError
    with pytest.raises(UserError, match="every label is \\[1\\]"):
        solve({"algorithm": {"name": "newton"}}, data=(X, np.ones(len(X))))


@pytest.mark.parametrize("kwargs,message", [
    ({"tol": "small"}, "run.grad_rtol: expected a number, got 'small'"),
    ({"lam": float("inf")}, "model.lambda: must be finite"),
    ({"seed": -3}, "run.seed: must be >= 0, got -3"),
    ({"workers": "two"}, "run.workers: expected an integer, got 'two'"),
    ({"max_rounds": 0}, "run.max_rounds: must be >= 1, got 0"),
    ({"algorithm": 3}, "algorithm.name: expected a string"),
    ({"fit_intercept": "no"}, "model.fit_intercept: expected true/false, got 'no'"),
    ({"params": {"max_backtracks": 10 ** 9}}, "algorithm.max_backtracks: must be in"),
    ({"params": ["max_backtracks"]}, "params: expected a mapping"),
])
def test_estimator_refuses(kwargs, message):
    from distnewton.errors import UserError
    from distnewton.sklearn import DistNewtonClassifier
    with pytest.raises(UserError) as exc:
        DistNewtonClassifier(**kwargs).fit(X, Y)
    assert message in str(exc.value)


def test_estimator_takes_numpy_scalars():
    """numpy integers (a grid search's values) are integers to the config."""
    from distnewton.sklearn import DistNewtonRegressor
    est = DistNewtonRegressor(workers=np.int64(2), seed=np.int64(1), max_rounds=np.int32(5),
                              fit_intercept=1).fit(X, X @ [1.0, -2.0])
    assert est.coef_.shape == (2,)
