"""A run that did not converge says so (issue 29, part 5): ``distnewton.solve``
issues ``distnewton.ConvergenceWarning``, the scikit-learn estimators
scikit-learn's own ``sklearn.exceptions.ConvergenceWarning``, and both expose
the outcome (``Result.status``/``success``; ``status_``, ``converged_``,
``n_iter_`` on the estimators).  A converged run warns nothing (checked with
every warning an error), nor one stopped by its caller."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning

from support.launch import env

import distnewton
from distnewton.convergence import NOT_CONVERGED, message
from distnewton.sklearn import DistNewtonClassifier, DistNewtonRegressor


def binary(n=300, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(X @ np.linspace(1, 2, d) + rng.standard_normal(n) > 0, 1.0, -1.0)
    return X, y


def three_classes(n=300, d=5, seed=1):
    X, _ = binary(n, d, seed)
    return X, np.digitize(X[:, 0] + 0.3 * X[:, 1], [-0.5, 0.5])


def config(algorithm="newton", **run):
    return {"model": {"loss": "logistic"}, "algorithm": {"name": algorithm}, "run": run}


def one_warning(record, category):
    """The one warning of ``category`` that ``record`` caught (and nothing else)."""
    assert [type(w.message) for w in record] and all(
        issubclass(w.category, category) for w in record), [str(w.message) for w in record]
    assert len(record) == 1
    return record[0]


# -- solve ---------------------------------------------------------------------------
def test_the_warning_is_exported_and_a_user_warning():
    assert issubclass(distnewton.ConvergenceWarning, UserWarning)
    assert "ConvergenceWarning" in distnewton.__all__


def test_solve_capped_at_two_rounds_warns_naming_status_rounds_and_key():
    with pytest.warns(distnewton.ConvergenceWarning) as record:
        res = distnewton.solve(config("gd", max_rounds=2), data=binary(), workers=2)
    w = one_warning(record, distnewton.ConvergenceWarning)
    assert (res.status, res.success) == ("max_rounds", False)
    text = str(w.message)
    assert text.startswith("gd failed to converge (status max_rounds) after "
                           f"{res.rounds} communication rounds")
    assert "Increase the number of communication rounds (run.max_rounds=2)" in text
    assert w.filename == __file__              # points at the call of solve


def test_solve_converged_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = distnewton.solve(config(max_rounds=100), data=binary(), workers=2)
    assert (res.status, res.success) == ("converged", True)


def test_solve_max_iterations_names_its_key():
    with pytest.warns(distnewton.ConvergenceWarning, match=r"status max_iterations.*"
                      r"\(run\.max_iterations=1\)"):
        res = distnewton.solve(config("gd", max_iterations=1), data=binary(), workers=2)
    assert res.status == "max_iterations" and res.iterations == 1


def test_solve_diverged_warns_with_the_runs_reason():
    with pytest.warns(distnewton.ConvergenceWarning) as record:
        res = distnewton.solve({**config("gd", max_rounds=200), "algorithm":
                                {"name": "gd", "step_size": 1e6},
                                "model": {"loss": "ridge", "lambda": 1e-3}},
                               data=(binary()[0], binary()[0] @ np.ones(5)), workers=2)
    assert res.status == "diverged"
    text = str(one_warning(record, distnewton.ConvergenceWarning).message)
    assert "(status diverged)" in text and res.message in text and "model.lambda" in text


def test_solve_stopped_by_a_callback_or_warn_false_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = distnewton.solve(config("gd", max_rounds=50), data=binary(), workers=2,
                               callback=lambda row: row["iteration"] >= 2)
        assert res.status == "stopped"
        res = distnewton.solve(config("gd", max_rounds=2), data=binary(), workers=2,
                               warn=False)
        assert res.status == "max_rounds"


def test_solve_one_vs_rest_names_the_classes_that_did_not_converge():
    cfg = {**config(max_rounds=3), "model": {"loss": "logistic", "multiclass": "ovr"}}
    with pytest.warns(distnewton.ConvergenceWarning) as record:
        res = distnewton.solve(cfg, data=three_classes(), workers=2)
    statuses = res.attrs["class_status"].split(",")
    bad = [s for s in statuses if s != "converged"]
    assert bad and res.status == bad[0]
    text = str(one_warning(record, distnewton.ConvergenceWarning).message)
    assert f"for {len(bad)} of 3 classes" in text and "class 0: max_rounds" in text


def test_the_advice_for_every_status_names_a_key():
    for status, key in zip(NOT_CONVERGED, ("run.max_rounds=7", "run.max_iterations",
                                           "run.grad_rtol", "model.lambda")):
        text = message("newton", [(None, status, 7, 3)], "why", limits={"max_rounds": 7})
        assert f"(status {status}) after 7 communication rounds and 3 iterations" in text
        assert key in text
    assert message("newton", [(None, "converged", 7, 3)]) is None
    assert message("newton", [(None, "stopped", 7, 3)]) is None


# -- the estimators ------------------------------------------------------------------
def test_classifier_capped_warns_sklearns_class_and_records_the_status():
    with pytest.warns(SklearnConvergenceWarning) as record:
        est = DistNewtonClassifier(algorithm="gd", max_rounds=2).fit(*binary())
    w = one_warning(record, SklearnConvergenceWarning)
    assert isinstance(w.message, distnewton.ConvergenceWarning)     # distnewton's too
    assert "Increase the number of communication rounds (max_rounds=2)" in str(w.message)
    assert w.filename == __file__
    assert est.status_.tolist() == ["max_rounds"] and est.converged_.tolist() == [False]
    assert est.n_iter_.shape == (1,) and est.rounds_[0] >= 2


def test_classifier_converged_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = DistNewtonClassifier().fit(*binary())
    assert est.status_.tolist() == ["converged"] and est.converged_.tolist() == [True]


def test_one_vs_rest_has_a_status_per_class():
    X, y = three_classes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = DistNewtonClassifier().fit(X, y)
    assert est.status_.tolist() == ["converged"] * 3 and est.converged_.all()
    with pytest.warns(SklearnConvergenceWarning, match="for 3 of 3 classes"):
        est = DistNewtonClassifier(algorithm="gd", max_rounds=2).fit(X, y)
    assert est.status_.tolist() == ["max_rounds"] * 3
    assert est.converged_.shape == est.n_iter_.shape == (3,) and not est.converged_.any()


def test_regressor_status_is_a_string_and_converged_a_bool():
    X, _ = binary()
    y = X @ np.ones(5)
    with pytest.warns(SklearnConvergenceWarning, match="max_rounds=2"):
        est = DistNewtonRegressor(algorithm="gd", max_rounds=2).fit(X, y)
    assert (est.status_, est.converged_) == ("max_rounds", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = DistNewtonRegressor().fit(X, y)
    assert (est.status_, est.converged_) == ("converged", True)


SCRIPT = textwrap.dedent("""
    import numpy as np
    from distnewton.sklearn import DistNewtonClassifier

    def test_fit():
        rng = np.random.default_rng(0)
        X = rng.standard_normal((200, 4))
        DistNewtonClassifier(algorithm="{algorithm}").fit(X, np.sign(X[:, 0] + X[:, 1]))
