"""distnewton's FedNL iterates held to an independent numpy FedNL written from the
paper (tests/support/fednl_reference.py; issue 30, item 5): options 1 and 2,
FedNL-LS (with backtracking that binds), FedNL-PP, the compressors Top-K, TopLEK,
RandSeqK and Rank-R, alpha as a number and as 'theory'/'largest' (the formulas
written out here), h0 local and zero; every iterate's loss and the last iterate
to 1e-12, on the sim backend and once under ``mpiexec -n 3``.  The identity
compressor with alpha = 1 (Newton with the previous round's Hessian) is in
tests/test_fednl.py."""

import numpy as np
import pytest
from sklearn.datasets import load_svmlight_file

import distnewton
from distnewton.data import write_libsvm
from distnewton.algorithms.fednl.compressors import Compressor
from support import fednl_reference as ref
from support.launch import cli, read_result, write_config

LAM, D_FEAT, KMULT = 1e-2, 8, 2


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    """300 x 8 dense Gaussian logistic set (no two Hessian entries tie, so Top-K's
    choice is unambiguous even at x^0 = 0): its file and the arrays as read back."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((300, D_FEAT)) * rng.uniform(0.5, 2.0, D_FEAT)
    y = np.where(rng.random(300) < 1 / (1 + np.exp(-X @ rng.standard_normal(D_FEAT))), 1.0, -1.0)
    path = tmp_path_factory.mktemp("fednl_ref") / "r.svm"
    write_libsvm(path, X, y)
    X, y = load_svmlight_file(str(path), n_features=D_FEAT)
    return str(path), X.toarray(), y


def config(path, T, algo):
    return {"data": {"train": path, "n_features": D_FEAT, "partition": "contiguous"},
            "model": {"loss": "logistic", "lambda": LAM},
            "algorithm": {"name": "fednl", "k_mult": KMULT, **algo},
            "run": {"max_iterations": T, "max_rounds": 1000, "grad_norm": 1e-300,
                    "grad_rtol": None, "seed": 0}}


def offsets(seed=0):
    """RandSeqK's shared-seed offsets (client i, iteration k): the randomness both
    implementations are handed, not the method."""
    c = Compressor("randseqk", D_FEAT, KMULT, 1, seed)
    return lambda i, k: c.seq_offset(i, k)


def pp_choices(K, tau, seed=0):
    """FedNL-PP's client sets: tau of K uniformly without replacement per iteration,
    from the master's stream (numpy's SeedSequence((seed, 0)))."""
    rng = np.random.default_rng(np.random.SeedSequence((seed, 0)))
    return lambda k: np.sort(rng.choice(K, size=tau, replace=False))


D_TRI, K_ENT = D_FEAT * (D_FEAT + 1) // 2, KMULT * D_FEAT
ALPHA_TOPK_THEORY = 1 - np.sqrt(1 - (2 * K_ENT - D_FEAT) / D_FEAT ** 2)   # Frobenius delta

CASES = {   # id: (distnewton's keys, the reference's keys)
    "paper-topk-option1": ({"preset": "paper"},
                           dict(compressor="topk", alpha=ALPHA_TOPK_THEORY, option=1)),
    "default-topk-option2-ls": ({}, dict(compressor="topk", alpha=1.0, option=2,
                                         line_search=True)),
    "ls-option1-h0zero": ({"option": 1, "alpha": 0.5, "h0": "zero", "line_search": True},
                          dict(compressor="topk", alpha=0.5, option=1, h0="zero",
                               line_search=True)),
    "randseqk-option2-theory": ({"compressor": "randseqk", "alpha": "theory",
                                 "line_search": False},
                                dict(compressor="randseqk", alpha=K_ENT / D_TRI, option=2)),
    "toplek-option2-ls-nolookahead": ({"compressor": "toplek", "ls_ahead": False},
                                      dict(compressor="toplek", alpha=1.0, option=2,
                                           line_search=True)),
    "rankr-option1-theory": ({"compressor": "rankr", "rank": 2, "preset": "paper"},
                             dict(compressor="rankr", R=2, option=1,
                                  alpha=1 - np.sqrt(1 - 2 / D_FEAT))),
}


def reference_iterates(X, y, K, T, keys):
    keys = {"K": K_ENT, **keys}
    if keys["compressor"] == "randseqk":
        keys["offset"] = offsets()
    return ref.fednl(ref.clients(X, y, K, LAM), T, **keys)


def assert_same(run, xs, clients):
    """Every recorded loss equals the reference's f at the same iterate, and the
    last iterate the reference's, to 1e-12 relative."""
    w = np.array([c.n for c in clients], dtype=float) / sum(c.n for c in clients)
    f = np.array([sum(wi * c.value(x) for wi, c in zip(w, clients)) for x in xs])
    loss = np.asarray(run.history["loss"])
    assert loss.size == f.size, (loss.size, f.size)
    assert np.allclose(loss, f, rtol=1e-12, atol=0)
    assert np.linalg.norm(run.w - xs[-1]) <= 1e-12 * np.linalg.norm(xs[-1])


@pytest.mark.parametrize("case", list(CASES))
def test_fednl_iterates_equal_the_reference(problem, case):
    path, X, y = problem
    ours, theirs = CASES[case]
    K, T = 4, 8
    r = distnewton.solve(config(path, T, ours), workers=K)
    assert r.iterations == T, r.message
    assert_same(r, reference_iterates(X, y, K, T, theirs), ref.clients(X, y, K, LAM))
    if case == "ls-option1-h0zero":                       # the backtracking binds
        assert np.min(r.history["step_size"][1:]) < 1.0


@pytest.mark.parametrize("compressor,h0", [("randseqk", "local"), ("topk", "zero")])
def test_fednl_pp_iterates_equal_the_reference(problem, compressor, h0):
    path, X, y = problem
    K, tau, T = 4, 2, 8
    r = distnewton.solve(config(path, T, {"compressor": compressor, "participation": tau,
                                          "h0": h0, "alpha": 0.5}), workers=K)
    assert r.iterations == T, r.message
    cl = ref.clients(X, y, K, LAM)
    xs = ref.fednl_pp(cl, T, tau, pp_choices(K, tau), compressor=compressor, K=K_ENT,
                      alpha=0.5, h0=h0, offset=offsets() if compressor == "randseqk" else None)
    assert list(r.history["participants"][1:]) == [tau] * T
    assert np.linalg.norm(r.w - xs[-1]) <= 1e-12 * np.linalg.norm(xs[-1])


@pytest.mark.slow
@pytest.mark.mpi
def test_mpiexec_fednl_equals_the_reference(tmp_path, problem):
    """The default FedNL (option 2, alpha 1, FedNL-LS) under mpiexec -n 3 (2 clients)."""
    path, X, y = problem
    T = 8
    cfg = write_config(tmp_path / "f.yaml", **config(path, T, {}))
    res = cli("run", cfg, "-o", tmp_path / "m.h5", "-q", n=3)
    assert res.returncode == 0, res.stderr
    _, hist, w = read_result(tmp_path / "m.h5")
    xs = reference_iterates(X, y, 2, T, dict(compressor="topk", alpha=1.0, option=2,
                                            line_search=True))
    assert np.linalg.norm(w - xs[-1]) <= 1e-12 * np.linalg.norm(xs[-1])
