"""The L2-loss SVM written out with numpy and its independent optima: scipy's
trust-region Newton on the primal, scikit-learn's ``LinearSVC`` and LIBLINEAR's
own ``-s 2`` (when ``liblinear-official`` is installed).

distnewton's objective is f(w) = (1/n) sum_j max(0, 1 - y_j x_j.w)^2 + (lam/2)||w||^2;
LIBLINEAR and LinearSVC minimise ||w||^2/2 + C sum_j max(0, 1 - y_j x_j.w)^2, the
same function times 1/lam when C = 1/(lam n).
"""

import numpy as np
import scipy.optimize as so
import scipy.sparse as sp


def svm_objective(X, y, w, lam, s=None):
    """(1/n) sum_j s_j max(0, 1 - y_j x_j.w)^2 + (lam/2)||w||^2 (s_j = 1 unless given)."""
    r = np.maximum(1.0 - y * (X @ w), 0.0)
    s = np.ones(len(y)) if s is None else s
    return float(s @ (r * r) / len(y) + 0.5 * lam * w @ w)


def svm_gradient(X, y, w, lam, s=None):
    r = np.maximum(1.0 - y * (X @ w), 0.0)
    s = np.ones(len(y)) if s is None else s
    return -2.0 * (X.T @ (s * y * r)) / len(y) + lam * w


def svm_hessian(X, y, w, lam, s=None):
    """The generalised Hessian (2/n) X_A^T S_A X_A + lam I over the rows y x.w < 1."""
    s = np.ones(len(y)) if s is None else s
    Xd = X.toarray() if sp.issparse(X) else np.asarray(X)
    a = (y * (Xd @ w) < 1.0) * s
    return 2.0 * (Xd.T * a) @ Xd / len(y) + lam * np.eye(Xd.shape[1])


def scipy_optimum(X, y, lam, s=None):
    """(w*, f*) by scipy's trust-exact on the primal with the generalised Hessian
    (a piecewise quadratic: the iteration ends on the optimum's active set)."""
    d = X.shape[1]
    res = so.minimize(lambda w: svm_objective(X, y, w, lam, s), np.zeros(d),
                      jac=lambda w: svm_gradient(X, y, w, lam, s),
                      hess=lambda w: svm_hessian(X, y, w, lam, s), method="trust-exact",
                      options={"gtol": 1e-13})
    assert np.linalg.norm(svm_gradient(X, y, res.x, lam, s)) <= 1e-10, res.message
    return res.x, svm_objective(X, y, res.x, lam, s)


def linearsvc_optimum(X, y, lam, class_weight=None):
    """(w*, f*) by scikit-learn's LinearSVC(squared_hinge, dual=False): LIBLINEAR's
    primal TRON with C = 1/(lam n), no intercept."""
    from sklearn.svm import LinearSVC
    C = 1.0 / (lam * X.shape[0])
    if sp.issparse(X):                             # LIBLINEAR takes 32-bit indices only
        X = sp.csr_matrix((X.data, X.indices.astype(np.int32), X.indptr.astype(np.int32)),
                          shape=X.shape)
    est = LinearSVC(loss="squared_hinge", dual=False, C=C, fit_intercept=False, tol=1e-12,
                    max_iter=100000, class_weight=class_weight).fit(X, y)
    w = est.coef_.ravel()                          # scores the larger label, classes_[1]
    return w, svm_objective(X, np.where(y == est.classes_[1], 1.0, -1.0), w, lam)
