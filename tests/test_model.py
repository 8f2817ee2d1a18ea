"""The trained model: ``distnewton predict`` / ``evaluate`` against scikit-learn's
LogisticRegression with the same weights, the label map back to the training
labels, the intercept, the feature count, the metrics, and their errors."""

import json

import numpy as np
import pytest

import distnewton
from distnewton.data import write_libsvm

from support.launch import cli, write_config
from support.models import D, invoke, labelled, liblinear_rows


def fit(tmp_path, name="r.h5", loss="logistic", intercept=True, **model):
    train = tmp_path / f"train-{loss}.svm"
    X, y = labelled(train, loss=loss)
    res = distnewton.solve({"data": {"train": str(train)},
                            "model": {"loss": loss, "fit_intercept": intercept, **model},
                            "algorithm": {"name": "newton"}, "run": {"max_rounds": 40}},
                           workers=3, output=tmp_path / name)
    assert res.status == "converged"
    return tmp_path / name, X, y, res


def sklearn_twin(w, d, intercept, classes):
    """scikit-learn's LogisticRegression holding w (fitted once on dummy rows to
    initialise it, then coef_ / intercept_ / classes_ overwritten)."""
    from sklearn.linear_model import LogisticRegression
    clf = LogisticRegression().fit(np.eye(2, d), [0, 1])
    clf.coef_ = np.asarray(w[:d], dtype=float)[None, :]
    clf.intercept_ = np.array([w[d] if intercept else 0.0])
    clf.classes_ = np.asarray(classes)
    return clf


@pytest.mark.parametrize("intercept", [True, False])
def test_predict_and_proba_equal_sklearn_with_the_same_w(tmp_path, intercept):
    path, X, y, res = fit(tmp_path, intercept=intercept)
    assert len(res.w) == D + int(intercept)
    test = tmp_path / "test.svm"
    Xt, yt = labelled(test, n=150, seed=9)
    clf = sklearn_twin(res.w, D, intercept, [3, 7])
    out = invoke("predict", path, test)
    assert out.exit_code == 0, out.output
    pred = np.array(out.stdout.split(), dtype=float)
    np.testing.assert_array_equal(pred, clf.predict(Xt))
    assert set(pred) <= {3.0, 7.0} and len(pred) == 150
    out = invoke("predict", path, test, "--proba", "-o", tmp_path / "p.txt")
    assert out.exit_code == 0 and out.stdout == "", out.output
    proba = np.loadtxt(tmp_path / "p.txt")
    assert proba.shape == (150, 2)
    np.testing.assert_allclose(proba, clf.predict_proba(Xt), rtol=0, atol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-15)


def numbers(text):
    """A predict output's lines as a float array (one row per line)."""
    return np.array([line.split() for line in text.splitlines()], dtype=float)


@pytest.mark.parametrize("intercept", [True, False])
def test_decision_values_equal_sklearns_decision_function(tmp_path, intercept):
    """``predict --decision``: x.w (+ b) per row, scikit-learn's decision_function
    of a LogisticRegression holding the same weights, to 1e-12; its sign gives
    the printed label (> 0: the second class, 7)."""
    path, X, y, res = fit(tmp_path, intercept=intercept)
    test = tmp_path / "test.svm"
    Xt, _ = labelled(test, n=150, seed=9)
    clf = sklearn_twin(res.w, D, intercept, [3, 7])
    out = invoke("predict", path, test, "--decision")
    assert out.exit_code == 0, out.output
    z = numbers(out.stdout)
    assert z.shape == (150, 1)
    np.testing.assert_allclose(z[:, 0], clf.decision_function(Xt), rtol=1e-12, atol=1e-12)
    labels = np.array(invoke("predict", path, test).stdout.split(), dtype=float)
    np.testing.assert_array_equal(labels, np.where(z[:, 0] > 0, 7.0, 3.0))
    out = invoke("predict", path, test, "--decision", "-o", tmp_path / "z.txt")
    assert out.exit_code == 0 and out.stdout == "" and "accuracy" in out.stderr
    assert (tmp_path / "z.txt").read_text() == invoke("predict", path, test,
                                                      "--decision").stdout
    both = invoke("predict", path, test, "--decision", "--proba")
    assert both.exit_code == 2 and both.output.strip().splitlines() == [
        "distnewton: error: --proba, --decision: choose one"], both.output


