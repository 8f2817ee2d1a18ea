"""What the SLURM tests share (tests/test_slurm_*.py): the scripts, the synthetic
problem and its scikit-learn optimum, a job's environment, and the 1-minute
time-limit job.

The fixtures are session-scoped and registered in tests/conftest.py (as
support/slurm_cluster.py's ``slurm`` is): ``timelimit_job`` is submitted by the first
test that asks for it (tests/test_slurm_launcher.py's first) and checked by
tests/test_slurm_signals.py's last, so that its minute overlaps the tests between;
with the modules split, a module-scoped fixture would submit it twice.
"""

from __future__ import annotations

import pytest

from support.launch import ROOT, mpiexec, synth, write_config
from support.references import logistic_objective

RUN, SWEEP = ROOT / "slurm" / "run.sbatch", ROOT / "slurm" / "sweep.sbatch"
LAM = 1e-3
#: a tiny-step gradient descent that runs until a signal stops it
LONG = dict(algorithm={"name": "gd", "step_size": 1e-4},
            run={"max_rounds": 10**8, "grad_rtol": None})


def job_env(cluster, **extra):
    """The environment a job is submitted with (sbatch exports it: --export=ALL)."""
    e = cluster.env(DISTNEWTON_MPIEXEC=mpiexec())
    for var in ("DISTNEWTON", "DISTNEWTON_LAUNCHER", "DISTNEWTON_SRUN_MPI",
                "DISTNEWTON_PROBE_TIMEOUT"):
        e.pop(var, None)                     # the scripts' defaults unless a test sets them
    e.update({k: str(v) for k, v in extra.items()})
    return e


@pytest.fixture(scope="session")
def slurm_problem(tmp_path_factory):
    """Synthetic logistic data (distnewton data synth) and sklearn's optimum on it."""
    from sklearn.datasets import load_svmlight_file
    from sklearn.linear_model import LogisticRegression
    path = synth(tmp_path_factory.mktemp("data") / "s.svm", 600, 10, density=0.5)
    X, y = load_svmlight_file(str(path), n_features=10)
    ref = LogisticRegression(C=1.0 / (LAM * X.shape[0]), fit_intercept=False,
                             solver="newton-cholesky", tol=1e-14, max_iter=200).fit(X, y)
    w = ref.coef_.ravel()
    return path, X, y, w, logistic_objective(X, y, w, LAM)


def newton_config(path, problem, **algorithm):
    """Newton to ||g|| <= 1e-12 ||g0|| on ``problem`` (the ``slurm_problem`` tuple)."""
    return write_config(path, data={"train": str(problem[0]), "n_features": 10},
                        model={"loss": "logistic", "lambda": LAM},
                        algorithm={"name": "newton", **algorithm},
                        run={"max_rounds": 40, "grad_rtol": 1e-12})


@pytest.fixture(scope="session")
def timelimit_job(slurm, slurm_problem, tmp_path_factory):
    """A 1-minute job (--time=1) asking for SIGUSR1 15 s before its end, submitted
    by the first SLURM test (tests/test_slurm_launcher.py) and checked by the last
    (tests/test_slurm_signals.py), so that its minute overlaps the other tests.
    SLURM checks time limits every 30 s and sends the signal at the first check
    within 15 + 30 s of the end: 15-45 s after start."""
    d = tmp_path_factory.mktemp("timelimit")
    cfg = write_config(d / "long.yaml",
                       data={"train": str(slurm_problem[0]), "n_features": 10},
                       model={"loss": "logistic", "lambda": LAM}, **LONG)
    job = slurm.sbatch("--ntasks=3", "--time=1", "--signal=B:USR1@15", RUN, cfg, "-q",
                       cwd=d, env=job_env(slurm))
    return job, d, cfg
