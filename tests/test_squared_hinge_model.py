"""The trained L2-loss SVM (``model.loss: squared_hinge``): predict, evaluate and the
LIBLINEAR export (LIBLINEAR loads it and predicts the same labels and decision values)
against scikit-learn's LinearSVC, ``--proba`` refused, one-vs-rest against LinearSVC's,
and the estimator ``DistNewtonSVC`` against LinearSVC and ``check_estimator``."""

import json
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import distnewton
from distnewton.data import write_libsvm
from distnewton.errors import UserError

from support.models import invoke, liblinear_rows
from support.squared_hinge import svm_objective

# -- the trained model: predict, evaluate, export ----------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An SVM with an intercept on labels 3/7, trained from a file; a test file."""
    from support.models import labelled
    tmp = tmp_path_factory.mktemp("svm")
    X, y = labelled(tmp / "train.svm", n=300, seed=2)
    Xt, yt = labelled(tmp / "test.svm", n=150, seed=9)
    res = distnewton.solve({"data": {"train": str(tmp / "train.svm")},
                            "model": {"loss": "squared_hinge", "fit_intercept": True},
                            "algorithm": {"name": "newton"}, "run": {"grad_rtol": 1e-12}},
                           workers=3, output=tmp / "r.h5")
    assert res.status == "converged"
    return tmp, X, y, Xt, yt, res


def test_the_model_is_linearsvcs_and_predicts_its_labels(trained):
    from sklearn.svm import LinearSVC
    tmp, X, y, Xt, yt, res = trained
    svc = LinearSVC(C=1.0, tol=1e-12, max_iter=100000).fit(X, y)   # lambda = 1/n, bias 1
    w_svc = np.append(svc.coef_.ravel(), svc.intercept_)
    Xb, ypm = np.column_stack((X, np.ones(len(y)))), np.where(y == 7, 1.0, -1.0)
    f_svc = svm_objective(Xb, ypm, w_svc, 1 / len(y))
    assert abs(svm_objective(Xb, ypm, res.w, 1 / len(y)) - f_svc) <= 1e-8 * f_svc
    out = invoke("predict", tmp / "r.h5", tmp / "test.svm")
    assert out.exit_code == 0, out.output
    np.testing.assert_array_equal(np.array(out.stdout.split(), dtype=float), svc.predict(Xt))
    dec = np.array(invoke("predict", tmp / "r.h5", tmp / "test.svm", "--decision")
                   .stdout.split(), dtype=float)
    np.testing.assert_allclose(dec, svc.decision_function(Xt), rtol=0, atol=1e-6)


def test_proba_is_refused_in_one_line(trained):
    tmp = trained[0]
    res = invoke("predict", tmp / "r.h5", tmp / "test.svm", "--proba")
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [f"distnewton: error: --proba: only for logistic models "
                                     f"({tmp / 'r.h5'} is squared_hinge: an SVM has no "
                                     "probabilities; use --decision)"]
    from distnewton.model import load_model
    with pytest.raises(UserError, match="no probabilities"):
        load_model(tmp / "r.h5").proba(trained[3])


def test_evaluate_gives_accuracy_squared_hinge_and_auc(trained):
    from sklearn.metrics import accuracy_score, roc_auc_score
    tmp, _, _, Xt, yt, res = trained
    out = invoke("evaluate", tmp / "r.h5", tmp / "test.svm", "--format", "json")
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    z = Xt @ res.w[:-1] + res.w[-1]
    t = np.where(yt == 7, 1.0, -1.0)
    assert got["loss"] == "squared_hinge" and got["n_samples"] == 150
    assert got["accuracy"] == pytest.approx(accuracy_score(t, np.where(z > 0, 1, -1)))
    assert got["squared_hinge"] == pytest.approx(np.mean(np.maximum(0, 1 - t * z) ** 2),
                                                 rel=1e-12)
    assert got["auc"] == pytest.approx(roc_auc_score(t, z), rel=1e-12)
    assert "log_loss" not in got


def test_liblinear_export_is_l2r_l2loss_svc_and_liblinear_predicts_the_same(trained):
    liblinear = pytest.importorskip("liblinear.liblinearutil",
                                    reason="pip install liblinear-official (extra test)")
    tmp, _, _, Xt, yt, res = trained
    out = invoke("export", tmp / "r.h5", "-o", tmp / "m.model", "--overwrite")
    assert out.exit_code == 0, out.output
    text = (tmp / "m.model").read_text()
    assert text.startswith("solver_type L2R_L2LOSS_SVC\nnr_class 2\nlabel 7 3\n")
    assert "bias 1\n" in text
    m = liblinear.load_model(str(tmp / "m.model"))
    labels, _, dec = liblinear.predict(list(yt), liblinear_rows(Xt), m, "-q")
    ours = np.array(invoke("predict", tmp / "r.h5", tmp / "test.svm").stdout.split(), float)
    np.testing.assert_array_equal(np.array(labels), ours)
    np.testing.assert_allclose(np.array(dec).ravel(), Xt @ res.w[:-1] + res.w[-1],
                               rtol=1e-13, atol=1e-13)
    out = invoke("export", tmp / "r.h5", "-o", tmp / "m.json", "--format", "json")
    assert json.loads((tmp / "m.json").read_text())["objective"] == "squared_hinge"


