"""Every algorithm at its defaults on a9a, w8a, ijcnn1 and phishing (issue 30, item 2).

The question a user asks first: does ``algorithm: {name: X}`` with nothing else
reach the optimum on the standard sets?  For every registered algorithm and each
set this runs the algorithm's defaults ONLY (no algorithm key set), the model's
defaults (logistic, lambda = 1/n, no intercept) and the run's defaults (its
stopping rule ``grad_rtol`` 1e-8) but for 4 workers on the sim backend and
``run.max_rounds: 500`` -- the same 500 for the first-order methods, whose round
budget that is.  It reports the communication rounds (and MB up + down) to
relative suboptimality 1e-3, 1e-4 and 1e-6 (:data:`_claims.TARGETS`), the final
relative suboptimality and the run's status.

f*: scikit-learn's ``LogisticRegression(solver="newton-cholesky", tol=1e-12)``
at C = 1/(lambda n) = 1 (an independent reference), cross-checked against a
``newton`` run to ||grad|| <= 1e-12 (both printed; f* is the lower of the two).

One HDF5 per run in ``--out`` (default ``../results/defaults_check`` beside the
checkout, outside the repository); an existing file is read instead of rerun.
``--rerun`` runs everything again, ``--rerun ranl fednl`` only those algorithms
(the tables still show every one): the rerun after a change of defaults.

    python benchmarks/defaults_check.py             # all: ~1 h on a loaded 2-core machine
    python benchmarks/defaults_check.py --rerun ranl fednl
    python benchmarks/defaults_check.py --sets a9a --algorithms giant newton
    python benchmarks/defaults_check.py --smoke     # seconds: a synthetic set

The sets are read in place from ``--data`` (default ``../shared/data`` beside the
checkout).  The tables go to stdout; benchmarks/results/defaults_check.md holds
the committed ones.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _claims import TARGETS  # noqa: E402
from _smoke import SMOKE_HELP, synth_set  # noqa: E402
from _tables import markdown_table  # noqa: E402

import distnewton  # noqa: E402
from distnewton.algorithms import ALGORITHMS  # noqa: E402
from distnewton.io.read import load, reaching  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
OUT = ROOT.parent / "results" / "defaults_check"
#: set -> (file under --data, n_features): LIBSVM's d, so that a shard missing a
#: feature does not change d
SETS = {"a9a": ("a9a.bz2", 123), "w8a": ("w8a.bz2", 300),
        "ijcnn1": ("ijcnn1.bz2", 22), "phishing": ("phishing.crlf.bz2", 68)}
#: the methods issue 30 holds to 1e-6 within 500 rounds; the others are first-order
#: (or, LocalNewton, have an error floor by design) and state why they may not
SECOND_ORDER = ("newton", "giant", "adaptive_localnewton", "ranl", "lbfgs", "fednl", "disco",
                "dane", "owlqn")
#: algorithms whose defaults another change is settling (``--pending``: their
#: status cells say "(pending)")
PENDING = set()
MAX_ROUNDS, WORKERS = 500, 4


def config(train, n_features, algorithm, max_rounds):
    """The run: the algorithm's defaults only, 4 workers, sim, max_rounds."""
    return {"data": {"train": str(train), "test": None, "n_features": n_features},
            "model": {"loss": "logistic", "lambda": "1/n"},
            "algorithm": {"name": algorithm},
            "run": {"workers": WORKERS, "max_rounds": max_rounds, "seed": 0}}


def run_or_load(path, cfg, rerun):
    """The history, status and message of one run: from ``path`` when it exists
    (unless ``rerun``, a bool), else run and write it there."""
    if rerun or not path.exists():
        distnewton.solve(cfg, output=path, overwrite=True, warn=False)
    r = load(path)
    return r.history, r.status, r.message


def f_star_sklearn(train, n_features):
    """scikit-learn's optimum of mean logistic + (1/(2n))||w||^2 (C = 1/(lambda n) = 1,
    no intercept: the model's defaults); None without scikit-learn."""
    try:
        from sklearn.datasets import load_svmlight_file
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        return None
    X, y = load_svmlight_file(str(train), n_features=n_features, zero_based=False)
    y = np.where(y > 0, 1.0, -1.0)
    lam = 1.0 / X.shape[0]
    w = LogisticRegression(C=1.0, fit_intercept=False, solver="newton-cholesky", tol=1e-12,
                           max_iter=200).fit(X, y).coef_.ravel()
    return float(np.mean(np.logaddexp(0.0, -y * (X @ w))) + 0.5 * lam * w @ w)