def test_ridge_decision_values_are_its_predictions(tmp_path):
    path, X, y, res = fit(tmp_path, loss="ridge")
    test = tmp_path / "rt.svm"
    Xt, _ = labelled(test, n=60, seed=2, loss="ridge")
    out = invoke("predict", path, test, "--decision")
    assert out.exit_code == 0, out.output
    np.testing.assert_allclose(numbers(out.stdout)[:, 0], Xt @ res.w[:D] + res.w[D],
                               rtol=1e-14, atol=1e-14)
    assert out.stdout == invoke("predict", path, test).stdout


def test_metrics_equal_sklearn_metrics(tmp_path):
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
    path, *_ , res = fit(tmp_path)
    test = tmp_path / "test.svm"
    Xt, yt = labelled(test, n=200, seed=4)
    clf = sklearn_twin(res.w, D, True, [3, 7])
    out = invoke("evaluate", path, test, "--format", "json")
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert got["n_samples"] == 200 and got["loss"] == "logistic"
    assert got["accuracy"] == accuracy_score(yt, clf.predict(Xt))
    # scikit-learn takes the log of p = expit(z) or 1 - p (relative error ~1e-16/p on
    # confident rows), distnewton log1p(exp(-y z)); the mean agrees to 1e-12 here
    assert got["log_loss"] == pytest.approx(log_loss(yt, clf.predict_proba(Xt)), rel=1e-12)
    assert got["auc"] == pytest.approx(roc_auc_score(yt, clf.decision_function(Xt)), rel=1e-12)
    text = invoke("evaluate", path, test)
    assert text.exit_code == 0
    lines = dict(line.split() for line in text.stdout.splitlines())
    assert float(lines["auc"]) == pytest.approx(got["auc"], rel=1e-9)
    # predict prints the same metrics on stderr, the predictions on stdout
    pred = invoke("predict", path, test)
    assert "accuracy" in pred.stderr and "auc" in pred.stderr and "auc" not in pred.stdout


def test_auc_with_ties_equals_sklearn():
    from sklearn.metrics import roc_auc_score

    from distnewton.model import roc_auc
    rng = np.random.default_rng(1)
    z = rng.integers(0, 4, 300).astype(float)         # many ties
    t = np.where(rng.random(300) < 0.4, 1.0, -1.0)
    assert roc_auc(z, t) == pytest.approx(roc_auc_score(t, z), rel=1e-14)
    assert np.isnan(roc_auc(z, np.ones(300)))


def test_ridge_predictions_and_metrics(tmp_path):
    from sklearn.metrics import mean_squared_error, r2_score
    path, X, y, res = fit(tmp_path, loss="ridge")
    test = tmp_path / "rt.svm"
    Xt, yt = labelled(test, n=120, seed=2, loss="ridge")
    out = invoke("predict", path, test)
    assert out.exit_code == 0, out.output
    pred = np.array(out.stdout.split(), dtype=float)
    np.testing.assert_allclose(pred, Xt @ res.w[:D] + res.w[D], rtol=1e-14, atol=1e-14)
    got = json.loads(invoke("evaluate", path, test, "--format", "json").stdout)
    assert got["mse"] == pytest.approx(mean_squared_error(yt, pred), rel=1e-12)
    assert got["r2"] == pytest.approx(r2_score(yt, pred), rel=1e-12)
    bad = invoke("predict", path, test, "--proba")
    assert bad.exit_code == 2 and "--proba: only for logistic" in bad.output


def test_fewer_features_is_fine_more_is_an_error_naming_file_line_index(tmp_path):
    path, *_, res = fit(tmp_path)
    few = tmp_path / "few.svm"
    few.write_text("3 1:0.5 2:-1\n7 3:2\n")
    out = invoke("predict", path, few)
    assert out.exit_code == 0, out.output
    z = np.array([0.5 * res.w[0] - res.w[1], 2 * res.w[2]]) + res.w[D]
    assert out.stdout.split() == [("7" if v > 0 else "3") for v in z]
    many = tmp_path / "many.svm"
    many.write_text("3 1:0.5\n7 2:1\n3 1:1 7:0.25\n")       # index 7 > d = 6
    for cmd in ("predict", "evaluate"):
        out = invoke(cmd, path, many, *(["-o", tmp_path / "o.txt"] if cmd == "predict" else []))
        assert out.exit_code == 2
        lines = out.output.strip().splitlines()
        assert len(lines) == 1 and f"{many}:3: feature index 7" in lines[0], out.output
        assert "has 6 features" in lines[0]
    assert not (tmp_path / "o.txt").exists()


