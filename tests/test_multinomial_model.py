"""The trained multinomial model: the result file, predict / evaluate / report /
export, LIBLINEAR reading the export, the estimator, mpiexec and news20.

References: scikit-learn's multinomial LogisticRegression (its predict,
predict_proba and the metric functions), LIBLINEAR's own reader, numpy."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

import distnewton
from distnewton.data import write_libsvm
from distnewton.model import evaluate, load_model

from support.launch import cli, read_result, write_config
from support.models import liblinear_rows
from support.multinomial import CLASSES, four_classes, numpy_value

LAM = 1e-3


def inproc(*args):
    """``distnewton ARGS`` in this process (click's runner): (exit code, stdout)."""
    from click.testing import CliRunner
    from distnewton.cli import main
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res.exit_code, res.output


def config(train, name="newton", **extra):
    model = {"loss": "logistic", "lambda": LAM, "multiclass": "multinomial", **extra}
    return {"data": {"train": str(train)}, "model": model, "algorithm": {"name": name},
            "run": {"grad_rtol": 1e-11, "max_rounds": 200}}


def sklearn_ref(X, y, intercept=False, C=None):
    return LogisticRegression(C=C or 1.0 / (LAM * len(y)), fit_intercept=intercept,
                              tol=1e-13, max_iter=20000).fit(X, y)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A file-trained model with a free intercept and a test set (and sklearn's)."""
    tmp = tmp_path_factory.mktemp("mn")
    X, y = four_classes(n=800)
    Xt, yt = four_classes(n=300, seed=3)
    write_libsvm(tmp / "train.svm", sp.csr_matrix(X), y)
    write_libsvm(tmp / "test.svm", sp.csr_matrix(Xt), yt)
    cfg = config(tmp / "train.svm", fit_intercept=True, regularize_intercept=False)
    cfg["data"]["test"] = str(tmp / "test.svm")
    res = distnewton.solve(cfg, workers=3, output=tmp / "r.h5")
    return tmp, res, sklearn_ref(X, y, intercept=True), (X, y, Xt, yt)


def test_result_file_layout_and_history(trained):
    tmp, res, _, (X, y, Xt, yt) = trained
    attrs, hist, W = read_result(tmp / "r.h5")
    assert W.shape == (4, X.shape[1] + 1)
    assert attrs["multiclass"] == "multinomial" and list(attrs["classes"]) == list(CLASSES)
    assert attrs["n_features"] == X.shape[1] + 1
    assert "class_index" not in hist and res.status == "converged"
    assert np.all(np.diff(hist["comm_rounds"]) >= 0)
    # the history's test columns: the argmax's accuracy and the mean softmax log loss
    b, Wc = W[:, -1], W[:, :-1]
    idx = np.searchsorted(CLASSES, yt)
    assert hist["test_accuracy"][-1] == pytest.approx(
        np.mean(np.argmax(Xt @ Wc.T + b, axis=1) == idx), abs=1e-15)
    assert hist["test_loss"][-1] == pytest.approx(
        numpy_value(Wc, b, Xt, idx, np.ones(len(yt)), 0.0), rel=1e-12)
    assert abs(b.sum()) <= 1e-10                     # the intercepts' sum kept at zero


@pytest.mark.slow          # three distnewton processes
def test_predict_and_evaluate_are_sklearns(trained):
    tmp, _, ref, (_, _, Xt, yt) = trained
    out = cli("predict", tmp / "r.h5", tmp / "test.svm")
    assert out.returncode == 0, out.stderr
    np.testing.assert_array_equal(np.array(out.stdout.split(), dtype=float), ref.predict(Xt))
    proba = cli("predict", tmp / "r.h5", tmp / "test.svm", "--proba")
    P = np.loadtxt(proba.stdout.splitlines())
    np.testing.assert_allclose(P, ref.predict_proba(Xt), rtol=0, atol=1e-6)
    _, _, m, _ = evaluate(load_model(tmp / "r.h5"), tmp / "test.svm")
    assert m["accuracy"] == pytest.approx(np.mean(ref.predict(Xt) == yt), abs=1 / 300)
    assert m["log_loss"] == pytest.approx(log_loss(yt, ref.predict_proba(Xt)), rel=1e-5)
    res = cli("evaluate", tmp / "r.h5", tmp / "test.svm")
    assert res.returncode == 0 and "log_loss" in res.stdout


def test_report_computes_the_multinomial_f_star(trained):
    tmp, res, ref, (X, y, _, _) = trained
    code, text = inproc("report", tmp / "r.h5", "--format", "json")
    assert code == 0, text
    row = json.loads(text)[0]
    f_ref = numpy_value(ref.coef_, ref.intercept_, X, np.searchsorted(CLASSES, y),
                        np.ones(len(y)), LAM)
    assert row["f_star"] == pytest.approx(f_ref, rel=1e-9)
    assert row["rel_subopt"] is not None and row["rel_subopt"] <= 1e-9
    assert row["rounds"] == res.rounds


def test_export_json_and_liblinear_layout(trained):
    tmp, res, _, _ = trained
    assert inproc("export", tmp / "r.h5", "-o", tmp / "m.json", "--format", "json")[0] == 0
    a = json.loads((tmp / "m.json").read_text())
    assert a["multiclass"] == "multinomial" and a["labels"] == list(CLASSES)
    np.testing.assert_array_equal(np.array(a["w"]), res.w[:, :-1])
    np.testing.assert_array_equal(np.array(a["intercept"]), res.w[:, -1])
    assert inproc("export", tmp / "r.h5", "-o", tmp / "m.model", "--format",
                  "liblinear")[0] == 0
    lines = (tmp / "m.model").read_text().splitlines()
    assert lines[:5] == ["solver_type L2R_LR", "nr_class 4", "label 2 5 7 9",
                         f"nr_feature {res.w.shape[1] - 1}", "bias 1"]
    rows = np.array([[float(v) for v in line.split()] for line in lines[6:]])
    np.testing.assert_array_equal(rows, res.w.T)     # one line per feature, C columns


@pytest.mark.parametrize("classes", [4, 2])
def test_liblinear_predicts_the_labels_of_the_export(tmp_path, classes):
    """LIBLINEAR's reader: the same labels (the argmax); with two classes also the
    same probabilities (w_2 - w_1 in the binary layout); with more its -b 1
    normalises per-class sigmoids (documented), so only the labels are compared."""
    liblinear = pytest.importorskip("liblinear.liblinearutil",
                                    reason="pip install liblinear-official (extra test)")
    X, y = four_classes(n=500)
    if classes == 2:
        keep = np.isin(y, CLASSES[:2])
        X, y = X[keep], y[keep]
    write_libsvm(tmp_path / "t.svm", sp.csr_matrix(X), y)
    distnewton.solve(config(tmp_path / "t.svm", fit_intercept=True), workers=2,
                     output=tmp_path / "r.h5")
    assert inproc("export", tmp_path / "r.h5", "-o", tmp_path / "m.model", "--format",
                  "liblinear")[0] == 0
    m = liblinear.load_model(str(tmp_path / "m.model"))
    labels, _, probs = liblinear.predict(list(y), liblinear_rows(X), m, "-q -b 1")
    model = load_model(tmp_path / "r.h5")
    np.testing.assert_array_equal(np.array(labels), model.predict(X))
    if classes == 2:
        order = [int(v) for v in (tmp_path / "m.model").read_text()
                 .split("label ", 1)[1].split("\n", 1)[0].split()]
        P = model.proba(X)
        cols = [list(CLASSES[:2]).index(c) for c in order]
        np.testing.assert_allclose(np.array(probs), P[:, cols], rtol=0, atol=1e-12)


def test_estimator_multinomial_is_sklearns(tmp_path):
    from distnewton.sklearn import DistNewtonClassifier
    X, y = four_classes(n=400)
    labels = np.array(["a", "b", "c", "d"])[np.searchsorted(CLASSES, y)]
    est = DistNewtonClassifier(multi_class="multinomial", lam=1e-2,
                               regularize_intercept=False).fit(X, labels)
    ref = LogisticRegression(C=1.0 / (1e-2 * len(y)), tol=1e-13, max_iter=20000).fit(X, labels)
    assert est.coef_.shape == (4, X.shape[1]) and list(est.classes_) == list("abcd")
    np.testing.assert_allclose(est.predict_proba(X), ref.predict_proba(X), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))
    assert est.n_iter_.shape == (1,) and est.converged_.all()
    # two classes: one row w_2 - w_1; the 2-class softmax with lam is the binary
    # logistic loss with lam / 2 (W_1 = -W_2 at the optimum): scikit-learn's C doubles
    keep = np.isin(labels, ["a", "b"])
    est2 = DistNewtonClassifier(multi_class="multinomial", lam=1e-2,
                                regularize_intercept=False).fit(X[keep], labels[keep])
    ref2 = LogisticRegression(C=2.0 / (1e-2 * keep.sum()), tol=1e-13,
                              max_iter=20000).fit(X[keep], labels[keep])
    assert est2.coef_.shape == (1, X.shape[1])
    np.testing.assert_allclose(est2.predict_proba(X), ref2.predict_proba(X), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="multi_class"):
        DistNewtonClassifier(multi_class="softmax").fit(X, labels)


def test_estimator_balanced_class_weight_is_sklearns():
    from distnewton.sklearn import DistNewtonClassifier
    X, y = four_classes(n=400)
    keep = (y != 9) | (np.arange(len(y)) % 4 == 0)      # class 9 rare
    X, y = X[keep], y[keep]
    est = DistNewtonClassifier(multi_class="multinomial", lam=1e-2, fit_intercept=False,
                               class_weight="balanced").fit(X, y)
    ref = LogisticRegression(C=1.0 / (1e-2 * len(y)), fit_intercept=False, tol=1e-13,
                             max_iter=20000, class_weight="balanced").fit(X, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_estimator_passes_check_estimator():
    import warnings
    from sklearn.utils.estimator_checks import check_estimator
    from distnewton.sklearn import DistNewtonClassifier
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(DistNewtonClassifier(multi_class="multinomial"), on_fail=None)
    bad = [(r["check_name"], str(r["exception"])[:200]) for r in results
           if r["status"] != "passed" and r["check_name"] != "check_array_api_input"]
    assert not bad and len(results) > 40


@pytest.mark.slow
@pytest.mark.mpi
def test_mpiexec_gives_the_sim_model_and_counts(tmp_path):
    X, y = four_classes(n=600)
    write_libsvm(tmp_path / "t.svm", sp.csr_matrix(X), y)
    for name in ("newton", "giant"):
        cfg = config(tmp_path / "t.svm", name, fit_intercept=True, regularize_intercept=False)
        out = tmp_path / f"{name}.h5"
        res = cli("run", write_config(tmp_path / "c.yaml", **cfg), "-o", out, "-q", n=3)
        assert res.returncode == 0, res.stderr
        sim = distnewton.solve(cfg, workers=2)
        attrs, hist, W = read_result(out)
        assert attrs["multiclass"] == "multinomial" and W.shape == sim.w.shape
        assert np.linalg.norm(W - sim.w) <= 1e-10 * np.linalg.norm(sim.w)
        np.testing.assert_array_equal(hist["bytes_up"], sim.history["bytes_up"])
        np.testing.assert_array_equal(hist["comm_rounds"], sim.history["comm_rounds"])
        ref = sklearn_ref(X, y, intercept=True)
        idx = np.searchsorted(CLASSES, y)
        ours = numpy_value(W[:, :-1], W[:, -1], X, idx, np.ones(len(y)), LAM)
        theirs = numpy_value(ref.coef_, ref.intercept_, X, idx, np.ones(len(y)), LAM)
        assert (ours - theirs) / theirs <= 1e-8


@pytest.mark.data(reason="news20 (20 classes, 15,935 x 62,061)")
def test_news20_newton_cg_reaches_sklearns_optimum():
    """news20's 20 classes, every row, scaled to unit length (the raw term counts,
    up to 549, make scikit-learn's lbfgs need minutes), lambda = 1e-4: d C = 1.24
    million weights, so ``solver: auto`` takes Hessian-free CG (a dense Hessian
    would be 12 TB); the optimum within 1e-8 of scikit-learn's (14 s in all on an idle
    machine, up to a minute on a loaded one)."""
    from sklearn.datasets import load_svmlight_file
    from sklearn.preprocessing import normalize
    from support.launch import SHARED
    X, y = load_svmlight_file(str(SHARED / "news20.bz2"))
    X, lam = normalize(X.tocsr()), 1e-4
    res = distnewton.solve({"model": {"lambda": lam, "multiclass": "multinomial"},
                            "algorithm": {"name": "newton"},
                            "run": {"grad_rtol": 1e-9, "max_rounds": 300}},
                           data=(X, y), workers=2, warn=False)
    assert res.status == "converged" and res.w.shape == (20, 62061)
    ref = LogisticRegression(C=1.0 / (lam * len(y)), fit_intercept=False, tol=1e-12,
                             max_iter=5000).fit(X, y)
    classes = np.unique(y)
    idx = np.searchsorted(classes, y)
    ours = numpy_value(res.w, 0.0, X, idx, np.ones(len(y)), lam)
    theirs = numpy_value(ref.coef_, 0.0, X, idx, np.ones(len(y)), lam)
    assert (ours - theirs) / theirs <= 1e-8
    assert np.mean(np.asarray(X @ res.w.T).argmax(axis=1) == idx) == pytest.approx(
        np.mean(ref.predict(X) == y), abs=2e-3)


@pytest.mark.parametrize("fmt", ["csv", "npy"])
def test_other_input_formats_train_the_same_model(tmp_path, fmt):
    """A CSV (label column first, a header) or .npy table of the same rows: the same
    classes and scikit-learn's optimum, and predict reads that format back."""
    X, y = four_classes(n=300)
    M = np.column_stack([y, X])
    path = tmp_path / f"t.{fmt}"
    if fmt == "csv":
        np.savetxt(path, M, delimiter=",", fmt="%.17g", comments="",
                   header=",".join(["label"] + [f"f{j}" for j in range(X.shape[1])]))
    else:
        np.save(path, M)
    res = distnewton.solve(config(path), workers=2, output=tmp_path / "r.h5")
    assert list(res.attrs["classes"]) == list(CLASSES)
    ref = sklearn_ref(X, y)
    idx = np.searchsorted(CLASSES, y)
    ours = numpy_value(res.w, 0.0, X, idx, np.ones(len(y)), LAM)
    theirs = numpy_value(ref.coef_, 0.0, X, idx, np.ones(len(y)), LAM)
    assert (ours - theirs) / theirs <= 1e-8
    model = load_model(tmp_path / "r.h5")
    _, _, m, _ = evaluate(model, path)
    assert m["accuracy"] == pytest.approx(np.mean(ref.predict(X) == y), abs=1 / 300)