def f_star_newton(train, n_features, out, rerun):
    """``newton`` to ||grad|| <= 1e-12: its final loss."""
    cfg = config(train, n_features, "newton", 1000)
    cfg["run"].update(grad_norm=1e-12, grad_rtol=None)
    h, _, _ = run_or_load(out / "fstar_newton.h5", cfg, rerun)
    return float(np.min(h["loss"]))


def row(algorithm, h, status, f_star):
    """[algorithm, rounds (MB) to each target, final rel. subopt., rounds used, status]."""
    cells = [algorithm]
    for t in TARGETS:
        hit = reaching(h, f_star, t)
        cells.append("not reached" if hit is None
                     else f"{hit['comm_rounds']} ({hit['bytes'] / 1e6:.2f} MB)")
    loss = np.asarray(h["loss"], dtype=float)
    final = (loss[-1] - f_star) / abs(f_star)
    cells += [f"{final:.1e}" if np.isfinite(final) else "nan", int(h["comm_rounds"][-1]),
              status + (" (pending)" if algorithm in PENDING else "")]
    return cells


def check_set(name, train, n_features, algorithms, out, rerun, max_rounds):
    """Run (or read) every algorithm on one set; print its table; the rows.
    ``rerun``: True (run everything again, f* too) or the algorithms to run again."""
    out.mkdir(parents=True, exist_ok=True)
    fs_newton = f_star_newton(train, n_features, out, rerun is True)
    fs_sk = f_star_sklearn(train, n_features)
    f_star = min(f for f in (fs_newton, fs_sk) if f is not None)
    sk = "n/a" if fs_sk is None else f"{fs_sk:.15g}"
    rows = []
    for alg in algorithms:
        cfg = config(train, n_features, alg, max_rounds)
        h, status, _ = run_or_load(out / f"{alg}.h5", cfg, rerun is True or alg in rerun)
        rows.append(row(alg, h, status, f_star))
    header = ["algorithm", *[f"rounds to {t:g} (MB)" for t in TARGETS], "final rel. subopt.",
              "rounds", "status"]
    markdown_table(header, rows, title=f"{name}: f* = {f_star:.15g} (scikit-learn {sk}, "
                   f"newton {fs_newton:.15g}), {WORKERS} workers, max_rounds {max_rounds}")
    return rows


def summary(results):
    """One row per algorithm: rounds to 1e-6 on every set (the issue's question)."""
    sets = list(results)
    algs = [r[0] for r in next(iter(results.values()))]
    rows = []
    for i, alg in enumerate(algs):
        cells = [results[s][i][TARGETS.index(1e-6) + 1].split(" (")[0] for s in sets]
        kind = "second-order" if alg in SECOND_ORDER else "first-order / floor"
        rows.append([alg, kind, *cells])
    markdown_table(["algorithm", "kind", *[f"{s}: rounds to 1e-6" for s in sets]], rows,
                   title="Rounds to relative suboptimality 1e-6 at the defaults")


def smoke(tmp):
    """A 600 x 20 synthetic set and 30 rounds: every algorithm, the whole path."""
    train, _ = synth_set(Path(tmp) / "data", "smoke", 600, 20)
    rows = check_set("smoke", train, 20, sorted(ALGORITHMS), Path(tmp) / "out", True, 30)
    summary({"smoke": rows})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    ap.add_argument("--algorithms", nargs="+", choices=sorted(ALGORITHMS),
                    default=sorted(ALGORITHMS), help="default: every registered algorithm")
    ap.add_argument("--data", type=Path, default=DATA, help="folder of the sets' files")
    ap.add_argument("--out", type=Path, default=OUT, help="one HDF5 per run (outside the repo)")
    ap.add_argument("--rerun", nargs="*", choices=sorted(ALGORITHMS), metavar="ALGORITHM",
                    help="run again when a result file exists: these algorithms, or (no "
                    "name) everything, f* too")
    ap.add_argument("--pending", nargs="+", default=[], metavar="ALGORITHM",
                    help="mark these rows' status '(pending)': defaults being changed")
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = ap.parse_args(argv)
    PENDING.update(args.pending)
    if args.smoke:
        with tempfile.TemporaryDirectory(prefix="defaults_check-") as tmp:
            smoke(tmp)
        return
    results = {}
    for s in args.sets:
        file, d = SETS[s]
        rerun = True if args.rerun == [] else set(args.rerun or ())
        results[s] = check_set(s, args.data / file, d, args.algorithms, args.out / s,
                               rerun, MAX_ROUNDS)
    summary(results)


if __name__ == "__main__":
    main()
