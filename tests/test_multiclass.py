"""``model.multiclass: ovr``: one binary problem per class on the same shards.

Checked against scikit-learn's OneVsRestClassifier(LogisticRegression) optimum
and its predict / predict_proba / metric functions, against LIBLINEAR reading the
exported file, and against the binary runs of ``data.positive_labels: [c]``;
mpiexec gives the sim backend's models and counts; bad combinations exit 2."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.multiclass import OneVsRestClassifier

import distnewton
from distnewton.data import write_libsvm
from distnewton.model import evaluate, load_model

from support.launch import cli, own_lines, read_result, write_config
from support.models import liblinear_rows

CLASSES = (2, 5, 7, 9)          # raw labels that are not 0..C-1: the map must be used


def four_classes(path, n=1200, d=12, seed=0):
    """Rows from a softmax model of 4 classes (labels CLASSES), sparse-ish."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * (rng.random((n, d)) < 0.6)
    W = 1.5 * np.random.default_rng(100).standard_normal((len(CLASSES), d))
    y = np.asarray(CLASSES, dtype=float)[np.argmax(X @ W.T + rng.gumbel(size=(n, 4)), axis=1)]
    write_libsvm(path, sp.csr_matrix(X), y)
    return X, y


def config(tmp_path, train, name="newton", **model):
    return {"data": {"train": str(train)},
            "model": {"loss": "logistic", "lambda": 1e-3, "multiclass": "ovr", **model},
            "algorithm": {"name": name},
            "run": {"grad_rtol": 1e-11, "max_rounds": 200}}


def sklearn_ovr(X, y, lam, intercept=False):
    """The same objective per class: C = 1/(lambda n); with an intercept scikit-learn
    leaves it unpenalised (model.regularize_intercept: false)."""
    base = LogisticRegression(C=1.0 / (lam * len(y)), fit_intercept=intercept, tol=1e-12,
                              solver="lbfgs", max_iter=5000)
    return OneVsRestClassifier(base).fit(X, y)


@pytest.mark.parametrize("intercept", [False, True])
def test_ovr_models_are_sklearns_one_vs_rest_optimum(tmp_path, intercept):
    train = tmp_path / "four.svm"
    X, y = four_classes(train)
    extra = {"fit_intercept": True, "regularize_intercept": False} if intercept else {}
    res = distnewton.solve(config(tmp_path, train, **extra), workers=3,
                           output=tmp_path / "r.h5")
    assert res.status == "converged" and res.w.shape == (4, 12 + intercept)
    ref = sklearn_ovr(X, y, 1e-3, intercept)
    assert list(ref.classes_) == list(CLASSES)
    for i, est in enumerate(ref.estimators_):
        # both are second-order accurate optima of the same strictly convex problem
        # (||grad|| <= 1e-11 relative here, lbfgs tol 1e-12): agreement to 1e-6 relative
        want = np.append(est.coef_.ravel(), est.intercept_) if intercept else est.coef_.ravel()
        np.testing.assert_allclose(res.w[i], want, rtol=0, atol=1e-6 * np.abs(want).max())
    model = load_model(tmp_path / "r.h5")
    assert model.classes == list(CLASSES)
    np.testing.assert_array_equal(model.predict(X), ref.predict(X))
    np.testing.assert_allclose(model.proba(X), ref.predict_proba(X), rtol=0, atol=1e-6)


def test_history_and_counts_add_up_class_by_class(tmp_path):
    """The C runs' rows one after another, counters continuing; each class's run is
    the binary run of data.positive_labels: [c] (same weights, rounds and bytes)."""
    train = tmp_path / "four.svm"
    four_classes(train)
    cfg = config(tmp_path, train)
    distnewton.solve(cfg, workers=3, output=tmp_path / "r.h5")
    attrs, hist, W = read_result(tmp_path / "r.h5")
    assert attrs["multiclass"] == "ovr" and list(attrs["classes"]) == list(CLASSES)
    idx = hist["class_index"]
    assert list(np.unique(idx)) == [0, 1, 2, 3] and np.all(np.diff(idx) >= 0)
    assert hist["comm_rounds"][-1] == attrs["class_rounds"].sum()
    assert hist["bytes_up"][-1] == attrs["class_bytes_up"].sum()
    assert np.all(np.diff(hist["comm_rounds"]) >= 0) and np.all(np.diff(hist["wall_time"]) >= 0)
    for i, c in enumerate(CLASSES):
        binary = {**cfg, "model": {"loss": "logistic", "lambda": 1e-3},
                  "data": {**cfg["data"], "positive_labels": [c]}}
        one = distnewton.solve(binary, workers=3)
        np.testing.assert_array_equal(W[i], one.w)                       # bit for bit
        assert attrs["class_rounds"][i] == one.rounds
        assert attrs["class_bytes_down"][i] == one.bytes_down
        assert attrs["class_status"].split(",")[i] == one.status
        assert np.sum(idx == i) == len(one.history["iteration"])


