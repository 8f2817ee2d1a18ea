"""DANE (Shamir, Srebro and Zhang, ICML 2014) written out in dense numpy, as the
independent reference of distnewton's ``dane`` iterates.

Iteration t from w (the paper's two rounds):

1. g = grad f(w), the global gradient;
2. machine k takes ``local_steps`` Newton steps on its local problem
   min_v f_k(v) - (grad f_k(w) - eta g).v + (mu/2)||v - w||^2 from v = w
   (``np.linalg.solve`` on Hess f_k(v) + mu I), and the master averages
   w_{t+1} = sum_k (n_k/n) v_k.

``rule="unit"`` is the paper.  ``rule="unit_or_half"`` (distnewton's default
``step_rule``): from the second iteration on, step 1 starts from whichever of
w_{t} and the midpoint (w_{t-1}' + w_t)/2 has the lower f (the midpoint only when
lower by more than rounding, ``NOISE`` |f(w_t)|), where w_{t-1}' is the
point the previous iteration's local problems started from.

Nothing here imports distnewton: the objective, gradient and Hessian are those of
:mod:`support.references` and :mod:`support.giant_reference`, the shards contiguous
``np.array_split`` blocks.
"""

import numpy as np

from support.giant_reference import NOISE, hess, shards
from support.references import logistic_gradient as grad, logistic_objective as value


def local_solution(Xk, yk, w, g, lam, eta, mu, local_steps):
    """Machine k's inexact solution of its DANE local problem from w."""
    linear = grad(Xk, yk, w, lam) - eta * g
    v = w.copy()
    for _ in range(local_steps):
        rhs = grad(Xk, yk, v, lam) - linear + mu * (v - w)
        v = v - np.linalg.solve(hess(Xk, yk, v, lam) + mu * np.eye(len(w)), rhs)
    return v


def numpy_dane(X, y, K, lam, iterations, eta=1.0, mu=0.0, local_steps=1, rule="unit"):
    """DANE with K machines from 0: [(rounds so far, step size, w)] after every
    iteration; step size 1/2 when the iteration started from the midpoint."""
    n = X.shape[0]
    parts = shards(X, y, K)
    w, anchor, out = np.zeros(X.shape[1]), None, []
    for t in range(iterations):
        start, step = w, 1.0
        if rule == "unit_or_half" and anchor is not None:
            mid = 0.5 * (anchor + w)
            f_w = value(X, y, w, lam)
            f_mid = value(X, y, mid, lam)
            if np.isfinite(f_mid) and (not np.isfinite(f_w) or f_mid < f_w - NOISE * abs(f_w)):
                start, step = mid, 0.5                # beyond rounding, or the only finite
        g = grad(X, y, start, lam)
        anchor = start
        w = sum(len(yk) / n * local_solution(Xk, yk, start, g, lam, eta, mu, local_steps)
                for Xk, yk in parts)
        out.append((2 * (t + 1), step, w))
    return out