# -- the estimator -----------------------------------------------------------------


def test_estimator_equals_linearsvc_and_has_no_probabilities():
    from sklearn.svm import LinearSVC
    from distnewton.sklearn import DistNewtonSVC
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    y = np.array(["a", "b", "c"])[np.argmax(X @ rng.standard_normal((5, 3)), axis=1)]
    est = DistNewtonSVC(tol=1e-14).fit(X, y)
    svc = LinearSVC(C=1.0, tol=1e-12, max_iter=100000).fit(X, y)   # one-vs-rest too
    np.testing.assert_allclose(est.coef_, svc.coef_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(est.intercept_, svc.intercept_, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(est.predict(X), svc.predict(X))
    assert not hasattr(est, "predict_proba") and not hasattr(est, "predict_log_proba")
    assert est.converged_.all()


@pytest.mark.slow
def test_estimator_passes_sklearns_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator
    from distnewton.sklearn import DistNewtonSVC
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(DistNewtonSVC(), on_fail=None)
    bad = [(r["check_name"], r["status"], str(r["exception"])[:200]) for r in results
           if r["status"] != "passed" and r["check_name"] != "check_array_api_input"]
    assert not bad
    assert len(results) > 40


# -- one-vs-rest -----------------------------------------------------------------------


def test_ovr_svm_is_linearsvcs_one_vs_rest_and_liblinear_reads_it(tmp_path):
    """Four classes with labels 2, 5, 7, 9: each row of /model/w is LinearSVC's
    class-vs-rest optimum (LIBLINEAR -s 2 per class, C = 1/(lambda n)); predict,
    evaluate and the LIBLINEAR export follow."""
    from sklearn.metrics import accuracy_score
    from sklearn.svm import LinearSVC
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 8)) * (rng.random((600, 8)) < 0.7)
    W = 1.5 * rng.standard_normal((4, 8))
    y = np.array([2.0, 5, 7, 9])[np.argmax(X @ W.T + rng.gumbel(size=(600, 4)), axis=1)]
    write_libsvm(tmp_path / "t.svm", sp.csr_matrix(X), y)
    lam = 1e-3
    res = distnewton.solve({"data": {"train": str(tmp_path / "t.svm")},
                            "model": {"loss": "squared_hinge", "lambda": lam,
                                      "multiclass": "ovr"},
                            "algorithm": {"name": "newton"}, "run": {"grad_rtol": 1e-12}},
                           workers=3, output=tmp_path / "r.h5")
    assert res.status == "converged" and res.w.shape == (4, 8)
    svc = LinearSVC(C=1 / (lam * 600), fit_intercept=False, tol=1e-12,
                    max_iter=100000).fit(X, y)
    for i, c in enumerate(svc.classes_):
        t = np.where(y == c, 1.0, -1.0)
        f_svc = svm_objective(X, t, svc.coef_[i], lam)
        assert abs(svm_objective(X, t, res.w[i], lam) - f_svc) <= 1e-8 * f_svc
    out = invoke("predict", tmp_path / "r.h5", tmp_path / "t.svm")
    ours = np.array(out.stdout.split(), dtype=float)
    assert accuracy_score(svc.predict(X), ours) >= 0.99      # argmax ties aside
    np.testing.assert_array_equal(ours, np.array([2.0, 5, 7, 9])[np.argmax(X @ res.w.T, 1)])
    got = json.loads(invoke("evaluate", tmp_path / "r.h5", tmp_path / "t.svm", "--format",
                            "json").stdout)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, ours))
    T = np.where(y[:, None] == np.array([2.0, 5, 7, 9]), 1.0, -1.0)
    assert got["squared_hinge"] == pytest.approx(
        np.mean(np.maximum(0, 1 - T * (X @ res.w.T)) ** 2), rel=1e-12)
    assert invoke("predict", tmp_path / "r.h5", tmp_path / "t.svm", "--proba").exit_code == 2
    liblinear = pytest.importorskip("liblinear.liblinearutil",
                                    reason="pip install liblinear-official (extra test)")
    assert invoke("export", tmp_path / "r.h5", "-o", tmp_path / "m.model").exit_code == 0
    assert (tmp_path / "m.model").read_text().startswith(
        "solver_type L2R_L2LOSS_SVC\nnr_class 4\nlabel 2 5 7 9\n")
    m = liblinear.load_model(str(tmp_path / "m.model"))
    labels, _, _ = liblinear.predict(list(y), liblinear_rows(X), m, "-q")
    np.testing.assert_array_equal(np.array(labels), ours)