def test_predict_evaluate_and_the_test_set_metrics(tmp_path):
    train, test = tmp_path / "four.svm", tmp_path / "four.t.svm"
    four_classes(train)
    Xt, yt = four_classes(test, n=500, seed=3)
    cfg = config(tmp_path, train)
    cfg["data"]["test"] = str(test)
    res = distnewton.solve(cfg, workers=2, output=tmp_path / "r.h5")
    ref = sklearn_ovr(*four_classes(tmp_path / "again.svm"), 1e-3)
    P = ref.predict_proba(Xt)
    out = cli("predict", tmp_path / "r.h5", test)
    assert out.returncode == 0, out.stderr
    np.testing.assert_array_equal(np.array(out.stdout.split(), dtype=float), ref.predict(Xt))
    proba = cli("predict", tmp_path / "r.h5", test, "--proba")
    np.testing.assert_allclose(np.loadtxt(proba.stdout.splitlines()), P, rtol=0, atol=1e-6)
    _, _, m, _ = evaluate(load_model(tmp_path / "r.h5"), test)
    assert m["accuracy"] == pytest.approx(float(np.mean(ref.predict(Xt) == yt)), abs=1 / 500)
    assert m["log_loss"] == pytest.approx(log_loss(yt, P, labels=list(CLASSES)), rel=1e-5)
    assert m["auc"] == pytest.approx(roc_auc_score(yt, P, multi_class="ovr"), rel=1e-5)
    assert res.attrs["test_accuracy"] == pytest.approx(m["accuracy"], abs=1e-15)


@pytest.mark.parametrize("classes", [4, 2])
def test_liblinear_reads_the_exported_ovr_model(tmp_path, classes):
    liblinear = pytest.importorskip("liblinear.liblinearutil",
                                    reason="pip install liblinear-official (extra test)")
    train = tmp_path / "four.svm"
    X, y = four_classes(train)
    if classes == 2:                          # two classes: LIBLINEAR's binary layout
        keep = np.isin(y, CLASSES[:2])
        X, y = X[keep], y[keep]
        write_libsvm(train, sp.csr_matrix(X), y)
    distnewton.solve(config(tmp_path, train), workers=2, output=tmp_path / "r.h5")
    out = cli("export", tmp_path / "r.h5", "-o", tmp_path / "m.model", "--format", "liblinear")
    assert out.returncode == 0, out.stderr
    assert f"nr_class {classes}" in (tmp_path / "m.model").read_text()
    m = liblinear.load_model(str(tmp_path / "m.model"))
    labels, _, dec = liblinear.predict(list(y), liblinear_rows(X), m, "-q")
    ours = load_model(tmp_path / "r.h5").predict(X)
    np.testing.assert_array_equal(np.array(labels), ours)
    # `predict --decision`: one column per class (our classes' order) against
    # LIBLINEAR's decision values, in the label order of its model file
    out = cli("predict", tmp_path / "r.h5", train, "--decision")
    assert out.returncode == 0, out.stderr
    Z = np.loadtxt(out.stdout.splitlines(), ndmin=2)
    order = [float(v) for v in (tmp_path / "m.model").read_text()
             .split("label ", 1)[1].split("\n", 1)[0].split()]
    ours_classes = [float(c) for c in CLASSES[:classes]]
    dec = np.array(dec)
    if classes == 2:                          # one w = (w_2 - w_1)/2 for the first label
        first = ours_classes.index(order[0])
        second = 1 - first
        np.testing.assert_allclose(dec[:, 0], (Z[:, first] - Z[:, second]) / 2,
                                   rtol=1e-12, atol=1e-12)
    else:
        cols = [order.index(c) for c in ours_classes]
        np.testing.assert_allclose(Z, dec[:, cols], rtol=1e-12, atol=1e-12)


