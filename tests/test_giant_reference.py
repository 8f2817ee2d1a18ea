"""distnewton's GIANT against GIANT written out in numpy from the paper
(:mod:`support.giant_reference`): K = 4 simulated workers, the same iterates to 1e-12,
the same step sizes and communication rounds."""

import numpy as np
import pytest

from distnewton.algorithms.giant import GIANT

from support.giant_reference import numpy_giant, step_along
from support.inprocess import setup
from support.references import synthetic


@pytest.mark.parametrize("beta, ls_steps", [(1e-4, 10), (0.1, 10), (0.45, 1)])
def test_giant_follows_the_numpy_giant(beta, ls_steps):
    """K = 4 shards of a 400 x 12 logistic problem, lambda = 1/n, 8 iterations from 0
    (with beta 0.45 the later steps backtrack to 1/2, one more round each)."""
    X, y = synthetic(n=400, d=12, seed=3)
    lam = 1.0 / 400
    alg, rt = setup(GIANT, X, y, K=4, solver="cholesky", direction="local", beta=beta,
                    ls_steps=ls_steps)
    ref = numpy_giant(X.toarray(), y, 4, lam, 8, beta=beta, ls_steps=ls_steps)
    alphas = step_along(alg, rt, ref, "step_size")
    steps = [np.linalg.norm(b[2] - a[2]) for a, b in zip(ref, ref[1:])]
    assert steps[-1] < 1e-2 * steps[0], steps                 # converging
    if ls_steps == 1:         # beta 0.45 backtracks: alpha 1/2 costs a second search round
        assert min(alphas) == 0.5 and ref[-1][0] > 3 * len(ref), (alphas, ref[-1][0])


def test_the_reference_is_not_the_global_newton_step():
    """With K = 4 the averaged local directions differ from the global Newton step
    (K = 1): the comparison above would catch an implementation that took either."""
    X, y = synthetic(n=400, d=12, seed=3)
    one = numpy_giant(X.toarray(), y, 1, 1.0 / 400, 1)[0][2]
    four = numpy_giant(X.toarray(), y, 4, 1.0 / 400, 1)[0][2]
    assert np.abs(one - four).max() > 1e-3 * np.abs(one).max()