def test_unknown_labels_no_metrics_for_predict_an_error_for_evaluate(tmp_path):
    path, *_ = fit(tmp_path)
    other = tmp_path / "other.svm"
    other.write_text("0 1:1\n0 2:1\n")
    out = invoke("predict", path, other)
    assert out.exit_code == 0 and len(out.stdout.split()) == 2
    assert "no metrics" in out.stderr and "[0]" in out.stderr
    out = invoke("evaluate", path, other)
    assert out.exit_code == 2 and "do not occur in the training labels" in out.output


def test_positive_labels_print_the_mapped_classes(tmp_path):
    from distnewton.model import load_model
    train = tmp_path / "multi.svm"
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 4))
    y = rng.integers(1, 4, 300).astype(float)
    X[:, 0] += y                                              # learnable
    write_libsvm(train, X, y)
    distnewton.solve({"data": {"train": str(train), "positive_labels": [2, 3]},
                      "algorithm": {"name": "newton"}}, output=tmp_path / "m.h5")
    model = load_model(tmp_path / "m.h5")
    assert model.classes == [-1, 1]                    # {1} -> -1, {2, 3} -> +1
    out = invoke("predict", tmp_path / "m.h5", train)
    assert out.exit_code == 0, out.output
    z = X @ model.w
    assert out.stdout.split() == [("1" if v > 0 else "-1") for v in z]
    got = json.loads(invoke("evaluate", tmp_path / "m.h5", train, "--format", "json").stdout)
    assert got["accuracy"] > 0.6


