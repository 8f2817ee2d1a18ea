"""IST's ridge analysis: exact moments of one IST round on the quadratics
F_i(x) = 1/2 x^T L_i x - x^T b_i, the neighbourhood bound they give, and the
quantities of Shulgin and Richtarik's slides (h, sigma^2, theta, W_bar) with the
right-hand sides of their Theorems (19) and (24).  Notation as in :mod:`.ist`
(K workers = the slides' n; T rounds = the slides' K in (19), (24)).

The round (one local full-gradient step) is the random affine map

    x^{k+1} = x^k - gamma g^k,   g^k = B_k x^k - h_k,                  (slides (10))
    B_k = (1/K) sum_i C_i L_i C_i  (the slides' B_bar^k),   h_k = (1/K) sum_i C_i b_i,

drawn independently of x^k.  ``precondition: homogeneous`` runs it on
u = D^{1/2} x with L_i, b_i replaced by D^{-1/2} L_i D^{-1/2}, D^{-1/2} b_i
(D = Diag(L), slides (29)); every quantity below except the x-space ones
(``dist_opt``, ``dist_bound``, ``bias``, ``radius``, ``rho``) is then the
u-space one, where the slides' theorems apply.

**Neighbourhood bound (x-space).** With e^k = x^k - x*, x* = L^{-1} b, S = D^{-1/2}
(S = I without preconditioning),

    e^{k+1} = S (I - gamma B_k) S^{-1} e^k - gamma S g_k(u*),   g_k(u*) = B_k u* - h_k,

and Minkowski's inequality in L2(Omega) with E||S (I - gamma B_k) S^{-1} e||^2
<= rho ||e||^2 gives, for every k,

    sqrt(E||x^k - x*||^2) <= rho^{k/2} ||x^0 - x*|| + R (1 - rho^{k/2}),
    rho   = lambda_max(I - gamma (S^-1 E[B] S + S E[B] S^-1) + gamma^2 S^-1 E[B S^2 B] S^-1),
    sigma = sqrt(E||S g_k(u*)||^2),     R = gamma sigma / (1 - sqrt(rho))   (rho < 1),

so IST stays, in mean square, in the ball of radius R around x*.  It does not
converge to x* in general: E[u^k] -> m = E[B]^{-1} E[h], and ||S m - x*|| (the
bias) is a lower bound of the limit of sqrt(E||x^k - x*||^2).  For ``perm`` with
K | d, E[B] = ((d-K)/(d-1)) L + (K - (d-K)/(d-1)) Diag(L) (Perm-1: K Diag(L), the
slides' (27)), for ``bernoulli`` E[B] = L + ((1-p)/p) Diag(L).  sigma = 0 exactly
when g_k(u*) = 0 for every sketch: identity (B_k = L) and the interpolation case
b_i = 0 (x* = 0).  The preconditioning leaves the bias unchanged (the diagonal D
commutes with the diagonal sketches, so m is the same point), not rho or sigma.

**The slides' quantities (run space).**

    W_bar := 1/2 E[L B_k + B_k L]  (>= 0),                              (22)
    E[B_k L B_k] <= theta W_bar,   theta = lambda_max(W_bar^-1/2 E[B L B] W_bar^-1/2),  (23)
    sigma^2 : E[||g^k - E[g^k]||_L^2] <= sigma^2,                          (18)
    E[g^k] = L^{-1} grad f(x^k) + h,   h = L^{-1} b - (1/sqrt(n)) D~b,       (16)-(17)

where (17) is the preconditioned Perm-1 case, E[B_k] = I.  For any sketch,
E[g^k] = E[B](x^k - m) and this file takes h := x* - m (in the run space), which
is (17) when E[B] = I (m = E[h_k] = (1/sqrt(n)) D~b there).  sigma^2 depends on
x^k unless B_k is deterministic (identity; preconditioned Perm-1, where B_k = I
on every draw): the column ``sigma2`` is the exact conditional variance at the
row's iterate,

    sigma^2(x) = x^T (E[B L B] - E[B] L E[B]) x - 2 x^T (E[B L h] - E[B] L E[h])
                 + E[h^T L h] - E[h]^T L E[h].

Theorem (24) (interpolation b_i = 0, W_bar >= 0, gamma <= 1/theta):

    (1/T) sum_{k<T} E||grad f(x^k)||^2_{L^-1 W_bar L^-1} <= 2 (f(x^0) - E f(x^T)) / (gamma T).

Theorem (19) (preconditioned Perm-1, D_i^{-1/2} existing, gamma <= (1/2 - beta)/(beta + 1/2),
beta in (0, 1/2)):

    (1/T) sum_{k<T} E||grad f(x^k)||^2_{L^-1} <= 2 (f(x^0) - E f(x^T)) / (gamma T)
                                 + (2 beta^-1 (1 - gamma) + gamma) ||h||_L^2 + gamma sigma^2.

For a given gamma < 1 the condition allows beta <= (1 - gamma) / (2 (1 + gamma)),
and the right-hand side falls with beta, so the bound logged takes that beta:
its neighbourhood term is (4 + 5 gamma) ||h||_L^2 + gamma sigma^2.  The logged
bounds put the run's own f(x^T) for E f(x^T); ||grad f(x)||^2_{L^-1} =
(x - x*)^T L (x - x*) is the same in x and u space.

The moments are exact (no sampling; :mod:`.moments`).  History columns (NaN
where not computed; constant ones repeat each row): ``dist_opt`` ||x^k - x*||,
``dist_bound`` the x-space bound (k = IST rounds), ``bias`` ||S m - x*||,
``radius`` R, ``rho``; ``h_norm`` ||h||_L, ``sigma2`` sigma^2(x^k), ``theta``
(inf when W_bar is not positive definite), ``W_min``/``W_max`` the extreme
eigenvalues of W_bar, ``grad_avg`` (1/k) sum_{t<k} ||grad f(x^t)||^2_{L^-1} and
``bound19`` the right-hand side of (19) (NaN outside its hypotheses),
``grad_avg_W`` the same average in the L^-1 W_bar L^-1 norm and ``bound24`` the
right-hand side of (24) (NaN unless b_i = 0 and gamma <= 1/theta).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg

from .moments import SketchLaw, expect

#: largest d for which the ridge analysis (d x d moments per worker) is computed
ANALYSIS_MAX_D = 1000

#: history columns of the analysis (see the module docstring)
COLUMNS = ("dist_opt", "dist_bound", "bias", "radius", "rho", "h_norm", "sigma2", "theta",
           "W_min", "W_max", "grad_avg", "bound19", "grad_avg_W", "bound24")


def unsupported(problem, p, K, perm_k=True):
    """Why the analysis (and ``step_size: theory``) cannot run here, or None.
    ``perm_k``: count K > d with a permutation sketch (the analysis then logs NaN)."""
    d = problem.d
    if problem.loss != "ridge":
        return "model.loss ridge (the slides' quadratic model (9))"
    if d > ANALYSIS_MAX_D:
        return f"d <= {ANALYSIS_MAX_D} (d x d moments; d = {d})"
    if p.local_steps != 1 or (p.batch is not None and p.batch < max(problem.sizes)):
        return "one local full-gradient step (local_steps 1, no batch)"
    if perm_k and p.sketch in ("perm", "perm_precond") and K > d:
        return f"d >= K for the {p.sketch} sketch (d = {d}, K = {K})"
    return None


def sketched_terms(Ls, bs, sketch, p=None):
    """(A_i, beta_i) with (1/K) C_i L_i C_i = P_i A_i P_i, (1/K) C_i b_i = P_i beta_i
    (P_i the 0/1 indicator of supp C_i; perm / perm_precond with d >= K)."""
    K = len(Ls)
    if sketch == "perm":                                # C_i = K P_i
        return [K * L for L in Ls], list(bs)
    if sketch == "perm_precond":                        # C_i = sqrt(K / [L_i]_jj) P_i
        A, beta = [], []
        for L, b in zip(Ls, bs):
            dg = np.diag(L)
            g = np.sqrt(K / np.where(dg > 0, dg, 1.0))
            A.append(g[:, None] * L * g[None, :] / K)
            beta.append(g * b / K)
        return A, beta
    q = 1.0 if sketch == "identity" else float(p)       # C_i = P_i / q
    return [L / (K * q * q) for L in Ls], [b / (K * q) for b in bs]


def second_moments(law, A, beta, M):
    """(E[B M B], E[B M h], E[h^T M h]) for B = sum P_i A_i P_i, h = sum P_i beta_i."""
    return (expect(law, "ac,ce,eb->ab", "iijj", A, [M], A),
            expect(law, "ac,ce,e->a", "iij", A, [M], beta),
            float(expect(law, "a,ae,e->", "ij", beta, [M], beta)))


def variance(law, x, EB, Eh, Q, q, s, M):
    """E||g - E g||_M^2 at x, g = B x - h, from Q = E[B M B], q = E[B M h], s = E[h^T M h]
    (0 for the deterministic identity sketch, where the difference is rounding only)."""
    if law.kind == "identity":
        return 0.0
    EBM = EB.T @ M
    return float(x @ (Q - EBM @ EB) @ x - 2 * x @ (q - EBM @ Eh) + s - Eh @ M @ Eh)


def quadratic_analysis(Ls, bs, sketch, gamma, p=None, precondition="none"):
    """Exact moments of the one-step IST map on F_i = 1/2 x^T L_i x - x^T b_i.

    Returns a dict: x_star, mean (S m), bias, rho, sigma, radius, EB (E[B], run
    space) and the slides' quantities (see the module docstring): h_norm, theta,
    W_min, W_max, W, the sigma^2(x) form (var_Q, var_q, var_s), L (x-space),
    b, s (the diagonal of S), exact_identity (B_k = I on every draw) and
    interpolation (every b_i = 0); None when the sketch is not covered
    (perm / perm_precond with K > d).  Raises LinAlgError for a singular L.
    """
    K, d = len(Ls), Ls[0].shape[0]
    if sketch in ("perm", "perm_precond") and K > d:
        return None
    Lx, bx = sum(Ls) / K, sum(bs) / K
    x_star = np.linalg.solve(Lx, bx)
    s = np.ones(d)
    if precondition == "homogeneous":
        s = 1.0 / np.sqrt(np.diag(Lx))                  # S = D^{-1/2}, D = Diag(L)
        Ls = [s[:, None] * L * s[None, :] for L in Ls]
        bs = [s * b for b in bs]
    L, u_star = sum(Ls) / K, x_star / s
    A, beta = sketched_terms(Ls, bs, sketch, p)
    law = SketchLaw(sketch, d, K, p)
    EB, Eh = expect(law, "ac->ac", "ii", A), expect(law, "a->a", "i", beta)
    QN, qN, sN = second_moments(law, A, beta, np.diag(s * s))
    Eg, N = EB @ u_star - Eh, s * s                    # E[g_k(u*)], the metric S^2
    sigma = math.sqrt(float(Eg @ (N * Eg)) + max(variance(law, u_star, EB, Eh, QN, qN, sN,
                                                          np.diag(N)), 0.0))
    try:
        mean_u = np.linalg.solve(EB, Eh)
        bias = float(np.linalg.norm(s * mean_u - x_star))
        h = u_star - mean_u
        h_norm = math.sqrt(max(float(h @ L @ h), 0.0))
    except np.linalg.LinAlgError:
        mean_u, bias, h_norm = np.full(d, np.nan), math.nan, math.nan
    # the slides' (22), (23), (18)
    QL, qL, sL = second_moments(law, A, beta, L)
    W = (L @ EB + EB @ L) / 2
    W = (W + W.T) / 2
    wev = np.linalg.eigvalsh(W)
    theta = math.inf
    if wev[0] > 1e-12 * max(abs(wev[-1]), 1e-300):
        theta = float(scipy.linalg.eigh((QL + QL.T) / 2, W, eigvals_only=True)[-1])
    EBL = EB.T @ L
    var = {"var_Q": QL - EBL @ EB, "var_q": qL - EBL @ Eh, "var_s": sL - float(Eh @ L @ Eh)}
    if law.kind == "identity":                          # B_k, h_k deterministic
        var = {"var_Q": np.zeros((d, d)), "var_q": np.zeros(d), "var_s": 0.0}
    diag_ok = all(np.all(np.diag(Li) > 0) for Li in Ls)
    res = {"x_star": x_star, "mean": s * mean_u, "bias": bias, "sigma": sigma, "QN": QN, "EB": EB, "Eh": Eh, "h_norm": h_norm, "theta": theta,
            "W_min": float(wev[0]), "W_max": float(wev[-1]), "W": W,
            **var,
            "L": Lx, "b": bx, "s": s,
            "exact_identity": bool(sketch == "perm_precond" and d == K and diag_ok),
            "interpolation": bool(all(not np.any(b) for b in bs))}
    return set_gamma(res, gamma)


def set_gamma(res, gamma):
    """rho and R of the x-space bound for step gamma (in place; returns res)."""
    EB, s, d = res["EB"], res["s"], len(res["s"])
    R = (np.eye(d) - gamma * ((EB * s[None, :]) / s[:, None] + (EB * s[:, None]) / s[None, :])
         + gamma ** 2 * res["QN"] / np.outer(s, s))
    rho = max(float(np.linalg.eigvalsh((R + R.T) / 2).max()), 0.0)
    radius = gamma * res["sigma"] / (1.0 - math.sqrt(rho)) if rho < 1.0 else math.inf
    if res["sigma"] == 0.0 and rho < 1.0:
        radius = 0.0
    res.update(rho=rho, radius=radius)
    return res


# -- the step-size rules -----------------------------------------------------------
def theorem19_gamma(beta):
    """The largest step Theorem (19) allows for beta: (1/2 - beta) / (beta + 1/2)."""
    return (0.5 - beta) / (beta + 0.5)


def theory_gamma(res, beta):
    """``step_size: theory``: min(1/theta, Theorem (19)'s step) over the rules that apply
    (1/theta needs W_bar > 0; (19) preconditioned Perm-1); None when neither does."""
    steps = []
    if math.isfinite(res["theta"]) and res["theta"] > 0:
        steps.append(1.0 / res["theta"])
    if res["exact_identity"]:
        steps.append(theorem19_gamma(beta))
    return min(steps) if steps else None


# -- logging -----------------------------------------------------------------------
def start_log(res, w0, gamma):
    """The analysis state kept by the algorithm (a dict of arrays and numbers)."""
    keep = ("x_star", "bias", "radius", "rho", "h_norm", "theta", "W_min", "W_max", "W",
            "var_Q", "var_q", "var_s", "L", "b", "s", "exact_identity", "interpolation")
    log = {k: res[k] for k in keep}
    log.update(gamma=float(gamma), e0=float(np.linalg.norm(w0 - res["x_star"])),
               f0=quad_value(log, w0), gsum=0.0, gsum_W=0.0)
    return log


def quad_value(log, x):
    """f(x) = 1/2 x^T L x - b^T x (f up to a constant)."""
    return float(0.5 * x @ log["L"] @ x - log["b"] @ x)


@np.errstate(over="ignore", invalid="ignore")        # a diverging run: logged as inf / NaN
def accumulate(log, x):
    """Add ||grad f(x)||^2 in the L^-1 and L^-1 W_bar L^-1 norms (before a round from x)."""
    e = x - log["x_star"]
    eu = e / log["s"]
    log["gsum"] += float(e @ log["L"] @ e)
    log["gsum_W"] += float(eu @ log["W"] @ eu)


@np.errstate(over="ignore", invalid="ignore")
def row(log, x, k):
    """The analysis history columns at model x after k IST rounds."""
    gamma, rho = log["gamma"], log["rho"]
    if rho < 1.0:
        c = rho ** (k / 2)
        bound = c * log["e0"] + log["radius"] * (1.0 - c)
    else:
        bound = math.inf
    u = x / log["s"]
    sigma2 = float(u @ log["var_Q"] @ u - 2 * u @ log["var_q"] + log["var_s"])
    descent = 2 * (log["f0"] - quad_value(log, x)) / (gamma * k)
    b19 = b24 = math.nan
    if log["exact_identity"] and gamma < 1.0:            # sigma^2 is constant here
        b19 = descent + (4 + 5 * gamma) * log["h_norm"] ** 2 + gamma * log["var_s"]
    if log["interpolation"] and gamma <= 1.0 / log["theta"]:
        b24 = descent
    return {"dist_opt": float(np.linalg.norm(x - log["x_star"])), "dist_bound": bound,
            "bias": log["bias"], "radius": log["radius"], "rho": rho,
            "h_norm": log["h_norm"], "sigma2": max(sigma2, 0.0), "theta": log["theta"],
            "W_min": log["W_min"], "W_max": log["W_max"], "grad_avg": log["gsum"] / k,
            "bound19": b19, "grad_avg_W": log["gsum_W"] / k, "bound24": b24}