def test_ovr_decision_values_equal_sklearns_decision_function(tmp_path):
    """``predict --decision`` of a one-vs-rest model: one column per class in the
    sorted label order, scikit-learn's decision_function of a LogisticRegression
    holding the same coef_ / intercept_, to 1e-12; its argmax is the label."""
    train, test = tmp_path / "four.svm", tmp_path / "four.t.svm"
    four_classes(train)
    Xt, _ = four_classes(test, n=300, seed=5)
    cfg = config(tmp_path, train, fit_intercept=True)
    res = distnewton.solve(cfg, workers=2, output=tmp_path / "r.h5")
    clf = LogisticRegression().fit(np.eye(4, 12), list(CLASSES))
    clf.coef_, clf.intercept_ = res.w[:, :12].copy(), res.w[:, 12].copy()
    out = cli("predict", tmp_path / "r.h5", test, "--decision")
    assert out.returncode == 0, out.stderr
    Z = np.loadtxt(out.stdout.splitlines())
    assert Z.shape == (300, 4)
    np.testing.assert_allclose(Z, clf.decision_function(Xt), rtol=1e-12, atol=1e-12)
    labels = np.array(cli("predict", tmp_path / "r.h5", test).stdout.split(), dtype=float)
    np.testing.assert_array_equal(labels, np.asarray(CLASSES, dtype=float)[Z.argmax(axis=1)])


@pytest.mark.slow
@pytest.mark.mpi
def test_mpiexec_gives_the_sim_models_and_counts(tmp_path):
    train = tmp_path / "four.svm"
    four_classes(train)
    cfg = config(tmp_path, train)
    path = write_config(tmp_path / "c.yaml", **cfg)
    res = cli("run", path, "-o", tmp_path / "mpi.h5", "-q", n=4)
    assert res.returncode == 0, res.stderr
    sim = distnewton.solve(cfg, workers=3)
    attrs, hist, W = read_result(tmp_path / "mpi.h5")
    # the reductions sum in another order than sim's loop: rounding-level only
    assert np.linalg.norm(W - sim.w) <= 1e-12 * np.linalg.norm(sim.w)
    np.testing.assert_array_equal(attrs["class_rounds"], sim.attrs["class_rounds"])
    np.testing.assert_array_equal(hist["bytes_up"], sim.history["bytes_up"])
    assert attrs["eval_rounds"] == sim.attrs["eval_rounds"]


@pytest.mark.parametrize("extra, key", [
    ({"data": {"positive_labels": [2]}}, "data.positive_labels"),
    ({"model": {"loss": "ridge"}}, "model.loss"),
    ({"model": {"class_weight": "balanced"}}, "model.class_weight"),
    ({"run": {"checkpoint_every": 5}}, "run.checkpoint_every"),
])
def test_combinations_ovr_does_not_support_exit_2_naming_the_key(tmp_path, extra, key):
    train = tmp_path / "four.svm"
    four_classes(train, n=100)
    cfg = config(tmp_path, train)
    for section, values in extra.items():
        cfg[section] = {**cfg[section], **values}
    res = cli("run", write_config(tmp_path / "c.yaml", **cfg), "--backend", "sim",
              "-o", tmp_path / "r.h5")
    assert res.returncode == 2
    lines = own_lines(res.stderr)
    assert len(lines) == 1 and key in lines[0]
    assert not (tmp_path / "r.h5").exists()


def test_a_test_label_outside_the_training_classes_is_exit_2(tmp_path):
    train, test = tmp_path / "four.svm", tmp_path / "t.svm"
    four_classes(train, n=100)
    write_libsvm(test, sp.csr_matrix(np.ones((3, 12))), np.array([2.0, 4.0, 9.0]))
    cfg = config(tmp_path, train)
    cfg["data"]["test"] = str(test)
    res = cli("run", write_config(tmp_path / "c.yaml", **cfg), "--backend", "sim",
              "-o", tmp_path / "r.h5")
    assert res.returncode == 2 and "t.svm" in res.stderr and "[4]" in res.stderr
    distnewton.solve(config(tmp_path, train), workers=2, output=tmp_path / "ok.h5")
    res = cli("evaluate", tmp_path / "ok.h5", test)
    assert res.returncode == 2 and "[4]" in res.stderr


def test_report_shows_the_argmax_accuracy_and_no_f_star(tmp_path):
    import json
    train = tmp_path / "four.svm"
    X, y = four_classes(train)
    cfg = config(tmp_path, train)
    cfg["data"]["test"] = str(train)
    res = distnewton.solve(cfg, workers=2, output=tmp_path / "r.h5")
    out = cli("report", tmp_path / "r.h5", "--format", "json")
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)[0]
    assert row["rel_subopt"] is None and "one-vs-rest" in row["f_star_source"]
    pred = load_model(tmp_path / "r.h5").predict(X)
    assert row["test_accuracy"] == pytest.approx(np.mean(pred == y), abs=1e-15)
    assert row["rounds"] == res.attrs["class_rounds"].sum()