def test_bad_result_files_are_one_line_errors(tmp_path):
    test = tmp_path / "t.svm"
    labelled(test, n=5)
    (tmp_path / "junk.h5").write_text("not hdf5")
    for result, text in ((tmp_path / "none.h5", "no such file"),
                         (tmp_path / "junk.h5", "not a readable HDF5 file")):
        out = invoke("predict", result, test)
        assert out.exit_code == 2 and text in out.output
        assert len(out.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_run_then_predict(tmp_path):
    """The whole chain as a user runs it: `distnewton run` (sim backend), then predict."""
    train, test = tmp_path / "tr.svm", tmp_path / "te.svm"
    labelled(train)
    Xt, _ = labelled(test, n=80, seed=11)
    cfg = write_config(tmp_path / "c.yaml", data={"train": str(train)},
                       model={"fit_intercept": True}, algorithm={"name": "giant"},
                       run={"max_rounds": 40, "workers": 2})
    res = cli("run", cfg, "--backend", "sim", "-o", tmp_path / "r.h5", "-q")
    assert res.returncode == 0, res.stderr
    res = cli("predict", tmp_path / "r.h5", test, "--proba")
    assert res.returncode == 0, res.stderr
    from distnewton.io.read import load
    w = load(tmp_path / "r.h5").w
    clf = sklearn_twin(w, D, True, [3, 7])
    np.testing.assert_allclose(np.loadtxt(res.stdout.splitlines()), clf.predict_proba(Xt),
                               atol=1e-12, rtol=0)
    assert "accuracy" in res.stderr


# -- export --------------------------------------------------------------------


@pytest.mark.parametrize("intercept", [True, False])
def test_liblinear_export_predicts_as_distnewton(tmp_path, intercept):
    liblinear = pytest.importorskip("liblinear.liblinearutil",
                                    reason="pip install liblinear-official (extra test)")
    path, *_ = fit(tmp_path, intercept=intercept)
    test = tmp_path / "test.svm"
    Xt, yt = labelled(test, n=150, seed=9)
    out = invoke("export", path, "-o", tmp_path / "m.model", "--format", "liblinear")
    assert out.exit_code == 0, out.output
    text = (tmp_path / "m.model").read_text()
    assert "solver_type L2R_LR" in text and "label 7 3" in text
    assert f"bias {1 if intercept else -1}" in text
    m = liblinear.load_model(str(tmp_path / "m.model"))
    labels, _, dec = liblinear.predict(list(yt), liblinear_rows(Xt), m, "-q")
    ours = np.array(invoke("predict", path, test).stdout.split(), dtype=float)
    np.testing.assert_array_equal(np.array(labels), ours)
    from distnewton.model import load_model
    model = load_model(path)
    np.testing.assert_allclose(np.array(dec).ravel(), model.decision(Xt), rtol=1e-13,
                               atol=1e-13)
    # and `predict --decision`: LIBLINEAR's decision values (its -b 0 output,
    # label order [7, 3]: > 0 predicts 7, as ours)
    ours = numbers(invoke("predict", path, test, "--decision").stdout)[:, 0]
    np.testing.assert_allclose(ours, np.array(dec).ravel(), rtol=1e-13, atol=1e-13)
    # LIBLINEAR's probabilities (-b 1) for label order [7, 3] against --proba ([3, 7])
    _, _, prob = liblinear.predict(list(yt), liblinear_rows(Xt), m, "-b 1 -q")
    proba = np.loadtxt(invoke("predict", path, test, "--proba").stdout.splitlines())
    np.testing.assert_allclose(np.array(prob)[:, ::-1], proba, atol=1e-12, rtol=0)


def test_liblinear_export_of_ridge_is_an_svr_model_predicting_x_w(tmp_path):
    liblinear = pytest.importorskip("liblinear.liblinearutil",
                                    reason="pip install liblinear-official (extra test)")
    path, X, y, res = fit(tmp_path, loss="ridge")
    out = invoke("export", path, "-o", tmp_path / "r.model")
    assert out.exit_code == 0, out.output
    assert (tmp_path / "r.model").read_text().startswith("solver_type L2R_L2LOSS_SVR\n")
    m = liblinear.load_model(str(tmp_path / "r.model"))
    pred, _, _ = liblinear.predict(list(y), liblinear_rows(X), m, "-q")
    np.testing.assert_allclose(pred, X @ res.w[:D] + res.w[D], rtol=1e-13, atol=1e-13)
    # and LIBLINEAR's own L2R_L2LOSS_SVR with p = 0, C = 1/(2 lambda n) (and the bias
    # regularised, as distnewton's intercept column) finds the same model
    lam, n = res.attrs["lambda"], len(y)
    ref = liblinear.train(list(y), liblinear_rows(X),
                          f"-s 11 -p 0 -c {1 / (2 * lam * n)!r} -B 1 -e 1e-10 -q")
    w_ref = np.array([ref.w[i] for i in range(D + 1)])
    np.testing.assert_allclose(w_ref, res.w, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("fmt", ["npz", "json"])
def test_array_exports(tmp_path, fmt):
    path, *_, res = fit(tmp_path)
    out = invoke("export", path, "-o", tmp_path / f"m.{fmt}", "--format", fmt)
    assert out.exit_code == 0, out.output
    if fmt == "npz":
        got = dict(np.load(tmp_path / "m.npz"))
    else:
        got = json.loads((tmp_path / "m.json").read_text())
    np.testing.assert_array_equal(np.asarray(got["w"]), res.w[:D])
    assert float(got["intercept"]) == res.w[D]
    assert list(np.asarray(got["labels"], dtype=float)) == [3.0, 7.0]
    assert str(got["objective"]) == "logistic"
    assert float(got["lam"]) == res.attrs["lambda"] == 1 / 400
    assert bool(got["fit_intercept"]) and int(got["n_features"]) == D


def test_export_errors(tmp_path):
    path, *_ = fit(tmp_path)
    out = invoke("export", path, "-o", tmp_path, "--format", "json")
    assert out.exit_code == 2 and "is a directory" in out.output
    out = invoke("export", path, "-o", tmp_path / "x", "--format", "pmml")
    assert out.exit_code == 2 and "pmml" in out.output
    train = tmp_path / "half.svm"
    labelled(train, labels=(0.5, 1.5))
    distnewton.solve({"data": {"train": str(train)}, "algorithm": {"name": "newton"}},
                     output=tmp_path / "h.h5")
    out = invoke("export", tmp_path / "h.h5", "-o", tmp_path / "h.model")
    assert out.exit_code == 2 and "LIBLINEAR labels are integers" in out.output
    assert not (tmp_path / "h.model").exists()