""")


def test_an_error_filter_on_sklearns_class_stops_a_fit_that_did_not_converge():
    X, y = binary()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SklearnConvergenceWarning)
        with pytest.raises(SklearnConvergenceWarning, match="max_rounds=2"):
            DistNewtonClassifier(algorithm="gd", max_rounds=2).fit(X, y)


@pytest.mark.slow
def test_W_error_on_sklearns_class_from_the_command_line(tmp_path):
    """``pytest -W error::sklearn.exceptions.ConvergenceWarning`` (``python -W`` cannot
    name a class of a third-party module: Python reads -W before it can import one,
    "Invalid -W option ignored"; docs/guide/python-api.md says so)."""
    flag = ["-W", "error::sklearn.exceptions.ConvergenceWarning"]
    for algorithm, outcome in (("gd", "1 failed"), ("newton", "1 passed")):
        test = tmp_path / f"test_fit_{algorithm}.py"            # gd: 200 rounds are too few
        test.write_text(SCRIPT.format(algorithm=algorithm))
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               *flag, str(test)], cwd=tmp_path, env=env(),
                              capture_output=True, text=True, timeout=300)
        assert outcome in done.stdout, done.stdout + done.stderr
        if algorithm == "gd":
            assert "ConvergenceWarning: gd failed to converge (status max_rounds)" in done.stdout
